//! The registry model of a venue whose state is stepped on the shared walk alone: the state
//! plus its two RNG streams (market and observation noise), for any [`Stepped`] state.

use std::any::Any;
use std::fmt::Debug;

use rand_chacha::ChaCha8Rng;

use crate::event::VenueEvent;
use crate::market::stream_rng;
use crate::venue::{StepCtx, VenueModel};

/// A venue state that observes the true price with a lag and steps on it.
pub trait Stepped: Send + Sync + Debug + 'static {
    /// Observation lag of the true price, ms.
    const LAG_MS: i64;
    /// RNG stream of the state (`+ 10`: its observation noise).
    const RNG_STREAM: u64;
    /// Fresh state.
    fn fresh(rng: &mut ChaCha8Rng) -> Self;
    /// One market step at `t_ms` around the observed price `mid_usd`.
    fn advance(
        &mut self,
        t_ms: i64,
        tick: u64,
        mid_usd: f64,
        rng: &mut ChaCha8Rng,
    ) -> Vec<VenueEvent>;
}

/// A [`Stepped`] state with its RNG streams.
#[derive(Debug)]
pub struct Walked<S> {
    state: S,
    rng: ChaCha8Rng,
    noise: ChaCha8Rng,
}

impl<S: Stepped> VenueModel for Walked<S> {
    fn step(&mut self, ctx: &StepCtx<'_>) -> Vec<VenueEvent> {
        let mid = ctx.view(S::LAG_MS, &mut self.noise);
        self.state.advance(ctx.t_ms, ctx.tick, mid, &mut self.rng)
    }
    fn as_any(&self) -> &dyn Any {
        &self.state
    }
}

/// Registry model factory for `S` (`model: Some(walked::model::<S>)`).
pub fn model<S: Stepped>(seed: u64) -> Box<dyn VenueModel> {
    let mut rng = stream_rng(seed, S::RNG_STREAM);
    let state = S::fresh(&mut rng);
    Box::new(Walked {
        state,
        rng,
        noise: stream_rng(seed, S::RNG_STREAM + 10),
    })
}

/// The registry glue of a walk-stepped venue, from its module's inherent API:
/// * [`Stepped`] for the state (its `new(rng)` and `step(t_ms, tick, mid_usd, rng)`);
/// * [`crate::venue::VenueSession`] for the session (its `on_text(text, Option<&State>, tick,
///   now_ms)` and `on_event(ev)`; the `checksum` fault complements the checksum of events whose
///   `Topic::Stream` name `$checksummed` accepts, see [`crate::okx::spoil_checksum`]);
/// * in tests, [`crate::okx::harness::Peer`] for the session.
macro_rules! walked_venue {
    (
        state: $state:ty,
        session: $session:ty,
        venue: $venue:expr,
        rng_stream: $stream:expr,
        checksummed: $checksummed:expr $(,)?
    ) => {
        impl $crate::walked::Stepped for $state {
            const LAG_MS: i64 = LAG_MS;
            const RNG_STREAM: u64 = $stream;
            fn fresh(rng: &mut ::rand_chacha::ChaCha8Rng) -> Self {
                Self::new(rng)
            }
            fn advance(
                &mut self,
                t_ms: i64,
                tick: u64,
                mid_usd: f64,
                rng: &mut ::rand_chacha::ChaCha8Rng,
            ) -> Vec<$crate::event::VenueEvent> {
                self.step(t_ms, tick, mid_usd, rng)
            }
        }

        impl $crate::venue::VenueSession for $session {
            fn on_text(&mut self, text: &str, hub: &$crate::hub::Hub) -> Vec<$crate::event::Out> {
                let state = hub.model_state::<$state>($venue);
                <$session>::on_text(self, text, state, hub.tick(), hub.now_ms())
            }
            fn on_event(&mut self, ev: &$crate::event::VenueEvent) -> Option<String> {
                <$session>::on_event(self, ev)
            }
            fn corrupt_checksum(
                &self,
                ev: &$crate::event::VenueEvent,
                text: &str,
            ) -> Option<String> {
                let checksummed: fn(&str) -> bool = $checksummed;
                match ev.topic {
                    $crate::event::Topic::Stream(t) if checksummed(t) => {
                        $crate::okx::spoil_checksum(text)
                    }
                    _ => None,
                }
            }
        }

        #[cfg(test)]
        impl $crate::okx::harness::Peer for $session {
            type State = $state;
            fn event(&mut self, ev: &$crate::event::VenueEvent) -> Option<String> {
                <$session>::on_event(self, ev)
            }
            fn text(
                &mut self,
                text: &str,
                st: &$state,
                tick: u64,
                now_ms: i64,
            ) -> Vec<$crate::event::Out> {
                <$session>::on_text(self, text, Some(st), tick, now_ms)
            }
        }
    };
}

/// A market event as a session subscribed to the topics in `subs` (topic → tick of its ack)
/// forwards it: a `Topic::Stream` event after its ack, a replayed line to any subscriber.
pub(crate) fn forward(
    subs: &std::collections::BTreeMap<&'static str, u64>,
    ev: &VenueEvent,
) -> Option<String> {
    match &ev.topic {
        crate::event::Topic::Stream(t) => match subs.get(t) {
            Some(since) if ev.tick > *since => Some(ev.text.to_string()),
            _ => None,
        },
        crate::event::Topic::Replay => (!subs.is_empty()).then(|| ev.text.to_string()),
        _ => None,
    }
}
