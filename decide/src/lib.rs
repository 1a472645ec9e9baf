//! ringbolt's decision core: market state, the feature catalogue, fair value, the
//! reflex pass, the model path (ONNX tree ensembles through ONNX Runtime or a native evaluator),
//! the seqlock slots between the two threads, a synthetic market generator and the record dump
//! format used for training and replay.
//!
//! The crate is sans-IO: it consumes [`ringbolt_bus::Record`]s and produces decision records and
//! [`engine::OrderIntent`]s. It never touches sockets or shared memory itself (the binary's
//! `trade` command does), and never reads the wall clock on the decision path.

pub mod config;
pub mod dump;
pub mod engine;
pub mod fair;
pub mod features;
pub mod ids;
pub mod market;
pub mod model;
pub mod num;
pub mod parity;
pub mod pipeline;
pub mod slot;
pub mod synth;

pub use config::{DecideConfig, MarketParams, ReferenceSource, RiskConfig};
pub use engine::{Engine, OrderIntent, Output, Reason};
pub use features::{CATALOGUE, N_FEATURES, schema_hash};
pub use ids::{IdMap, Mapped, SEGMENT_ID_SPAN};
pub use pipeline::{ModelLink, Pipeline};
pub use ringbolt_market::PolyBook;
pub use slot::{FeatureSlot, ModelProb, ProbSlot};
