//! Cross-process tests of the bus: the producer runs in a child process (this test binary
//! re-executed with `RB_BUS_CHILD` set), the consumer in the test process.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a failed expectation is the test failing
use std::process::Child;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ringbolt_bus::{
    BookLevel, BusError, Consumer, Poll, Publisher, Record, Segment, SegmentConfig, Side, Start,
    Startup, Venue, WaitStrategy,
};
use ringbolt_testkit::guard::OnDrop;
use ringbolt_testkit::process::child_test;

const ROLE: &str = "RB_BUS_CHILD";

/// A record whose every word is derived from `(generation, i)`, so tearing is detectable.
fn pattern(generation: u64, i: u64) -> Record {
    let mut body = BookLevel {
        price: i64::try_from(i).unwrap_or(0),
        size: 0,
        side: Side::Buy as u8,
        reserved: [0; 63],
    };
    body.size = body.price.wrapping_mul(31).wrapping_add(7);
    for (k, byte) in body.reserved.iter_mut().enumerate() {
        *byte = (i as u8)
            .wrapping_add(k as u8)
            .wrapping_mul(generation as u8 | 1);
    }
    let mut record = Record::new(Venue::Coinbase, 3, 0, &body);
    record.venue_seq = i;
    record.exchange_ts_ns = (i as i64).wrapping_mul(1_000_003);
    record.recv_ts_ns = generation as i64;
    record.publish_ts_ns = !(i as i64);
    record
}

/// Checks a received record against the pattern; returns (generation, i).
fn check(record: &Record) -> (u64, u64) {
    let generation = record.recv_ts_ns as u64;
    let i = record.venue_seq;
    let mut expected = pattern(generation, i);
    expected.seq = record.seq;
    assert_eq!(
        *record, expected,
        "torn or corrupt record at seq {}",
        record.seq
    );
    (generation, i)
}

fn unique(name: &str) -> String {
    ringbolt_testkit::fs::unique("rb-test", name)
}

/// A fresh segment name for `tag`, unlinked when the guard drops.
fn fresh(tag: &str) -> (String, OnDrop<impl FnMut()>) {
    let name = unique(tag);
    let unlink = name.clone();
    (
        name,
        OnDrop::new(move || {
            let _ = Segment::unlink(&unlink);
        }),
    )
}

/// Spawns a producer child `role` publishing `count` records on segment `name` of `capacity`.
fn spawn_producer(role: &str, name: &str, capacity: u64, count: u64) -> Child {
    spawn(
        role,
        name,
        &[
            ("RB_BUS_CAPACITY", capacity.to_string()),
            ("RB_BUS_COUNT", count.to_string()),
        ],
    )
}

fn spawn(role: &str, segment: &str, extra: &[(&str, String)]) -> Child {
    let mut command = child_test(ROLE, role);
    command.env("RB_BUS_SEGMENT", segment);
    for (key, value) in extra {
        command.env(key, value);
    }
    command.spawn().expect("spawn child")
}

fn env_u64(key: &str) -> u64 {
    ringbolt_testkit::process::env_u64(key, 0)
}

/// Entry point of the child processes. Without `RB_BUS_CHILD` it does nothing.
#[test]
#[ignore = "child-process entry point: run only by the tests that spawn it (--include-ignored)"]
fn child_process_entry() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let name = std::env::var("RB_BUS_SEGMENT").expect("segment name");
    let capacity = env_u64("RB_BUS_CAPACITY") as usize;
    let count = env_u64("RB_BUS_COUNT");
    let generation = env_u64("RB_BUS_GENERATION");
    let config = SegmentConfig {
        rings: 1,
        capacity,
        instrument_capacity: 16,
    };
    let publisher = Publisher::create(&name, config).expect("create segment");
    let mut writer = publisher.writer(0).expect("writer");
    match role.as_str() {
        // Flow-controlled: waits for one consumer, never gets more than half a ring ahead of it.
        "paced" => {
            publisher
                .register_instrument(Venue::Coinbase, "BTC-USD")
                .expect("instrument");
            while publisher.slowest_consumer(0).is_none() {
                std::thread::sleep(Duration::from_millis(1));
            }
            let half = (capacity / 2) as u64;
            for i in 0..count {
                while writer.next_seq() - publisher.slowest_consumer(0).unwrap_or(0) > half {
                    std::thread::yield_now();
                }
                writer.publish(&pattern(generation, i));
            }
        }
        // Unpaced: publishes as fast as it can; the consumer will be lapped.
        "flood" => {
            while publisher.slowest_consumer(0).is_none() {
                std::thread::sleep(Duration::from_millis(1));
            }
            for i in 0..count {
                writer.publish(&pattern(generation, i));
            }
        }
        // Publishes forever at a moderate pace until killed.
        "forever" => {
            let mut i = 0;
            loop {
                for _ in 0..64 {
                    writer.publish(&pattern(generation, i));
                    i += 1;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        // Holds the segment until killed.
        "hold" => loop {
            std::thread::sleep(Duration::from_millis(50));
        },
        other => panic!("unknown child role {other}"),
    }
    std::process::exit(0);
}

#[test]
fn two_processes_exchange_millions_of_records_without_loss_or_tearing() {
    let (name, _cleanup) = fresh("millions");
    let count: u64 = 3_000_000;
    let mut child = spawn_producer("paced", &name, 1 << 14, count);
    let segment = Segment::open_wait(&name, Duration::from_secs(20)).expect("open");
    let mut consumer = Consumer::new(&segment, 0, Start::Oldest).expect("consumer");
    let mut record = Record::zeroed();
    let mut expected_i = 0;
    let deadline = Instant::now() + Duration::from_secs(240);
    while expected_i < count {
        match consumer.wait(&mut record, WaitStrategy::default(), Some(deadline)) {
            Poll::Ready => {
                let (generation, i) = check(&record);
                assert_eq!(generation, 0);
                assert_eq!(i, expected_i, "records out of order or lost");
                expected_i += 1;
            }
            other => panic!("unexpected {other:?} after {expected_i} records"),
        }
    }
    assert_eq!(consumer.lost_total(), 0);
    assert_eq!(
        segment.instrument(0),
        Some((Venue::Coinbase, "BTC-USD".to_owned()))
    );
    assert!(child.wait().expect("child").success());
}

#[test]
fn lapped_consumer_reports_exact_loss_and_resumes_at_live_edge() {
    let (name, _cleanup) = fresh("overrun");
    let count: u64 = 400_000;
    let mut child = spawn_producer("flood", &name, 256, count);
    let segment = Segment::open_wait(&name, Duration::from_secs(20)).expect("open");
    let mut consumer = Consumer::new(&segment, 0, Start::Oldest).expect("consumer");
    let start = consumer.next_seq();
    let mut record = Record::zeroed();
    let (mut delivered, mut lost, mut last_i) = (0u64, 0u64, None::<u64>);
    let mut overruns = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    while start + delivered + lost < start + count {
        match consumer.wait(&mut record, WaitStrategy::Spin, Some(deadline)) {
            Poll::Ready => {
                let (_, i) = check(&record);
                assert_eq!(record.seq - start, i, "sequence and payload disagree");
                if let Some(previous) = last_i {
                    assert!(i > previous);
                }
                last_i = Some(i);
                delivered += 1;
                // Read slowly so that the producer laps us.
                if delivered % 1024 == 0 {
                    std::thread::sleep(Duration::from_micros(300));
                }
            }
            Poll::Lost { count } => {
                assert!(count > 0);
                lost += count;
                overruns += 1;
            }
            Poll::Empty => panic!("timed out: delivered {delivered}, lost {lost}"),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(child.wait().expect("child").success());
    assert_eq!(
        delivered + lost,
        count,
        "every record is either delivered or counted as lost"
    );
    assert_eq!(consumer.lost_total(), lost);
    assert!(
        overruns > 0,
        "the slow consumer should have been lapped at least once"
    );
}

#[test]
fn sigkilled_producer_restart_is_detected_through_the_epoch() {
    let (name, _cleanup) = fresh("restart");
    let capacity = ("RB_BUS_CAPACITY", "4096".to_owned());
    let mut first = spawn(
        "forever",
        &name,
        &[capacity.clone(), ("RB_BUS_GENERATION", "1".into())],
    );
    let segment = Segment::open_wait(&name, Duration::from_secs(20)).expect("open");
    let mut consumer = Consumer::new(&segment, 0, Start::Oldest).expect("consumer");
    let first_epoch = consumer.epoch();
    let mut record = Record::zeroed();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen_first = 0;
    // On a loaded machine the consumer may be descheduled long enough to be lapped: that is
    // reported as an exact loss, never as a torn or out-of-order record.
    let mut lapped = 0;
    while seen_first < 5_000 {
        match consumer.wait(&mut record, WaitStrategy::default(), Some(deadline)) {
            Poll::Ready => {
                assert_eq!(check(&record).0, 1);
                seen_first += 1;
            }
            Poll::Lost { count } => lapped += count,
            other => panic!("unexpected {other:?}"),
        }
    }
    first.kill().expect("SIGKILL producer");
    first.wait().expect("reap");
    // Drain what the dead producer completed (or learn exactly how much of it we were lapped by).
    loop {
        match consumer.poll(&mut record) {
            Poll::Ready => assert_eq!(check(&record).0, 1),
            Poll::Lost { count } => lapped += count,
            Poll::Empty => break,
            other => panic!("unexpected {other:?} while draining a dead producer"),
        }
    }
    assert_eq!(consumer.lost_total(), lapped);
    assert_eq!(
        consumer.next_seq(),
        segment.head(0),
        "drained up to the dead producer's head"
    );
    let mut second = spawn(
        "forever",
        &name,
        &[capacity, ("RB_BUS_GENERATION", "2".into())],
    );
    let (mut changed, mut seen_second) = (None, 0);
    while seen_second < 5_000 {
        match consumer.wait(&mut record, WaitStrategy::default(), Some(deadline)) {
            Poll::Ready => {
                let (generation, _) = check(&record);
                assert_eq!(
                    generation, 2,
                    "an old-epoch record was delivered after the restart"
                );
                assert!(
                    changed.is_some(),
                    "new-epoch record before the epoch change was reported"
                );
                seen_second += 1;
            }
            // Lapped by the new producer after the change was reported: counted, not misread.
            Poll::Lost { count } if changed.is_some() => lapped += count,
            Poll::EpochChanged {
                old_epoch,
                new_epoch,
                lost,
            } => {
                assert!(changed.is_none(), "one restart, one epoch change");
                assert_eq!(old_epoch, first_epoch);
                assert_ne!(new_epoch, first_epoch);
                changed = Some((new_epoch, lost));
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let (new_epoch, lost) = changed.expect("epoch change reported");
    assert_eq!(
        consumer.lost_total(),
        lapped + lost,
        "every loss was reported with its count"
    );
    assert_eq!(segment.epoch(), new_epoch);
    assert_eq!(
        lost, 0,
        "everything the dead producer published was drained before the restart"
    );
    assert_eq!(segment.producer_pid(), second.id());
    second.kill().expect("kill second");
    second.wait().expect("reap");
}

#[test]
fn a_second_live_producer_is_refused() {
    let (name, _cleanup) = fresh("alive");
    let mut holder = spawn("hold", &name, &[("RB_BUS_CAPACITY", "64".to_owned())]);
    let segment = Segment::open_wait(&name, Duration::from_secs(20)).expect("open");
    let config = SegmentConfig {
        rings: 1,
        capacity: 64,
        instrument_capacity: 16,
    };
    match Publisher::create(&name, config) {
        Err(BusError::ProducerAlive { pid, .. }) => assert_eq!(pid, holder.id()),
        other => panic!("expected ProducerAlive, got {other:?}"),
    }
    holder.kill().expect("kill");
    holder.wait().expect("reap");
    drop(segment);
    let publisher = Publisher::create(&name, config).expect("take over after death");
    assert!(
        matches!(publisher.startup(), Startup::Restarted { previous_pid, .. } if previous_pid == holder.id())
    );
}

fn shm_path(name: &str) -> String {
    format!("/dev/shm/{name}")
}

#[test]
fn truncated_foreign_and_mismatched_segments_are_refused() {
    use std::os::unix::fs::PermissionsExt;
    let config = SegmentConfig {
        rings: 2,
        capacity: 1024,
        instrument_capacity: 16,
    };

    // Created with mode 0600.
    let (name, _cleanup) = fresh("mode");
    let publisher = Publisher::create(&name, config).expect("create");
    let mode = std::fs::metadata(shm_path(&name))
        .expect("stat")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    // Truncated.
    std::fs::OpenOptions::new()
        .write(true)
        .open(shm_path(&name))
        .expect("open shm file")
        .set_len(8192)
        .expect("truncate");
    match Segment::open(&name) {
        Err(BusError::Truncated { actual, .. }) => assert_eq!(actual, 8192),
        other => panic!("expected Truncated, got {other:?}"),
    }
    drop(publisher);

    // Foreign: same name, not ours.
    let (foreign, _cleanup_foreign) = fresh("foreign");
    std::fs::write(shm_path(&foreign), vec![0xAB; 65536]).expect("write foreign object");
    match Segment::open(&foreign) {
        Err(BusError::Foreign { magic, .. }) => assert_eq!(magic, [0xAB; 8]),
        other => panic!("expected Foreign, got {other:?}"),
    }
    assert!(matches!(
        Publisher::create(&foreign, config),
        Err(BusError::Foreign { .. })
    ));
    assert_eq!(
        std::fs::read(shm_path(&foreign)).expect("still there")[0],
        0xAB,
        "left untouched"
    );

    // Another layout version: refused by consumers, retired and recreated by a producer.
    let (other, _cleanup_other) = fresh("layout");
    drop(Publisher::create(&other, config).expect("create"));
    let mut bytes = std::fs::read(shm_path(&other)).expect("read");
    bytes[8..12].copy_from_slice(&999u32.to_le_bytes());
    std::fs::write(shm_path(&other), &bytes).expect("write");
    match Segment::open(&other) {
        Err(BusError::LayoutMismatch { found_version, .. }) => assert_eq!(found_version, 999),
        other => panic!("expected LayoutMismatch, got {other:?}"),
    }
    let recreated = Publisher::create(&other, config).expect("recreate");
    assert!(matches!(recreated.startup(), Startup::Recreated { .. }));
    Segment::open(&other).expect("new segment opens");

    // Missing.
    assert!(matches!(
        Segment::open(&unique("missing")),
        Err(BusError::NotFound { .. })
    ));
}

/// A consumer that opens the segment while its producer is still writing the header sees "not
/// ready yet" (which `open_wait` retries), never a foreign or mismatched object. The state word is
/// read before the fields it publishes; reading the magic first let a creator finish `initialise`
/// between the two reads (magic zero, state READY: `Foreign`), which failed a CI run.
#[test]
fn a_segment_opened_while_it_is_being_created_is_not_ready_never_foreign() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let config = SegmentConfig {
        rings: 1,
        capacity: 64,
        instrument_capacity: 4,
    };
    let (name, _cleanup) = fresh("openrace");
    let done = AtomicBool::new(false);
    let rounds = 20_000;
    let (opened, refused) = std::thread::scope(|scope| {
        scope.spawn(|| {
            for _ in 0..rounds {
                drop(Publisher::create(&name, config).expect("create"));
                Segment::unlink(&name).expect("unlink");
            }
            done.store(true, Ordering::Release);
        });
        let (mut opened, mut refused) = (0u64, 0u64);
        while !done.load(Ordering::Acquire) {
            match Segment::open(&name) {
                Ok(_) => opened += 1,
                Err(
                    BusError::NotFound { .. }
                    | BusError::NotReady { .. }
                    | BusError::Truncated { .. },
                ) => refused += 1,
                Err(other) => panic!("a segment being created read as {other:?}"),
            }
        }
        (opened, refused)
    });
    assert!(
        opened > 0 && refused > 0,
        "opened {opened}, refused {refused}"
    );
}

#[test]
fn independent_consumers_each_see_every_record() {
    let (name, _cleanup) = fresh("fanout");
    let config = SegmentConfig {
        rings: 2,
        capacity: 1024,
        instrument_capacity: 16,
    };
    let publisher = Publisher::create(&name, config).expect("create");
    let mut writer = publisher.writer(1).expect("writer");
    assert!(matches!(
        publisher.writer(1),
        Err(BusError::WriterTaken { .. })
    ));
    let segment = Segment::open(&name).expect("open");
    let mut a = Consumer::new(&segment, 1, Start::LiveEdge).expect("a");
    let mut b = Consumer::new(&segment, 1, Start::LiveEdge).expect("b");
    let mut other_ring = Consumer::new(&segment, 0, Start::LiveEdge).expect("ring 0");
    for i in 0..500 {
        writer.publish(&pattern(0, i));
    }
    let mut record = Record::zeroed();
    for consumer in [&mut a, &mut b] {
        for i in 0..500 {
            assert_eq!(consumer.poll(&mut record), Poll::Ready);
            assert_eq!(check(&record).1, i);
        }
        assert_eq!(consumer.poll(&mut record), Poll::Empty);
    }
    assert_eq!(other_ring.poll(&mut record), Poll::Empty);
    assert_eq!(segment.consumers().len(), 3);
}

/// The permissions `/proc/self/maps` shows for the mappings of segment `name` (`rw-s`, `r--s`).
fn mapping_permissions(name: &str) -> Vec<String> {
    let maps = std::fs::read_to_string("/proc/self/maps").expect("maps");
    let path = format!("/dev/shm/{name}");
    maps.lines()
        .filter(|l| l.ends_with(&path) || l.contains(&format!("{path} ")))
        .filter_map(|l| l.split_whitespace().nth(1).map(str::to_owned))
        .collect()
}

#[test]
fn a_read_only_observer_reads_everything_and_takes_no_registry_slot() {
    let (name, _cleanup) = fresh("observer");
    let config = SegmentConfig {
        rings: 1,
        capacity: 256,
        instrument_capacity: 16,
    };
    let publisher = Publisher::create(&name, config).expect("create");
    let mut writer = publisher.writer(0).expect("writer");
    let id = publisher
        .register_instrument(Venue::Coinbase, "BTC-USD")
        .expect("instrument");
    let segment = Segment::open_read_only(&name).expect("open read-only");
    assert!(segment.is_read_only());
    assert_eq!(
        mapping_permissions(&name)
            .iter()
            .filter(|p| p.as_str() == "r--s")
            .count(),
        1,
        "one PROT_READ shared mapping: {:?}",
        mapping_permissions(&name)
    );
    assert!(matches!(
        Consumer::new(&segment, 0, Start::Oldest),
        Err(BusError::ReadOnly { .. })
    ));
    let mut observer = Consumer::observe(&segment, 0, Start::Oldest).expect("observe");
    for i in 0..200 {
        writer.publish(&pattern(0, i));
    }
    let mut record = Record::zeroed();
    for i in 0..200 {
        assert_eq!(observer.poll(&mut record), Poll::Ready);
        assert_eq!(check(&record).1, i);
    }
    assert_eq!(observer.poll(&mut record), Poll::Empty);
    assert_eq!(
        segment.instrument(id),
        Some((Venue::Coinbase, "BTC-USD".to_owned()))
    );
    // Invisible to the registry and to the producer's slowest-consumer view, even when lapped.
    assert!(segment.consumers().is_empty());
    assert_eq!(publisher.slowest_consumer(0), None);
    for i in 0..600 {
        writer.publish(&pattern(1, i));
    }
    assert_eq!(observer.poll(&mut record), Poll::Lost { count: 600 });
    assert!(Segment::open_read_only("rb-test-no-such-segment").is_err());
}

#[test]
fn a_restarted_producer_lets_a_lagging_consumer_read_the_dead_producers_tail() {
    let (name, _cleanup) = fresh("tail");
    let capacity = ("RB_BUS_CAPACITY", "4096".to_owned());
    // The first producer publishes 3,000 records (less than a ring) once a consumer is
    // registered, then dies; the consumer has read none of them when the next producer starts.
    let mut first = spawn(
        "flood",
        &name,
        &[
            capacity.clone(),
            ("RB_BUS_COUNT", "3000".into()),
            ("RB_BUS_GENERATION", "1".into()),
        ],
    );
    let segment = Segment::open_wait(&name, Duration::from_secs(20)).expect("open");
    let mut consumer = Consumer::new(&segment, 0, Start::Oldest).expect("consumer");
    let first_epoch = consumer.epoch();
    assert!(first.wait().expect("reap").success());
    assert_eq!(segment.head(0), 3000);
    let mut second = spawn(
        "forever",
        &name,
        &[capacity, ("RB_BUS_GENERATION", "2".into())],
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while segment.producer_pid() != second.id() {
        assert!(
            Instant::now() < deadline,
            "the second producer never took over"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(
        segment.epoch(),
        first_epoch,
        "the restarted producer waits for the live consumer before its epoch begins"
    );
    let mut record = Record::zeroed();
    let (mut old_read, mut changed) = (0u64, None);
    while changed.is_none() {
        match consumer.wait(&mut record, WaitStrategy::default(), Some(deadline)) {
            Poll::Ready => {
                assert_eq!(
                    check(&record),
                    (1, old_read),
                    "the dead producer's records, in order"
                );
                old_read += 1;
            }
            Poll::EpochChanged { lost, .. } => changed = Some(lost),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        changed,
        Some(0),
        "nothing the dead producer published was lost"
    );
    assert_eq!(old_read, 3000);
    assert_eq!(consumer.lost_total(), 0);
    second.kill().expect("kill second");
    second.wait().expect("reap");
}

/// Reads every record `consumer` has until [`Poll::Empty`]: the patterns read, and the loss of
/// each epoch change on the way.
fn read_all(consumer: &mut Consumer) -> (Vec<(u64, u64)>, Vec<u64>) {
    let (mut read, mut changes) = (Vec::new(), Vec::new());
    let mut record = Record::zeroed();
    loop {
        match consumer.poll(&mut record) {
            Poll::Ready => read.push(check(&record)),
            Poll::EpochChanged { lost, .. } => changes.push(lost),
            Poll::Empty => return (read, changes),
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[test]
fn a_consumer_restarted_at_a_previous_epochs_cursor_reads_the_tail_left_in_the_ring() {
    let (name, _cleanup) = fresh("prev-epoch");
    let config = SegmentConfig {
        rings: 1,
        capacity: 1024,
        instrument_capacity: 16,
    };
    let first = Publisher::create(&name, config).expect("create");
    let mut writer = first.writer(0).expect("writer");
    for i in 0..600 {
        writer.publish(&pattern(1, i));
    }
    let old_epoch = first.segment().epoch();
    // A consumer committed its cursor at 200, then died; then the producer died.
    drop((writer, first));
    // The restarted producer (a take-over: same object, new epoch, sequences continue).
    let second = Publisher::create(&name, config).expect("take over");
    assert!(matches!(second.startup(), Startup::Restarted { .. }));
    let mut writer = second.writer(0).expect("writer");
    for i in 0..100 {
        writer.publish(&pattern(2, i));
    }
    let segment = Arc::clone(second.segment());
    let resume = Start::PreviousEpoch {
        epoch: old_epoch,
        seq: 200,
    };
    let mut consumer = Consumer::new(&segment, 0, resume).expect("consumer");
    assert_eq!(consumer.epoch(), old_epoch);
    let (read, changes) = read_all(&mut consumer);
    let expected: Vec<(u64, u64)> = (200..600)
        .map(|i| (1, i))
        .chain((0..100).map(|i| (2, i)))
        .collect();
    assert_eq!(read, expected, "the old tail, then the new epoch, in order");
    assert_eq!(changes, vec![0], "nothing was lost");
    assert_eq!(consumer.epoch(), segment.epoch());

    // The new epoch overwrites the oldest old slots first: after 624 new records the slot of
    // old sequence 200 is gone, and the whole unread tail (200..600) counts as lost.
    for i in 100..800 {
        writer.publish(&pattern(2, i));
    }
    let mut late = Consumer::new(&segment, 0, resume).expect("consumer");
    let (read, changes) = read_all(&mut late);
    assert_eq!(changes, vec![400], "the overwritten tail is lost, exactly");
    assert_eq!(read, (0..800).map(|i| (2, i)).collect::<Vec<_>>());
    assert_eq!(late.lost_total(), 400);

    // The current epoch is plain `At`; a cursor at the old epoch's end has nothing left.
    let (base, prev_end) = segment.epoch_bounds(0);
    assert_eq!(prev_end, 600);
    let current = Start::PreviousEpoch {
        epoch: segment.epoch(),
        seq: base + 10,
    };
    let at = Consumer::new(&segment, 0, current).expect("consumer");
    assert_eq!((at.epoch(), at.next_seq()), (segment.epoch(), base + 10));
    let done = Start::PreviousEpoch {
        epoch: old_epoch,
        seq: 600,
    };
    let oldest = Consumer::new(&segment, 0, done).expect("consumer");
    assert_eq!((oldest.epoch(), oldest.next_seq()), (segment.epoch(), base));
}

/// The creator writes the eight magic bytes as a plain copy. A consumer that reads them half
/// written (each byte 0 or already ours) while the state is still INITIALIZING is told "not
/// ready", never "foreign": the CI run of 2026-12-07 read `[0, 0, 0, 0, 0, 0, 0, b'S']`. A byte
/// that is neither, or a half magic once the state is READY, is a foreign object.
#[test]
fn a_half_written_magic_of_a_segment_being_created_is_not_ready() {
    let (name, _cleanup) = fresh("halfmagic");
    let mut bytes = vec![0u8; 65536];
    let open_with = |bytes: &[u8]| {
        std::fs::write(shm_path(&name), bytes).expect("write object");
        Segment::open(&name)
    };
    let half = [0, 0, 0, 0, 0, 0, 0, b'S'];
    for magic in [half, *b"RBOL\0\0\0\0", *b"\0BOLTB\0S", [0; 8], *b"RBOLTBUS"] {
        bytes[..8].copy_from_slice(&magic);
        match open_with(&bytes) {
            Err(BusError::NotReady { .. }) => {}
            other => panic!("magic {magic:?} while initialising: expected NotReady, got {other:?}"),
        }
    }
    bytes[..8].copy_from_slice(b"RBOLTBUX");
    assert!(matches!(open_with(&bytes), Err(BusError::Foreign { .. })));
    bytes[..8].copy_from_slice(&half);
    let at = std::mem::offset_of!(ringbolt_bus::layout::SegmentHeader, state);
    let ready = ringbolt_bus::layout::state::READY;
    bytes[at..at + 4].copy_from_slice(&ready.to_le_bytes());
    match open_with(&bytes) {
        Err(BusError::Foreign { magic, .. }) => assert_eq!(magic, half),
        other => panic!("expected Foreign, got {other:?}"),
    }
}
