//! What ringbolt's tests share, so that each test file stops carrying its own copy.
//!
//! A dev-dependency only (`publish = false`): never linked into a shipped binary.
//!
//! - [`alloc`]: a counting global allocator (allocations made by the calling thread);
//! - [`http`]: blocking HTTP/1.1 requests to local test servers (status, body);
//! - [`fs`]: fresh per-process temporary directories and unique names;
//! - [`process`]: re-running the test binary as a child process, commands that must succeed,
//!   children killed on drop, waiting for a file;
//! - [`json`]: small lookups on emulator control answers;
//! - [`guard`]: clean-up run on drop, however the test ends;
//! - [`hdrh`]: `.hlog` files decoded by the Python `hdrh` package;
//! - `emulator` (feature `emulator`): a venue emulator on its own runtime, with blocking
//!   control-port access.
//!
//! Test code: panicking on a broken precondition is the point, so `unwrap` is allowed here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod alloc;
#[cfg(feature = "emulator")]
pub mod emulator;
pub mod fs;
pub mod guard;
pub mod hdrh;
pub mod http;
pub mod json;
pub mod process;

pub use alloc::{CountingAlloc, thread_allocs};
