//! Bus hop latency: a record goes parent → child over one segment and straight back over a
//! second; the hop is half the round trip. ringbolt's ring and iceoryx2's publish-subscribe are
//! measured with the same method, payload size, pinning and iteration count in one run.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use hdrhistogram::Histogram;
use iceoryx2::service::port_factory::PortFactory as _;
use ringbolt_bus::{
    Consumer, Poll, Publisher, Record, RingWriter, Segment, SegmentConfig, Start, Venue,
};
use serde_json::json;

use super::{Percentiles, pin};
use crate::machine::Machine;

/// Options of `ringbolt bench bus`.
#[derive(Debug, Args)]
pub struct BusBenchArgs {
    /// Print JSON only.
    #[arg(long)]
    json: bool,
    /// Measured round trips per transport.
    #[arg(long, default_value_t = 200_000)]
    iterations: u64,
    /// Unmeasured warm-up round trips per transport.
    #[arg(long, default_value_t = 20_000)]
    warmup: u64,
    /// Do not pin the two processes to cores.
    #[arg(long)]
    no_pin: bool,
    /// Skip the iceoryx2 peer.
    #[arg(long)]
    skip_iceoryx2: bool,
    /// Measured wake-ups per transport (publish → consumer running, consumer asleep).
    #[arg(long, default_value_t = 5_000)]
    wake_iterations: u64,
    /// Pause before each wake-up publish (µs), so the consumer is asleep when it comes.
    #[arg(long, default_value_t = 300)]
    wake_gap_us: u64,
}

/// Transports measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Transport {
    /// ringbolt's shared-memory broadcast ring.
    Ringbolt,
    /// iceoryx2 publish-subscribe (ipc service).
    Iceoryx2,
}

/// Options of the hidden echo child.
#[derive(Debug, Args)]
pub struct EchoArgs {
    /// Which transport to echo on.
    #[arg(long, value_enum)]
    transport: Transport,
    /// Name of the parent→child channel.
    #[arg(long)]
    ping: String,
    /// Name of the child→parent channel.
    #[arg(long)]
    pong: String,
    /// Core to pin to.
    #[arg(long)]
    core: Option<usize>,
    /// Sleep between messages (ringbolt: the segment's doorbell; iceoryx2: its event listener)
    /// and echo the measured wake-up latency instead of the message.
    #[arg(long)]
    wake: bool,
}

const STOP: u64 = u64::MAX;
type Payload = [u64; 16];

/// Picks (parent core, child core): the two highest-numbered cores, if there are two.
fn cores(no_pin: bool) -> (Option<usize>, Option<usize>) {
    if no_pin {
        return (None, None);
    }
    let ids = ringbolt_net::affinity::core_ids();
    match ids.as_slice() {
        [.., child, parent] => (Some(*parent), Some(*child)),
        _ => (None, None),
    }
}

fn spawn_echo(
    transport: Transport,
    ping: &str,
    pong: &str,
    core: Option<usize>,
    wake: bool,
) -> Result<Child> {
    let exe = std::env::current_exe().context("locating the ringbolt binary")?;
    let mut command = Command::new(exe);
    command
        .args(["bench", "bus-echo", "--transport"])
        .arg(match transport {
            Transport::Ringbolt => "ringbolt",
            Transport::Iceoryx2 => "iceoryx2",
        });
    command
        .args(["--ping", ping, "--pong", pong])
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    if let Some(core) = core {
        command.args(["--core", &core.to_string()]);
    }
    if wake {
        command.arg("--wake");
    }
    command.spawn().context("spawning the echo process")
}

/// Runs `ringbolt bench bus`.
pub fn run(args: &BusBenchArgs) -> Result<()> {
    let (parent_core, child_core) = cores(args.no_pin);
    let ours = measure(Transport::Ringbolt, args, parent_core, child_core)?;
    let peer = if args.skip_iceoryx2 {
        Err(anyhow::anyhow!("skipped by --skip-iceoryx2"))
    } else {
        measure(Transport::Iceoryx2, args, parent_core, child_core)
    };
    let ours_p = Percentiles::of(&ours);
    let peer_json = match &peer {
        Ok(h) => serde_json::to_value(Percentiles::of(h))?,
        Err(e) => json!({ "error": format!("{e:#}") }),
    };
    let ratio = |f: fn(&Percentiles) -> u64| -> serde_json::Value {
        match &peer {
            Ok(h) => {
                let p = Percentiles::of(h);
                json!(((f(&p) as f64 / f(&ours_p).max(1) as f64) * 100.0).round() / 100.0)
            }
            Err(_) => serde_json::Value::Null,
        }
    };
    let wake = wake::run(args, parent_core, child_core);
    // The same measurement with both processes on one core: a wake-up that needs no
    // inter-processor interrupt (on a KVM guest the cross-core one costs a VM exit or two).
    let wake_same_core = child_core.map(|c| wake::run(args, Some(c), Some(c)));
    let met = ours_p.p50_ns <= 150
        && ours_p.p99_ns <= 500
        && peer
            .as_ref()
            .map_or(true, |h| ours_p.p50_ns <= Percentiles::of(h).p50_ns);
    let report = json!({
        "bench": "bus",
        "method": "cross-process ping-pong over two segments; hop = round trip / 2; \
                   Instant::now around each round trip; 128-byte payload; both sides spin",
        "machine": Machine::current(),
        "pinned": { "parent_core": parent_core, "child_core": child_core },
        "iterations": args.iterations,
        "warmup_iterations": args.warmup,
        "record_bytes": std::mem::size_of::<Record>(),
        "ringbolt_hop": ours_p,
        "iceoryx2_hop": peer_json,
        "ratio_iceoryx2_over_ringbolt": { "p50": ratio(|p| p.p50_ns), "p99": ratio(|p| p.p99_ns), "p999": ratio(|p| p.p999_ns) },
        "targets": { "hop_p50_ns_max": 150, "hop_p99_ns_max": 500, "not_slower_than_iceoryx2_p50": true, "met": met },
        "wake": wake,
        "wake_same_core": wake_same_core,
    });
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(())
}

fn measure(
    transport: Transport,
    args: &BusBenchArgs,
    parent_core: Option<usize>,
    child_core: Option<usize>,
) -> Result<Histogram<u64>> {
    tracing::info!(
        transport = transport_name(transport),
        iterations = args.iterations,
        "measuring bus hop"
    );
    let tag = format!(
        "rb-bench-{}-{}",
        std::process::id(),
        transport_name(transport)
    );
    let hop = Hop {
        transport,
        args,
        ping: format!("{tag}-ping"),
        pong: format!("{tag}-pong"),
        parent_core,
        child_core,
    };
    // Spawn before pinning: a child inherits its parent's affinity.
    pin_to_all();
    let result = match transport {
        Transport::Ringbolt => measure_ringbolt(&hop),
        Transport::Iceoryx2 => measure_iceoryx2(&hop),
    };
    if transport == Transport::Ringbolt {
        let _ = Segment::unlink(&hop.ping);
        let _ = Segment::unlink(&hop.pong);
    }
    result
}

/// One measurement: the transport, its two channels (`ping` out, `pong` back) and the cores.
struct Hop<'a> {
    transport: Transport,
    args: &'a BusBenchArgs,
    ping: String,
    pong: String,
    parent_core: Option<usize>,
    child_core: Option<usize>,
}

impl Hop<'_> {
    /// Starts the echo process (on the child core).
    fn spawn_echo(&self) -> Result<Reaper> {
        spawn_echo(
            self.transport,
            &self.ping,
            &self.pong,
            self.child_core,
            false,
        )
        .map(Reaper)
    }

    /// Starts the sleeping echo process of the wake-up measurement (on the child core).
    fn spawn_wake_echo(&self) -> Result<Reaper> {
        spawn_echo(
            self.transport,
            &self.ping,
            &self.pong,
            self.child_core,
            true,
        )
        .map(Reaper)
    }

    /// Pins to the parent core, then times `warmup + iterations` round trips of `send_and_wait`
    /// (sends sequence number `i`, returns the one echoed) and records half of each measured one.
    /// `mismatch` starts the error for a wrong echo.
    fn round_trips(
        &self,
        mismatch: &str,
        mut send_and_wait: impl FnMut(u64) -> Result<u64>,
    ) -> Result<Histogram<u64>> {
        pin(self.parent_core);
        let mut histogram = new_histogram()?;
        for i in 0..self.args.warmup + self.args.iterations {
            let start = Instant::now();
            let reply = send_and_wait(i)?;
            let rtt_ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
            if reply != i {
                bail!("{mismatch} {reply} for {i}");
            }
            if i >= self.args.warmup {
                histogram.record((rtt_ns / 2).max(1))?;
            }
        }
        Ok(histogram)
    }
}

fn transport_name(t: Transport) -> &'static str {
    match t {
        Transport::Ringbolt => "ringbolt",
        Transport::Iceoryx2 => "iceoryx2",
    }
}

/// Undo an earlier pin so the next child is not born on our core.
fn pin_to_all() {
    // SAFETY: sched_setaffinity on the calling thread with a zeroed-then-filled cpu_set_t of the
    // right size is the documented way to widen affinity; failure only leaves the old mask.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for cpu in 0..libc::CPU_SETSIZE as usize {
            libc::CPU_SET(cpu, &mut set);
        }
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

fn new_histogram() -> Result<Histogram<u64>> {
    Ok(ringbolt_telemetry::latency_histogram())
}

struct Reaper(Child);
impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn measure_ringbolt(hop: &Hop) -> Result<Histogram<u64>> {
    let config = SegmentConfig {
        rings: 1,
        capacity: 1024,
        instrument_capacity: 4,
    };
    let publisher = Publisher::create(&hop.ping, config)?;
    let mut writer = publisher.writer(0)?;
    let mut child = hop.spawn_echo()?;
    let segment = Segment::open_wait(&hop.pong, Duration::from_secs(30))
        .context("waiting for the echo segment")?;
    let mut consumer = Consumer::new(&segment, 0, Start::Oldest)?;
    let mut record = Record::new(
        Venue::Internal,
        0,
        0,
        &ringbolt_bus::Heartbeat {
            pid: 0,
            role: 0,
            published: 0,
            reserved: [0; 64],
        },
    );
    let mut reply = Record::zeroed();
    let histogram = hop.round_trips("echo returned record", |i| {
        record.venue_seq = i;
        writer.publish(&record);
        loop {
            match consumer.poll(&mut reply) {
                Poll::Ready => return Ok(reply.venue_seq),
                Poll::Empty => core::hint::spin_loop(),
                other => bail!("echo channel reported {other:?}"),
            }
        }
    })?;
    record.venue_seq = STOP;
    writer.publish(&record);
    let status = child.0.wait()?;
    if !status.success() {
        bail!("echo process failed: {status}");
    }
    Ok(histogram)
}

fn echo_ringbolt(args: &EchoArgs) -> Result<()> {
    let segment = Segment::open_wait(&args.ping, Duration::from_secs(30))?;
    let mut consumer = Consumer::new(&segment, 0, Start::Oldest)?;
    let config = SegmentConfig {
        rings: 1,
        capacity: 1024,
        instrument_capacity: 4,
    };
    let publisher = Publisher::create(&args.pong, config)?;
    let mut writer: RingWriter = publisher.writer(0)?;
    pin(args.core);
    let mut record = Record::zeroed();
    loop {
        match consumer.poll(&mut record) {
            Poll::Ready => {
                if record.venue_seq == STOP {
                    return Ok(());
                }
                writer.publish(&record);
            }
            Poll::Empty => core::hint::spin_loop(),
            other => bail!("ping channel reported {other:?}"),
        }
    }
}

fn iceoryx2_node() -> Result<iceoryx2::node::Node<iceoryx2::service::ipc::Service>> {
    iceoryx2::prelude::set_log_level(iceoryx2::prelude::LogLevel::Error);
    iceoryx2::prelude::NodeBuilder::new()
        .create::<iceoryx2::service::ipc::Service>()
        .map_err(|e| anyhow::anyhow!("iceoryx2 node: {e:?}"))
}

macro_rules! ix {
    ($e:expr, $what:literal) => {
        $e.map_err(|e| anyhow::anyhow!(concat!("iceoryx2 ", $what, ": {:?}"), e))?
    };
}

fn iceoryx2_service(
    node: &iceoryx2::node::Node<iceoryx2::service::ipc::Service>,
    name: &str,
) -> Result<
    iceoryx2::service::port_factory::publish_subscribe::PortFactory<
        iceoryx2::service::ipc::Service,
        Payload,
        (),
    >,
> {
    let service_name: iceoryx2::prelude::ServiceName = ix!(name.try_into(), "service name");
    Ok(ix!(
        node.service_builder(&service_name)
            .publish_subscribe::<Payload>()
            .open_or_create(),
        "service"
    ))
}

fn measure_iceoryx2(hop: &Hop) -> Result<Histogram<u64>> {
    let node = iceoryx2_node()?;
    let ping_service = iceoryx2_service(&node, &hop.ping)?;
    let pong_service = iceoryx2_service(&node, &hop.pong)?;
    let publisher = ix!(ping_service.publisher_builder().create(), "publisher");
    let subscriber = ix!(pong_service.subscriber_builder().create(), "subscriber");
    let mut child = hop.spawn_echo()?;
    // Wait until the echo process has connected both ports.
    let connected = Instant::now() + Duration::from_secs(30);
    while ping_service.dynamic_config().number_of_subscribers() == 0
        || pong_service.dynamic_config().number_of_publishers() == 0
    {
        if Instant::now() > connected {
            bail!("iceoryx2 echo process did not connect");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let mut payload: Payload = [0; 16];
    let histogram = hop.round_trips("iceoryx2 echo returned", |i| {
        payload[4] = i;
        ix!(publisher.send_copy(payload), "send");
        loop {
            if let Some(sample) = ix!(subscriber.receive(), "receive") {
                return Ok(sample[4]);
            }
            core::hint::spin_loop();
        }
    })?;
    payload[4] = STOP;
    ix!(publisher.send_copy(payload), "send stop");
    let status = child.0.wait()?;
    if !status.success() {
        bail!("iceoryx2 echo process failed: {status}");
    }
    Ok(histogram)
}

fn echo_iceoryx2(args: &EchoArgs) -> Result<()> {
    let node = iceoryx2_node()?;
    let ping_service = iceoryx2_service(&node, &args.ping)?;
    let pong_service = iceoryx2_service(&node, &args.pong)?;
    let subscriber = ix!(ping_service.subscriber_builder().create(), "subscriber");
    let publisher = ix!(pong_service.publisher_builder().create(), "publisher");
    pin(args.core);
    loop {
        if let Some(sample) = ix!(subscriber.receive(), "receive") {
            let payload: Payload = *sample;
            drop(sample);
            if payload[4] == STOP {
                return Ok(());
            }
            ix!(publisher.send_copy(payload), "send");
        } else {
            core::hint::spin_loop();
        }
    }
}

/// Runs the hidden echo child.
pub fn echo(args: &EchoArgs) -> Result<()> {
    match (args.transport, args.wake) {
        (Transport::Ringbolt, false) => echo_ringbolt(args),
        (Transport::Iceoryx2, false) => echo_iceoryx2(args),
        (Transport::Ringbolt, true) => wake::echo_ringbolt(args),
        (Transport::Iceoryx2, true) => wake::echo_iceoryx2(args),
    }
}

// After `ix!`: the wake-up measurement uses it.
#[path = "bus_wake.rs"]
mod wake;
