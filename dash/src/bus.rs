//! The bus thread: observes every ring of the configured segments through read-only mappings and
//! feeds the view; every update period it takes a chart point and publishes the tick.
//!
//! A segment that does not exist yet (or was retired) is retried once a second. The thread
//! sleeps when there is nothing to read: it never spins.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use ringbolt_bus::{Consumer, Poll, Record, Segment, Start};
use serde_json::{Value, json};

use crate::{Shared, lock};

/// Records read per ring before the thread looks at the clock again.
const BUDGET: usize = 4096;

/// One observed segment.
#[derive(Debug)]
struct Input {
    name: String,
    segment: Option<Arc<Segment>>,
    observers: Vec<Consumer>,
    lost: u64,
    epochs: u64,
    error: Option<String>,
}

impl Input {
    fn open(&mut self) {
        if self.segment.is_some() {
            return;
        }
        match Segment::open_read_only(&self.name) {
            Ok(segment) => {
                let rings = segment.geometry().ring_count;
                self.observers = (0..rings)
                    .filter_map(|r| Consumer::observe(&segment, r, Start::Oldest).ok())
                    .collect();
                self.segment = Some(segment);
                self.error = None;
            }
            Err(e) => self.error = Some(e.to_string()),
        }
    }

    fn status(&self) -> Value {
        json!({
            "name": self.name,
            "open": self.segment.is_some(),
            "read_only": self.segment.as_ref().is_some_and(|s| s.is_read_only()),
            "lag": self.observers.iter().map(Consumer::lag).sum::<u64>(),
            "lost": self.lost,
            "epochs": self.epochs,
            "error": self.error,
        })
    }
}

/// Reads what is there (bounded); returns records read.
fn drain(index: usize, input: &mut Input, view: &mut crate::view::View) -> usize {
    let Some(segment) = input.segment.clone() else {
        return 0;
    };
    let mut read = 0;
    let mut record = Record::zeroed();
    let mut retired = false;
    for observer in &mut input.observers {
        for _ in 0..BUDGET {
            match observer.poll(&mut record) {
                Poll::Ready => {
                    read += 1;
                    view.apply(index, &record, |id| segment.instrument(id));
                }
                Poll::Empty => break,
                Poll::Lost { count } => input.lost += count,
                Poll::EpochChanged { lost, .. } => {
                    input.lost += lost;
                    input.epochs += 1;
                }
                Poll::Retired => {
                    retired = true;
                    break;
                }
            }
        }
    }
    if retired {
        input.segment = None;
        input.observers.clear();
    }
    read
}

/// Starts the bus thread.
pub(crate) fn spawn(
    names: Vec<String>,
    period: Duration,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
) -> Result<JoinHandle<()>> {
    let mut inputs: Vec<Input> = names
        .into_iter()
        .map(|name| Input {
            name,
            segment: None,
            observers: Vec::new(),
            lost: 0,
            epochs: 0,
            error: None,
        })
        .collect();
    std::thread::Builder::new()
        .name("dash-bus".into())
        .spawn(move || {
            let mut next_open = Instant::now();
            let mut next_tick = Instant::now() + period;
            while !stop.load(Ordering::Relaxed) {
                if Instant::now() >= next_open {
                    inputs.iter_mut().for_each(Input::open);
                    next_open = Instant::now() + Duration::from_secs(1);
                }
                let read: usize = {
                    let mut view = lock(&shared.view);
                    inputs
                        .iter_mut()
                        .enumerate()
                        .map(|(i, input)| drain(i, input, &mut view))
                        .sum()
                };
                if Instant::now() >= next_tick {
                    next_tick += period;
                    tick(&shared, &inputs);
                } else if read == 0 {
                    let until_tick = next_tick.saturating_duration_since(Instant::now());
                    std::thread::sleep(until_tick.min(Duration::from_millis(5)));
                }
            }
        })
        .context("spawning the dash bus thread")
}

fn tick(shared: &Shared, inputs: &[Input]) {
    let now_ns = ringbolt_bus::now_ns();
    let (point, panels) = lock(&shared.view).sample(now_ns);
    let metrics = lock(&shared.metrics).clone();
    let message = json!({
        "type": "tick",
        "now_ns": now_ns,
        "point": point,
        "panels": panels,
        "metrics": metrics,
        "bus": inputs.iter().map(Input::status).collect::<Vec<_>>(),
    });
    shared.publish(message.to_string());
}
