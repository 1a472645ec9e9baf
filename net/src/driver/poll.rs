//! Fallback back-end when io_uring is unavailable: non-blocking std sockets, read in a busy loop
//! (spin) or woken by level-triggered epoll (block).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use super::{BackendKind, Conn, DriverCounters, ReadState, WaitMode};
use crate::error::{NetError, Result};

const SCRATCH_BYTES: usize = 64 * 1024;
const MAX_EVENTS: usize = 64;

/// Fallback poller.
pub(super) struct Poller {
    epoll: Option<OwnedFd>,
    scratch: Vec<u8>,
    events: Vec<libc::epoll_event>,
    recv_calls: u64,
    recv_would_block: u64,
    send_calls: u64,
    epoll_waits: u64,
}

impl Poller {
    pub(super) fn new(mode: WaitMode) -> Result<Self> {
        let epoll = match mode {
            WaitMode::Spin => None,
            WaitMode::Block => {
                // SAFETY: epoll_create1 takes flags only; the result is checked.
                let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
                if fd < 0 {
                    return Err(NetError::io("epoll_create1", io::Error::last_os_error()));
                }
                // SAFETY: `fd` is a fresh descriptor we own.
                Some(unsafe { OwnedFd::from_raw_fd(fd) })
            }
        };
        Ok(Poller {
            epoll,
            scratch: vec![0; SCRATCH_BYTES],
            events: vec![libc::epoll_event { events: 0, u64: 0 }; MAX_EVENTS],
            recv_calls: 0,
            recv_would_block: 0,
            send_calls: 0,
            epoll_waits: 0,
        })
    }

    pub(super) fn kind(&self) -> BackendKind {
        if self.epoll.is_some() {
            BackendKind::Epoll
        } else {
            BackendKind::StdSpin
        }
    }

    fn ctl(&self, op: i32, fd: i32, slot: u32) -> io::Result<()> {
        let Some(ep) = &self.epoll else { return Ok(()) };
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLRDHUP) as u32,
            u64: u64::from(slot),
        };
        // SAFETY: valid epoll and socket descriptors and a live event struct.
        let rc = unsafe { libc::epoll_ctl(ep.as_raw_fd(), op, fd, &mut ev) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    pub(super) fn add(&mut self, slot: u32, c: &mut Conn) -> Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, c.stream.as_raw_fd(), slot)
            .map_err(|e| NetError::io("epoll_ctl", e))
    }

    pub(super) fn remove(&mut self, c: &mut Conn) {
        let _ = self.ctl(libc::EPOLL_CTL_DEL, c.stream.as_raw_fd(), 0);
    }

    /// Writes as much of the queue as the socket takes now.
    pub(super) fn write(&mut self, c: &mut Conn) {
        self.send_calls += 1;
        while !c.tx_pending.is_empty() && c.write_error.is_none() {
            // SAFETY: pointer and length come from a live Vec; MSG_DONTWAIT never blocks.
            let n = unsafe {
                libc::send(
                    c.stream.as_raw_fd(),
                    c.tx_pending.as_ptr().cast(),
                    c.tx_pending.len(),
                    libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                match e.raw_os_error() {
                    Some(libc::EAGAIN | libc::EINTR) => return,
                    Some(errno) => c.write_error = Some(errno),
                    None => c.write_error = Some(libc::EIO),
                }
                return;
            }
            c.tx_pending.drain(..n as usize);
        }
    }

    /// Reads everything the socket has now. Returns whether anything happened.
    fn read(&mut self, c: &mut Conn) -> bool {
        let mut any = false;
        while c.read == ReadState::Open {
            // SAFETY: reading into our scratch buffer, bounded by its length.
            let n = unsafe {
                libc::recv(
                    c.stream.as_raw_fd(),
                    self.scratch.as_mut_ptr().cast(),
                    self.scratch.len(),
                    libc::MSG_DONTWAIT,
                )
            };
            self.recv_calls += 1;
            if n > 0 {
                c.push_rx(&self.scratch[..n as usize]);
                any = true;
                if (n as usize) < self.scratch.len() {
                    break;
                }
            } else if n == 0 {
                c.read = ReadState::Eof;
                any = true;
            } else {
                let e = io::Error::last_os_error();
                match e.raw_os_error() {
                    Some(libc::EAGAIN | libc::EINTR) => {
                        self.recv_would_block += 1;
                        break;
                    }
                    errno => {
                        c.read = ReadState::Failed(errno.unwrap_or(libc::EIO));
                        any = true;
                    }
                }
            }
        }
        any
    }

    pub(super) fn poll(
        &mut self,
        conns: &mut [Option<Conn>],
        wait: Option<Duration>,
        counters: &mut DriverCounters,
    ) -> Result<usize> {
        let r = self.poll_inner(conns, wait);
        counters.recv_calls += std::mem::take(&mut self.recv_calls);
        counters.recv_would_block += std::mem::take(&mut self.recv_would_block);
        counters.send_calls += std::mem::take(&mut self.send_calls);
        counters.epoll_waits += std::mem::take(&mut self.epoll_waits);
        r
    }

    fn poll_inner(&mut self, conns: &mut [Option<Conn>], wait: Option<Duration>) -> Result<usize> {
        let mut handled = 0;
        let mut backlog = false;
        for c in conns.iter_mut().flatten() {
            if !c.tx_pending.is_empty() && !c.closing {
                self.write(c);
                backlog |= !c.tx_pending.is_empty();
            }
        }
        let Some(ep) = self.epoll.as_ref().map(AsRawFd::as_raw_fd) else {
            for c in conns.iter_mut().flatten() {
                if !c.closing && self.read(c) {
                    handled += 1;
                }
            }
            return Ok(handled);
        };
        let timeout_ms = match wait {
            _ if backlog => 0,
            None => 0,
            Some(d) => {
                i32::try_from(d.as_millis().max(u128::from(!d.is_zero()))).unwrap_or(i32::MAX)
            }
        };
        self.epoll_waits += 1;
        // SAFETY: the events buffer is live and MAX_EVENTS long.
        let n = unsafe {
            libc::epoll_wait(ep, self.events.as_mut_ptr(), MAX_EVENTS as i32, timeout_ms)
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                return Ok(0);
            }
            return Err(NetError::io("epoll_wait", e));
        }
        for i in 0..n as usize {
            let slot = self.events[i].u64 as usize;
            if let Some(Some(c)) = conns.get_mut(slot)
                && !c.closing
            {
                if self.read(c) {
                    handled += 1;
                }
                if c.read != ReadState::Open {
                    self.remove(c);
                }
            }
        }
        Ok(handled)
    }
}
