//! The doorbell (futex wake-up) across real processes: no lost wake-ups under random delays on
//! both sides, sleepers withdrawn after kill -9, a producer restart waking sleepers at once, and
//! one consumer sleeping on two segments. Child roles are this test binary re-executed with
//! `RB_WAKE_CHILD` set.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a failed expectation is the test failing
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use ringbolt_bus::futex::Woke;
use ringbolt_bus::{
    Consumer, Doorbells, Poll, Publisher, Record, Segment, SegmentConfig, Start, WaitStrategy,
    now_ns,
};
use ringbolt_testkit::guard::OnDrop;
use ringbolt_testkit::process::{Reaper, child_test};

const ROLE: &str = "RB_WAKE_CHILD";
/// A sleep far longer than any test: a wait that hits it is a lost wake-up.
const LONG: Duration = Duration::from_secs(30);

fn config() -> SegmentConfig {
    SegmentConfig {
        rings: 1,
        capacity: 1024,
        instrument_capacity: 4,
    }
}

/// A fresh segment name for `tag`, unlinked when the guard drops.
fn fresh(tag: &str) -> (String, OnDrop<impl FnMut()>) {
    let name = ringbolt_testkit::fs::unique("rb-wake", tag);
    let unlink = name.clone();
    (
        name,
        OnDrop::new(move || {
            let _ = Segment::unlink(&unlink);
        }),
    )
}

fn spawn(role: &str, envs: &[(&str, &str)]) -> Reaper {
    let mut command = child_test(ROLE, role);
    for (key, value) in envs {
        command.env(key, value);
    }
    Reaper(command.spawn().expect("spawn child"))
}

/// xorshift64*: random delays without a dependency.
struct Rng(u64);

impl Rng {
    fn seeded() -> Self {
        Rng(now_ns().unsigned_abs() ^ (u64::from(std::process::id()) << 32) | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }

    /// A random pause: none, a spin of up to ~20 µs, a yield, or a sleep up to 300 µs, so the
    /// publish lands before, during and after the other side's announce/re-check/sleep steps.
    fn pause(&mut self) {
        match self.below(4) {
            0 => {}
            1 => {
                let until = Instant::now() + Duration::from_nanos(self.below(20_000));
                while Instant::now() < until {
                    std::hint::spin_loop();
                }
            }
            2 => std::thread::yield_now(),
            _ => std::thread::sleep(Duration::from_micros(self.below(300))),
        }
    }

    /// A wait strategy with few or no spins, so most waits reach the futex.
    fn strategy(&mut self) -> WaitStrategy {
        WaitStrategy::SpinThenPark {
            spins: [0, 1, 16, 200][self.below(4) as usize],
            park: LONG,
        }
    }
}

/// Waits for the next record; panics on anything but a record or past `limit`.
fn next(consumer: &mut Consumer, rng: &mut Rng, limit: Duration) -> (Record, Duration) {
    let mut record = Record::zeroed();
    let t0 = Instant::now();
    let poll = consumer.wait(&mut record, rng.strategy(), Some(t0 + limit));
    assert_eq!(
        poll,
        Poll::Ready,
        "no record within {limit:?}: a lost wake-up"
    );
    (record, t0.elapsed())
}

/// Ping-pong: the side that owns `mine` publishes round `i` after a random pause, then waits for
/// the other side's round `i` on `theirs`. Returns the longest wait.
fn ping_pong(mine: &str, theirs: &str, rounds: u64, first: bool) -> Duration {
    let publisher = Publisher::create(mine, config()).expect("create");
    let mut writer = publisher.writer(0).expect("writer");
    let segment = Segment::open_wait(theirs, Duration::from_secs(20)).expect("open peer");
    let mut consumer = Consumer::new(&segment, 0, Start::Oldest).expect("consumer");
    let mut rng = Rng::seeded();
    let mut longest = Duration::ZERO;
    let mut record = Record::zeroed();
    for i in 0..rounds {
        if !first {
            let (got, took) = next(&mut consumer, &mut rng, Duration::from_secs(10));
            assert_eq!(got.venue_seq, i, "rounds out of order");
            longest = longest.max(took);
        }
        rng.pause();
        record.venue_seq = i;
        writer.publish(&record);
        if first {
            let (got, took) = next(&mut consumer, &mut rng, Duration::from_secs(10));
            assert_eq!(got.venue_seq, i, "rounds out of order");
            longest = longest.max(took);
        }
    }
    longest
}

/// Entry point of the child processes. Without `RB_WAKE_CHILD` it does nothing.
#[test]
#[ignore = "child-process entry point: run only by the tests that spawn it (--include-ignored)"]
fn child_process_entry() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let env = |key: &str| std::env::var(key).expect(key);
    match role.as_str() {
        "pong" => {
            let rounds = env("RB_WAKE_ROUNDS").parse().expect("rounds");
            ping_pong(&env("RB_WAKE_MINE"), &env("RB_WAKE_THEIRS"), rounds, false);
        }
        // Owns a segment and publishes nothing until killed.
        "hold" => {
            let _publisher = Publisher::create(&env("RB_WAKE_MINE"), config()).expect("create");
            loop {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        // Sleeps on a silent segment until killed.
        "sleeper" => {
            let segment =
                Segment::open_wait(&env("RB_WAKE_THEIRS"), Duration::from_secs(20)).expect("open");
            let mut consumer = Consumer::new(&segment, 0, Start::LiveEdge).expect("consumer");
            let mut record = Record::zeroed();
            let _ = consumer.wait(
                &mut record,
                WaitStrategy::SpinThenPark {
                    spins: 0,
                    park: Duration::from_secs(600),
                },
                None,
            );
        }
        other => panic!("unknown child role {other}"),
    }
    std::process::exit(0);
}

/// 20,000 ping-pong rounds between two processes with random pauses on both sides and waits
/// that reach the futex most of the time: a single lost wake-up would stall a round for 30 s.
#[test]
fn no_lost_wakeups_between_processes_with_random_delays() {
    let (a, _ga) = fresh("ping");
    let (b, _gb) = fresh("pong");
    let rounds = 20_000u64;
    let rounds_text = rounds.to_string();
    let mut child = spawn(
        "pong",
        &[
            ("RB_WAKE_MINE", &b),
            ("RB_WAKE_THEIRS", &a),
            ("RB_WAKE_ROUNDS", &rounds_text),
        ],
    );
    let t0 = Instant::now();
    let longest = ping_pong(&a, &b, rounds, true);
    assert!(child.0.wait().expect("child").success(), "pong side failed");
    let segment = Segment::open(&a).expect("open");
    assert_eq!(
        segment.header().sleepers.load(Ordering::Acquire),
        0,
        "every sleeper withdrew"
    );
    eprintln!(
        "{rounds} rounds in {:?}, longest wait {longest:?}",
        t0.elapsed()
    );
    assert!(longest < Duration::from_secs(5), "longest wait {longest:?}");
}

/// A consumer killed while asleep stays counted in `sleepers` until its registry slot is
/// reclaimed; the next registration takes it out, so the producer stops ringing for nobody.
#[test]
fn a_consumer_killed_asleep_is_withdrawn_when_its_slot_is_reclaimed() {
    let (name, _g) = fresh("killed");
    let publisher = Publisher::create(&name, config()).expect("create");
    let mut writer = publisher.writer(0).expect("writer");
    let segment = publisher.segment();
    let mut child = spawn("sleeper", &[("RB_WAKE_THEIRS", &name)]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while segment.header().sleepers.load(Ordering::Acquire) == 0 {
        assert!(Instant::now() < deadline, "child never slept");
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = child.0.kill();
    let _ = child.0.wait();
    assert_eq!(segment.header().sleepers.load(Ordering::Acquire), 1);
    // The producer keeps ringing (a wake for nobody) until the count is fixed.
    let before = segment.header().wake_seq.load(Ordering::Acquire);
    writer.publish(&Record::zeroed());
    assert_eq!(
        segment.header().wake_seq.load(Ordering::Acquire),
        before + 1
    );
    let _consumer = Consumer::new(segment, 0, Start::LiveEdge).expect("consumer");
    assert_eq!(segment.header().sleepers.load(Ordering::Acquire), 0);
    writer.publish(&Record::zeroed());
    assert_eq!(
        segment.header().wake_seq.load(Ordering::Acquire),
        before + 1,
        "no ring when nobody sleeps"
    );
}

/// A consumer asleep on a silent segment whose producer is killed -9 and restarted wakes at
/// the restart (the new producer rings the doorbell), not at its timeout.
#[test]
fn a_producer_restart_wakes_sleepers_with_the_epoch_change() {
    let (name, _g) = fresh("restart");
    let mut first = spawn("hold", &[("RB_WAKE_MINE", &name)]);
    let segment = Segment::open_wait(&name, Duration::from_secs(20)).expect("open");
    let mut consumer = Consumer::new(&segment, 0, Start::LiveEdge).expect("consumer");
    let sleeper = std::thread::spawn(move || {
        let mut record = Record::zeroed();
        let strategy = WaitStrategy::SpinThenPark {
            spins: 0,
            park: LONG,
        };
        let t0 = Instant::now();
        let poll = consumer.wait(&mut record, strategy, Some(t0 + LONG));
        (poll, Instant::now())
    });
    while segment.header().sleepers.load(Ordering::Acquire) == 0 {
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = first.0.kill();
    let _ = first.0.wait();
    let restarted = Instant::now();
    let _second = spawn("hold", &[("RB_WAKE_MINE", &name)]);
    let (poll, woke) = sleeper.join().expect("sleeper");
    assert!(
        matches!(poll, Poll::EpochChanged { lost: 0, .. }),
        "got {poll:?}"
    );
    let after = woke.duration_since(restarted);
    assert!(
        after < Duration::from_secs(10),
        "woke {after:?} after the restart"
    );
}

/// One consumer sleeping on two segments (futex_waitv) wakes for a record on either.
#[test]
fn doorbells_wake_a_consumer_of_two_segments() {
    let (a, _ga) = fresh("two-a");
    let (b, _gb) = fresh("two-b");
    let pa = Publisher::create(&a, config()).expect("a");
    let pb = Publisher::create(&b, config()).expect("b");
    let mut wb = pb.writer(0).expect("writer b");
    let ca = Consumer::new(pa.segment(), 0, Start::LiveEdge).expect("consumer a");
    let cb = Consumer::new(pb.segment(), 0, Start::LiveEdge).expect("consumer b");
    let sleeper = std::thread::spawn(move || {
        let mut bells = Doorbells::new([&ca, &cb]);
        assert_eq!(bells.len(), 2);
        let t0 = Instant::now();
        let woke = bells.sleep(LONG, || ca.pending() || cb.pending());
        (woke, t0.elapsed(), cb.pending())
    });
    while pb.segment().header().sleepers.load(Ordering::Acquire) == 0 {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(20));
    wb.publish(&Record::zeroed());
    let (woke, took, pending) = sleeper.join().expect("sleeper");
    assert_eq!(woke, Woke::Signalled);
    assert!(pending, "woken with the record on b");
    assert!(took < Duration::from_secs(10), "took {took:?}");
    for p in [&pa, &pb] {
        assert_eq!(p.segment().header().sleepers.load(Ordering::Acquire), 0);
    }
}

/// A silent producer with nobody asleep never touches the futex word (the hot path is a load).
#[test]
fn publishing_with_nobody_asleep_never_rings() {
    let (name, _g) = fresh("quiet");
    let publisher = Publisher::create(&name, config()).expect("create");
    let mut writer = publisher.writer(0).expect("writer");
    let mut consumer = Consumer::new(publisher.segment(), 0, Start::LiveEdge).expect("consumer");
    let mut record = Record::zeroed();
    for _ in 0..10_000 {
        writer.publish(&record);
        assert_eq!(consumer.poll(&mut record), Poll::Ready);
    }
    assert_eq!(
        publisher
            .segment()
            .header()
            .wake_seq
            .load(Ordering::Acquire),
        0
    );
}
