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
