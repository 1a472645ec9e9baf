//! The trade process's one loop: a [`RecordSource`] (bus consumers live, an archive in replay)
//! → [`Pipeline::process`] → an [`OrderSink`] (exec live, exec paper, or none) and a
//! [`DecisionSink`] (the output bus ring live, the parity checker in replay).
//!
//! `ringbolt trade`, `ringbolt replay` and the replay bench all run [`run`]; only the plugged-in
//! parts differ. Everything is generic (monomorphised per combination): the per-record path
//! has no dynamic dispatch and allocates nothing.

use std::ops::ControlFlow;

use anyhow::Result;
use ringbolt_bus::{Record, Venue};
use ringbolt_decide::engine::OrderIntent;
use ringbolt_decide::pipeline::{ModelLink, Pipeline};

/// What a [`RecordSource`] produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// A record of input `k` is in the caller's buffer.
    Record(usize),
    /// Nothing arrived (the source already backed off): time to drive the order sink.
    Idle,
    /// Periodic service point while records keep arriving (drive the order sink).
    Service,
    /// The source is exhausted or asked to stop.
    End,
}

/// Where the loop's records come from, in bus order per input.
pub trait RecordSource {
    /// Fills `rec` with the next record.
    ///
    /// # Errors
    /// A source that can no longer deliver records (a retired segment, an unreadable archive).
    fn next(&mut self, rec: &mut Record) -> Result<Next>;
    /// Venue and name of instrument `id` of input `k` (cold: once per instrument).
    fn instrument(&self, k: usize, id: u32) -> Option<(Venue, String)>;
    /// Whether an order connection awaits an answer (told at every idle and service turn): a
    /// source that sleeps when idle then sleeps only briefly, since the answer does not ring
    /// its doorbell. Default: ignored.
    #[inline]
    fn answer_due(&mut self, _due: bool) {}
}

/// Where fired intents go: exec (live or paper) or nowhere.
pub trait OrderSink {
    /// Input `k`'s `rec` is about to be decided (ids still in the input's space): an order sink
    /// learns the instruments it trades here (cold except at an instrument's first sight).
    fn observe<S: RecordSource>(&mut self, k: usize, rec: &Record, source: &S);
    /// A decision of input `k` (ids in the input's space) and, when it fired, its intent.
    fn order(&mut self, k: usize, decision: &Record, intent: Option<&OrderIntent>);
    /// Drives the connection without waiting (responses, keep-alive, kill switch).
    fn poll(&mut self);
    /// Requests sent and not yet answered (the loop then keeps its idle sleeps short).
    #[inline]
    fn awaiting(&self) -> bool {
        false
    }
    /// Hands the buffered order records (transitions, fills, settlements) to `publish`, in order.
    fn flush(&mut self, publish: impl FnMut(&Record));
    /// Whether a record this sink flushed is order truth the engine's positions follow
    /// ([`Pipeline::own_record`]); default all. The paper sink keeps exec's paper wire path
    /// (size-zero orders the venue rejects) out of the engine's accounting.
    #[inline]
    fn feeds_engine(_r: &Record) -> bool {
        true
    }
}

/// No orders: replay, and `ringbolt trade` without `[exec]`.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoOrders;

impl OrderSink for NoOrders {
    #[inline]
    fn observe<S: RecordSource>(&mut self, _k: usize, _rec: &Record, _source: &S) {}
    #[inline]
    fn order(&mut self, _k: usize, _decision: &Record, _intent: Option<&OrderIntent>) {}
    #[inline]
    fn poll(&mut self) {}
    #[inline]
    fn flush(&mut self, _publish: impl FnMut(&Record)) {}
}

/// Where decision records (and order transitions) go: the output bus ring, or the parity check.
pub trait DecisionSink<S> {
    /// Taken when a record arrives and handed back with its decision (live: a start time for
    /// the reflex-pass histogram; replay: nothing, so nothing is measured per record).
    type Mark: Copy;
    /// The mark for a record that just arrived.
    fn mark(&self) -> Self::Mark;
    /// Decision `d` of input `k`; `Break` ends the loop (replay stopping at a decision).
    fn decision(
        &mut self,
        k: usize,
        d: &mut Record,
        mark: Self::Mark,
        pipeline: &Pipeline,
        source: &S,
    ) -> ControlFlow<()>;
    /// An order transition, published after the decision it belongs to.
    fn transition(&mut self, r: &Record);
}

/// Publishes what `orders` buffered through `decisions` and feeds the engine's own records to
/// `pipeline` (positions from fills).
#[inline]
fn flush<S, O: OrderSink, D: DecisionSink<S>>(
    orders: &mut O,
    pipeline: &mut Pipeline,
    decisions: &mut D,
) {
    orders.flush(|r| {
        decisions.transition(r);
        if O::feeds_engine(r) {
            pipeline.own_record(r);
        }
    });
}

/// The loop: every record of `source` through `pipeline` (model hand-off through `link`),
/// decisions to `decisions`, fired intents to `orders`, until the source ends or the decision
/// sink breaks.
///
/// Determinism: the records an order sink emits while record N is processed (observed, decided,
/// ordered) are flushed — published and fed to [`Pipeline::own_record`] — before record N + 1,
/// whether or not N made a decision; idle turns only add what a venue connection answered.
///
/// # Errors
/// The source's errors.
pub fn run<S, L, O, D>(
    pipeline: &mut Pipeline,
    source: &mut S,
    link: &mut L,
    orders: &mut O,
    decisions: &mut D,
) -> Result<()>
where
    S: RecordSource,
    L: ModelLink,
    O: OrderSink,
    D: DecisionSink<S>,
{
    let mut rec = Record::zeroed();
    loop {
        let k = match source.next(&mut rec)? {
            Next::Record(k) => k,
            Next::Idle | Next::Service => {
                orders.poll();
                source.answer_due(orders.awaiting());
                flush::<S, _, _>(orders, pipeline, decisions);
                continue;
            }
            Next::End => {
                // A last look at the order connection, as every idle turn takes one.
                orders.poll();
                flush::<S, _, _>(orders, pipeline, decisions);
                return Ok(());
            }
        };
        let mark = decisions.mark();
        orders.observe(k, &rec, source);
        let src = &*source;
        let Some(mut d) = pipeline.process(k, &mut rec, |id| src.instrument(k, id), link) else {
            flush::<S, _, _>(orders, pipeline, decisions);
            continue;
        };
        let intent = pipeline.last_intent.take();
        orders.order(k, &d, intent.as_ref());
        if decisions
            .decision(k, &mut d, mark, pipeline, source)
            .is_break()
        {
            return Ok(());
        }
        flush::<S, _, _>(orders, pipeline, decisions);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::HashMap;

    use ringbolt_decide::DecideConfig;
    use ringbolt_decide::pipeline::NoModel;
    use ringbolt_decide::synth::{SynthConfig, SynthItem, SynthStream};

    use super::*;

    /// The synthetic market as a record source of one input (instruments announced in-stream).
    struct SynthSource {
        stream: SynthStream,
        names: HashMap<u32, (Venue, String)>,
    }

    impl RecordSource for SynthSource {
        fn next(&mut self, rec: &mut Record) -> Result<Next> {
            for item in self.stream.by_ref() {
                match item {
                    SynthItem::Instrument { id, venue, name } => {
                        self.names.insert(id, (venue, name));
                    }
                    SynthItem::Record(r) => {
                        *rec = r;
                        return Ok(Next::Record(0));
                    }
                }
            }
            Ok(Next::End)
        }

        fn instrument(&self, _k: usize, id: u32) -> Option<(Venue, String)> {
            self.names.get(&id).cloned()
        }
    }

    /// Collects decisions; breaks after `limit`.
    struct Collect {
        decisions: Vec<Record>,
        limit: usize,
    }

    impl<S> DecisionSink<S> for Collect {
        type Mark = ();
        fn mark(&self) {}
        fn decision(
            &mut self,
            _k: usize,
            d: &mut Record,
            (): (),
            _pipeline: &Pipeline,
            _source: &S,
        ) -> ControlFlow<()> {
            self.decisions.push(*d);
            if self.decisions.len() >= self.limit {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        }
        fn transition(&mut self, _r: &Record) {}
    }

    /// Fills every fired intent completely and at once (a Fill and a FILLED transition).
    #[derive(Default)]
    struct FillAll {
        pending: Vec<Record>,
        fired_shares: HashMap<i64, i64>,
    }

    impl OrderSink for FillAll {
        fn observe<S: RecordSource>(&mut self, _k: usize, _rec: &Record, _source: &S) {}
        fn order(&mut self, _k: usize, _decision: &Record, intent: Option<&OrderIntent>) {
            let Some(i) = intent else { return };
            *self.fired_shares.entry(i.window_start_s).or_default() += i.size;
            let fill = ringbolt_bus::Fill {
                ts_ns: i.decided_at_ns,
                client_order_id: i.client_order_id,
                price: i.price,
                size: i.size,
                fee_usdc: 0,
                window_start_s: i.window_start_s,
                trade_id: [0; 16],
                side: i.side as u8,
                liquidity: 2,
                status: 2,
                paper: 1,
                outcome: i.outcome as u8,
                reserved: [0; 11],
            };
            let t = ringbolt_bus::OrderTransition {
                client_order_id: i.client_order_id,
                price: i.price,
                size: i.size,
                filled: i.size,
                venue_order_id: [0; 16],
                error_class: 0,
                http_status: 0,
                from_state: ringbolt_bus::OrderState::Acked as u8,
                to_state: ringbolt_bus::OrderState::Filled as u8,
                side: i.side as u8,
                paper: 1,
                reserved: [0; 24],
            };
            self.pending
                .push(Record::new(Venue::Internal, 2, i.instrument, &fill));
            self.pending
                .push(Record::new(Venue::Internal, 2, i.instrument, &t));
        }
        fn poll(&mut self) {}
        fn flush(&mut self, mut publish: impl FnMut(&Record)) {
            self.pending.drain(..).for_each(|r| publish(&r));
        }
    }

    #[test]
    fn what_a_sink_flushes_moves_the_engine_positions() {
        let mut pipeline = Pipeline::new(DecideConfig::default(), 1, false);
        let mut source = SynthSource {
            stream: synth(),
            names: HashMap::new(),
        };
        let mut orders = FillAll::default();
        let mut sink = Collect {
            decisions: Vec::new(),
            limit: usize::MAX,
        };
        run(
            &mut pipeline,
            &mut source,
            &mut NoModel,
            &mut orders,
            &mut sink,
        )
        .unwrap();
        let fired = sink
            .decisions
            .iter()
            .filter(|d| d.body_as::<ringbolt_bus::Decision>().unwrap().fired == 1)
            .count() as u64;
        assert!(fired > 0);
        let st = pipeline.engine.stats;
        assert_eq!(st.fills_applied, fired, "every fill reached the engine");
        for (start, shares) in &orders.fired_shares {
            let w = pipeline.engine.state.window(*start).unwrap();
            assert!((w.position_shares - *shares as f64 / 1e8).abs() < 1e-9);
            assert_eq!(w.open_shares, 0.0, "FILLED released every reservation");
        }
    }

    fn synth() -> SynthStream {
        SynthStream::new(SynthConfig {
            seed: 5,
            windows: 2,
            ..SynthConfig::default()
        })
    }

    #[test]
    fn the_loop_decides_exactly_like_the_pipeline_pass_and_stops_when_asked() {
        // Reference: the per-record pass called directly.
        let mut reference = Pipeline::new(DecideConfig::default(), 1, false);
        let mut names = HashMap::new();
        let mut expected = Vec::new();
        for item in synth() {
            match item {
                SynthItem::Instrument { id, venue, name } => {
                    names.insert(id, (venue, name));
                }
                SynthItem::Record(mut r) => {
                    let lookup = |id: u32| names.get(&id).cloned();
                    if let Some(d) = reference.process(0, &mut r, lookup, &mut NoModel) {
                        expected.push(d);
                    }
                }
            }
        }
        assert!(expected.len() > 100, "the synthetic market decides");

        let run_until = |limit: usize| {
            let mut pipeline = Pipeline::new(DecideConfig::default(), 1, false);
            let mut source = SynthSource {
                stream: synth(),
                names: HashMap::new(),
            };
            let mut sink = Collect {
                decisions: Vec::new(),
                limit,
            };
            run(
                &mut pipeline,
                &mut source,
                &mut NoModel,
                &mut NoOrders,
                &mut sink,
            )
            .unwrap();
            sink.decisions
        };
        assert_eq!(run_until(usize::MAX), expected, "bit-identical decisions");
        assert_eq!(
            run_until(10),
            expected[..10],
            "a sink's Break ends the loop"
        );
    }
}
