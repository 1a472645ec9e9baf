//! io_uring back-end: multishot recv into a provided buffer ring, one send in flight per
//! connection, DEFER_TASKRUN + TASKRUN_FLAG so that spinning needs no syscall while idle.

use std::io;
use std::os::fd::AsRawFd;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use io_uring::types::{BufRingEntry, Fd, SubmitArgs, Timespec};
use io_uring::{IoUring, cqueue, opcode, squeue};

use super::{Conn, DriverConfig, DriverCounters, ReadState};

const BGID: u16 = 0;
const OP_RECV: u64 = 1;
const OP_SEND: u64 = 2;
const OP_CANCEL: u64 = 3;

fn user_data(slot: u32, generation: u32, op: u64) -> u64 {
    (u64::from(slot) << 32) | (u64::from(generation & 0x00FF_FFFF) << 8) | op
}

fn split_user_data(ud: u64) -> (u32, u32, u64) {
    (
        (ud >> 32) as u32,
        ((ud >> 8) & 0x00FF_FFFF) as u32,
        ud & 0xFF,
    )
}

/// The provided buffer ring: `entries` descriptors in an mmap'd page-aligned area, pointing into
/// one heap slab of `entries * buf_bytes` bytes.
struct BufRing {
    ring: NonNull<BufRingEntry>,
    ring_bytes: usize,
    entries: u16,
    tail: u16,
    slab: Vec<u8>,
    buf_bytes: u32,
}

impl BufRing {
    fn new(entries: u16, buf_bytes: u32) -> io::Result<Self> {
        if !entries.is_power_of_two() || entries > 32768 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "recv_buffers must be a power of two ≤ 32768",
            ));
        }
        let ring_bytes = usize::from(entries) * std::mem::size_of::<BufRingEntry>();
        // SAFETY: anonymous private mapping with no address hint; the result is checked.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                ring_bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_ANONYMOUS | libc::MAP_PRIVATE,
                -1,
                0,
            )
        };
        if addr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ring = NonNull::new(addr.cast::<BufRingEntry>())
            .ok_or_else(|| io::Error::other("mmap returned null"))?;
        let slab = vec![0u8; usize::from(entries) * buf_bytes as usize];
        let mut br = BufRing {
            ring,
            ring_bytes,
            entries,
            tail: 0,
            slab,
            buf_bytes,
        };
        for bid in 0..entries {
            br.push(bid);
        }
        br.publish();
        Ok(br)
    }

    fn buf(&self, bid: u16, len: usize) -> &[u8] {
        let start = usize::from(bid) * self.buf_bytes as usize;
        &self.slab[start..start + len.min(self.buf_bytes as usize)]
    }

    /// Hands buffer `bid` back to the kernel (visible after [`BufRing::publish`]).
    fn push(&mut self, bid: u16) {
        let idx = usize::from(self.tail & (self.entries - 1));
        // SAFETY: `idx < entries`, inside the mapping created in `new`; the kernel only reads
        // entries between its head and our published tail, and this one is past the tail.
        let entry = unsafe { &mut *self.ring.as_ptr().add(idx) };
        let addr = self.slab.as_ptr() as u64 + u64::from(bid) * u64::from(self.buf_bytes);
        entry.set_addr(addr);
        entry.set_len(self.buf_bytes);
        entry.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
    }

    fn publish(&self) {
        // SAFETY: the tail field overlays the first entry's reserved field of our mapping, which
        // is 2-byte aligned and shared with the kernel; it is written atomically with release
        // ordering as the kernel ABI requires.
        unsafe {
            let tail = BufRingEntry::tail(self.ring.as_ptr()) as *const AtomicU16;
            (*tail).store(self.tail, Ordering::Release);
        }
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly the mapping made in `new`; the ring was unregistered first.
        unsafe {
            libc::munmap(self.ring.as_ptr().cast(), self.ring_bytes);
        }
    }
}

/// io_uring driver state.
pub(super) struct Uring {
    ring: IoUring,
    bufs: BufRing,
}

impl Uring {
    pub(super) fn new(cfg: &DriverConfig) -> io::Result<Self> {
        let mut b = IoUring::builder();
        b.setup_single_issuer();
        if let Some(cpu) = cfg.sqpoll_cpu {
            b.setup_sqpoll(1000).setup_sqpoll_cpu(cpu);
        } else {
            b.setup_defer_taskrun().setup_taskrun_flag();
        }
        b.setup_cqsize(cfg.ring_entries.saturating_mul(4));
        let ring = b.build(cfg.ring_entries)?;
        let bufs = BufRing::new(cfg.recv_buffers, cfg.recv_buffer_bytes)?;
        // SAFETY: the ring memory lives in `bufs`, which is unregistered (in Drop) before unmap.
        unsafe {
            ring.submitter().register_buf_ring_with_flags(
                bufs.ring.as_ptr() as u64,
                bufs.entries,
                BGID,
                0,
            )?;
        }
        Ok(Uring { ring, bufs })
    }

    fn push(&mut self, e: &squeue::Entry) {
        loop {
            // SAFETY: every entry pushed references memory owned by a `Conn` slot (send buffer)
            // or the buffer ring, and slots are kept alive until their ops complete.
            if unsafe { self.ring.submission().push(e) }.is_ok() {
                return;
            }
            // SQ full: hand what we have to the kernel and retry.
            let _ = self.ring.submit();
        }
    }

    /// Pushes `e`, an operation `op` of the connection in `slot`, counting it in flight.
    #[inline]
    fn push_op(&mut self, e: squeue::Entry, slot: u32, c: &mut Conn, op: u64) {
        self.push(&e.user_data(user_data(slot, c.generation, op)));
        c.ops_in_flight += 1;
    }

    pub(super) fn arm_recv(&mut self, slot: u32, c: &mut Conn) {
        if c.recv_armed || c.closing || c.read != ReadState::Open {
            return;
        }
        let e = opcode::RecvMulti::new(Fd(c.stream.as_raw_fd()), BGID).build();
        self.push_op(e, slot, c, OP_RECV);
        c.recv_armed = true;
    }

    pub(super) fn start_send(&mut self, slot: u32, c: &mut Conn) {
        if c.send_in_flight || c.closing {
            return;
        }
        if c.tx_inflight_off >= c.tx_inflight.len() {
            if c.tx_pending.is_empty() {
                return;
            }
            c.tx_inflight.clear();
            std::mem::swap(&mut c.tx_inflight, &mut c.tx_pending);
            c.tx_inflight_off = 0;
        }
        let rest = &c.tx_inflight[c.tx_inflight_off..];
        let len = u32::try_from(rest.len()).unwrap_or(u32::MAX);
        let e = opcode::Send::new(Fd(c.stream.as_raw_fd()), rest.as_ptr(), len)
            .flags(libc::MSG_NOSIGNAL)
            .build();
        self.push_op(e, slot, c, OP_SEND);
        c.send_in_flight = true;
    }

    pub(super) fn cancel(&mut self, slot: u32, c: &mut Conn) {
        if c.recv_armed {
            let e = opcode::AsyncCancel::new(user_data(slot, c.generation, OP_RECV))
                .build()
                .user_data(user_data(slot, c.generation, OP_CANCEL));
            self.push(&e);
        }
        let _ = self.ring.submit();
    }

    /// Enters the kernel only if submissions are queued; reaps nothing.
    pub(super) fn submit_now(&mut self) -> io::Result<()> {
        if self.ring.submission().is_empty() {
            return Ok(());
        }
        enter_ok(self.ring.submit())
    }

    /// Submits, waits per `wait` (None = spin: enter only if needed), reaps completions.
    pub(super) fn poll(
        &mut self,
        conns: &mut [Option<Conn>],
        wait: Option<Duration>,
        counters: &mut DriverCounters,
    ) -> io::Result<usize> {
        let cq_ready = !self.ring.completion().is_empty();
        match wait {
            None => {
                let mut sq = self.ring.submission();
                let taskrun = sq.taskrun();
                let need = !sq.is_empty() || taskrun || sq.cq_overflow();
                sq.sync();
                drop(sq);
                if need {
                    counters.enters += 1;
                    counters.enters_taskrun += u64::from(taskrun);
                    enter_ok(self.ring.submit())?;
                }
            }
            Some(d) if !cq_ready => {
                let ts = Timespec::from(d);
                let args = SubmitArgs::new().timespec(&ts);
                counters.enters += 1;
                counters.enters_waiting += 1;
                enter_ok(self.ring.submitter().submit_with_args(1, &args))?;
            }
            Some(_) => {
                counters.enters += 1;
                enter_ok(self.ring.submit())?;
            }
        }
        let n = self.reap(conns);
        counters.cqes += n as u64;
        Ok(n)
    }

    fn reap(&mut self, conns: &mut [Option<Conn>]) -> usize {
        let mut handled = 0;
        let mut recycled = false;
        loop {
            let Some(cqe) = self.ring.completion().next() else {
                break;
            };
            handled += 1;
            let (slot, generation, op) = split_user_data(cqe.user_data());
            let res = cqe.result();
            let flags = cqe.flags();
            let bid = cqueue::buffer_select(flags);
            let conn = conns
                .get_mut(slot as usize)
                .and_then(Option::as_mut)
                .filter(|c| c.generation & 0x00FF_FFFF == generation);
            match op {
                OP_RECV => {
                    if let Some(c) = conn {
                        if res > 0 {
                            if let Some(bid) = bid
                                && !c.closing
                            {
                                let data = self.bufs.buf(bid, res as usize);
                                c.push_rx(data);
                            }
                        } else if res == 0 {
                            c.read = ReadState::Eof;
                        } else if -res != libc::ENOBUFS && -res != libc::ECANCELED {
                            c.read = ReadState::Failed(-res);
                        }
                        if !cqueue::more(flags) {
                            c.recv_armed = false;
                            c.ops_in_flight = c.ops_in_flight.saturating_sub(1);
                            if c.read == ReadState::Open && !c.closing {
                                if let Some(bid) = bid {
                                    self.bufs.push(bid);
                                    recycled = true;
                                }
                                if recycled {
                                    self.bufs.publish();
                                    recycled = false;
                                }
                                self.arm_recv(slot, c);
                                continue;
                            }
                        }
                    }
                    if let Some(bid) = bid {
                        self.bufs.push(bid);
                        recycled = true;
                    }
                }
                OP_SEND => {
                    if let Some(c) = conn {
                        c.send_in_flight = false;
                        c.ops_in_flight = c.ops_in_flight.saturating_sub(1);
                        if res < 0 {
                            if !c.closing {
                                c.write_error = Some(-res);
                            }
                        } else {
                            c.tx_inflight_off += res as usize;
                            if c.tx_inflight_off >= c.tx_inflight.len() {
                                c.tx_inflight.clear();
                                c.tx_inflight_off = 0;
                            }
                            self.start_send(slot, c);
                        }
                    }
                }
                _ => {}
            }
        }
        if recycled {
            self.bufs.publish();
        }
        handled
    }

    /// Waits (bounded) for every operation referencing connection buffers to complete.
    pub(super) fn drain(&mut self, conns: &mut [Option<Conn>]) {
        for _ in 0..200 {
            let busy = conns
                .iter()
                .any(|c| c.as_ref().is_some_and(|c| c.ops_in_flight > 0));
            if !busy {
                return;
            }
            let _ = self.poll(
                conns,
                Some(Duration::from_millis(5)),
                &mut DriverCounters::default(),
            );
        }
        tracing::error!("io_uring operations still in flight at driver drop");
    }
}

impl Drop for Uring {
    fn drop(&mut self) {
        let _ = self.ring.submitter().unregister_buf_ring(BGID);
    }
}

/// Timeouts, interrupts and a busy CQ are not errors of a poll.
fn enter_ok(r: io::Result<usize>) -> io::Result<()> {
    match r {
        Ok(_) => Ok(()),
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::ETIME | libc::EINTR | libc::EBUSY | libc::EAGAIN)
            ) =>
        {
            Ok(())
        }
        Err(e) => Err(e),
    }
}
