//! Wake-up latency: publish → consumer running, with the consumer **asleep** when the record is
//! published, across processes. ringbolt's consumer sleeps on its segment's futex doorbell
//! (`WaitStrategy::SpinThenPark` with no spins); iceoryx2's on its event listener, woken by a
//! notifier after the publish-subscribe sample is sent (iceoryx2's own blocking pattern). Same
//! method for both: the parent pauses `--wake-gap-us` (the child falls asleep), stamps
//! `CLOCK_MONOTONIC`, publishes; the child, once running with the record, takes the difference
//! and sends it back (the parent sleeps for the reply the same way).

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use hdrhistogram::Histogram;
use iceoryx2::service::port_factory::PortFactory as _;
use ringbolt_bus::{
    Consumer, Poll, Publisher, Record, Segment, SegmentConfig, Start, Venue, WaitStrategy,
};
use serde_json::{Value, json};

use super::{
    BusBenchArgs, EchoArgs, Hop, Payload, STOP, Transport, iceoryx2_node, iceoryx2_service,
    new_histogram, pin, pin_to_all, transport_name,
};
use crate::bench::Percentiles;

/// Asleep at once, each sleep bounded (a lost wake-up would show as a ~1 s outlier).
const ASLEEP: WaitStrategy = WaitStrategy::SpinThenPark {
    spins: 0,
    park: Duration::from_secs(1),
};
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// `CLOCK_MONOTONIC` in ns (the same clock in every process).
fn mono_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer for clock_gettime.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &raw mut ts) };
    u64::try_from(ts.tv_sec).unwrap_or(0) * 1_000_000_000 + u64::try_from(ts.tv_nsec).unwrap_or(0)
}

/// Measures both transports; the JSON block of `bench bus`'s `"wake"`.
pub(super) fn run(
    args: &BusBenchArgs,
    parent_core: Option<usize>,
    child_core: Option<usize>,
) -> Value {
    let ours = measure(Transport::Ringbolt, args, parent_core, child_core);
    let peer = if args.skip_iceoryx2 {
        Err(anyhow::anyhow!("skipped by --skip-iceoryx2"))
    } else {
        measure(Transport::Iceoryx2, args, parent_core, child_core)
    };
    let pct = |h: &Result<Histogram<u64>>| match h {
        Ok(h) => json!(Percentiles::of(h)),
        Err(e) => json!({ "error": format!("{e:#}") }),
    };
    let (ratio, met) = match (&ours, &peer) {
        (Ok(o), Ok(p)) => {
            let (o, p) = (Percentiles::of(o), Percentiles::of(p));
            let r = |a: u64, b: u64| ((a as f64 / b.max(1) as f64) * 100.0).round() / 100.0;
            (
                json!({ "p50": r(p.p50_ns, o.p50_ns), "p99": r(p.p99_ns, o.p99_ns) }),
                json!(o.p50_ns <= p.p50_ns),
            )
        }
        _ => (Value::Null, Value::Null),
    };
    json!({
        "method": "publish -> consumer running with the record, consumer asleep (futex doorbell / \
                   iceoryx2 event listener + notifier); CLOCK_MONOTONIC stamped before publish, \
                   difference taken by the woken child; a pause before each publish",
        "iterations": args.wake_iterations,
        "gap_us": args.wake_gap_us,
        "load_avg_at_end": crate::demo::cpu::load_avg(),
        "ringbolt_wake": pct(&ours),
        "iceoryx2_wake": pct(&peer),
        "ratio_iceoryx2_over_ringbolt": ratio,
        "targets": { "not_slower_than_iceoryx2_p50": true, "met": met },
    })
}

fn measure(
    transport: Transport,
    args: &BusBenchArgs,
    parent_core: Option<usize>,
    child_core: Option<usize>,
) -> Result<Histogram<u64>> {
    tracing::info!(
        transport = transport_name(transport),
        iterations = args.wake_iterations,
        "measuring wake-up latency"
    );
    let tag = format!(
        "rb-wake-{}-{}",
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

/// Pins to the parent core; runs warm-up plus measured rounds of `one(i)` (pause, stamp,
/// publish, sleep for the reply) and records the wake-up each reply reports.
fn rounds(hop: &Hop, mut one: impl FnMut(u64) -> Result<u64>) -> Result<Histogram<u64>> {
    pin(hop.parent_core);
    let gap = Duration::from_micros(hop.args.wake_gap_us);
    let warmup = (hop.args.wake_iterations / 10).max(10);
    let mut histogram = new_histogram()?;
    for i in 0..warmup + hop.args.wake_iterations {
        std::thread::sleep(gap);
        let wake_ns = one(i)?;
        if i >= warmup {
            histogram.record(wake_ns.max(1))?;
        }
    }
    Ok(histogram)
}

fn segment_config() -> SegmentConfig {
    SegmentConfig {
        rings: 1,
        capacity: 1024,
        instrument_capacity: 4,
    }
}

fn measure_ringbolt(hop: &Hop) -> Result<Histogram<u64>> {
    let publisher = Publisher::create(&hop.ping, segment_config())?;
    let mut writer = publisher.writer(0)?;
    let mut child = hop.spawn_wake_echo()?;
    let segment = Segment::open_wait(&hop.pong, Duration::from_secs(30))?;
    let mut consumer = Consumer::new(&segment, 0, Start::Oldest)?;
    let body = ringbolt_bus::Heartbeat {
        pid: 0,
        role: 0,
        published: 0,
        reserved: [0; 64],
    };
    let mut record = Record::new(Venue::Internal, 0, 0, &body);
    let mut reply = Record::zeroed();
    let histogram = rounds(hop, |i| {
        record.venue_seq = i;
        record.exchange_ts_ns = i64::try_from(mono_ns()).unwrap_or(0);
        writer.publish(&record);
        match consumer.wait(&mut reply, ASLEEP, Some(Instant::now() + REPLY_TIMEOUT)) {
            Poll::Ready if reply.venue_seq == i => Ok(reply.exchange_ts_ns.unsigned_abs()),
            Poll::Ready => bail!("echo returned {} for {i}", reply.venue_seq),
            other => bail!("echo channel reported {other:?}"),
        }
    })?;
    record.venue_seq = STOP;
    writer.publish(&record);
    if !child.0.wait()?.success() {
        bail!("wake echo process failed");
    }
    Ok(histogram)
}

/// The ringbolt child: asleep on the ping segment's doorbell; echoes each record with the
/// measured wake-up in `exchange_ts_ns`.
pub(super) fn echo_ringbolt(args: &EchoArgs) -> Result<()> {
    let segment = Segment::open_wait(&args.ping, Duration::from_secs(30))?;
    let mut consumer = Consumer::new(&segment, 0, Start::Oldest)?;
    let publisher = Publisher::create(&args.pong, segment_config())?;
    let mut writer = publisher.writer(0)?;
    pin(args.core);
    let mut record = Record::zeroed();
    loop {
        match consumer.wait(&mut record, ASLEEP, None) {
            Poll::Ready => {
                let woke_ns = mono_ns();
                if record.venue_seq == STOP {
                    return Ok(());
                }
                let sent_ns = record.exchange_ts_ns.unsigned_abs();
                record.exchange_ts_ns = i64::try_from(woke_ns.saturating_sub(sent_ns))?;
                writer.publish(&record);
            }
            Poll::Empty => {}
            other => bail!("ping channel reported {other:?}"),
        }
    }
}

type Event = iceoryx2::service::port_factory::event::PortFactory<iceoryx2::service::ipc::Service>;

fn iceoryx2_event(
    node: &iceoryx2::node::Node<iceoryx2::service::ipc::Service>,
    name: &str,
) -> Result<Event> {
    let service_name: iceoryx2::prelude::ServiceName =
        ix!(format!("{name}-ev").as_str().try_into(), "event name");
    Ok(ix!(
        node.service_builder(&service_name).event().open_or_create(),
        "event service"
    ))
}

fn measure_iceoryx2(hop: &Hop) -> Result<Histogram<u64>> {
    let node = iceoryx2_node()?;
    let (ping, pong) = (
        iceoryx2_service(&node, &hop.ping)?,
        iceoryx2_service(&node, &hop.pong)?,
    );
    let (ping_ev, pong_ev) = (
        iceoryx2_event(&node, &hop.ping)?,
        iceoryx2_event(&node, &hop.pong)?,
    );
    let publisher = ix!(ping.publisher_builder().create(), "publisher");
    let notifier = ix!(ping_ev.notifier_builder().create(), "notifier");
    let subscriber = ix!(pong.subscriber_builder().create(), "subscriber");
    let listener = ix!(pong_ev.listener_builder().create(), "listener");
    let mut child = hop.spawn_wake_echo()?;
    let connected = Instant::now() + Duration::from_secs(30);
    while ping.dynamic_config().number_of_subscribers() == 0
        || ping_ev.dynamic_config().number_of_listeners() == 0
        || pong.dynamic_config().number_of_publishers() == 0
        || pong_ev.dynamic_config().number_of_notifiers() == 0
    {
        if Instant::now() > connected {
            bail!("iceoryx2 wake echo process did not connect");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let mut payload: Payload = [0; 16];
    let histogram = rounds(hop, |i| {
        payload[4] = i;
        payload[5] = mono_ns();
        ix!(publisher.send_copy(payload), "send");
        ix!(notifier.notify(), "notify");
        let deadline = Instant::now() + REPLY_TIMEOUT;
        loop {
            if let Some(sample) = ix!(subscriber.receive(), "receive") {
                if sample[4] != i {
                    bail!("iceoryx2 echo returned {} for {i}", sample[4]);
                }
                return Ok(sample[5]);
            }
            if Instant::now() > deadline {
                bail!("no iceoryx2 reply for {i}");
            }
            ix!(listener.timed_wait(|_| {}, Duration::from_secs(1)), "wait");
        }
    })?;
    payload[4] = STOP;
    ix!(publisher.send_copy(payload), "send stop");
    ix!(notifier.notify(), "notify stop");
    if !child.0.wait()?.success() {
        bail!("iceoryx2 wake echo process failed");
    }
    Ok(histogram)
}

/// The iceoryx2 child: asleep on its event listener; echoes each sample with the measured
/// wake-up in word 5, then notifies.
pub(super) fn echo_iceoryx2(args: &EchoArgs) -> Result<()> {
    let node = iceoryx2_node()?;
    let (ping, pong) = (
        iceoryx2_service(&node, &args.ping)?,
        iceoryx2_service(&node, &args.pong)?,
    );
    let (ping_ev, pong_ev) = (
        iceoryx2_event(&node, &args.ping)?,
        iceoryx2_event(&node, &args.pong)?,
    );
    let subscriber = ix!(ping.subscriber_builder().create(), "subscriber");
    let listener = ix!(ping_ev.listener_builder().create(), "listener");
    let publisher = ix!(pong.publisher_builder().create(), "publisher");
    let notifier = ix!(pong_ev.notifier_builder().create(), "notifier");
    pin(args.core);
    loop {
        while let Some(sample) = ix!(subscriber.receive(), "receive") {
            let woke_ns = mono_ns();
            let mut payload: Payload = *sample;
            drop(sample);
            if payload[4] == STOP {
                return Ok(());
            }
            payload[5] = woke_ns.saturating_sub(payload[5]);
            ix!(publisher.send_copy(payload), "send");
            ix!(notifier.notify(), "notify");
        }
        ix!(listener.timed_wait(|_| {}, Duration::from_secs(1)), "wait");
    }
}
