//! [`FrameDriver`]: an adapter with its instrument table, counters and action queue, fed frame by
//! frame. The collector wraps the same calls around its sockets; offline tools (`feeds parse`,
//! `bench parse`) and tests use it directly.

use ringbolt_bus::Venue;

use crate::adapter::{
    Action, Ctx, InstrumentTable, ParseError, RecordSink, RestRequest, VenueAdapter,
};
use crate::conn::{ConnCommand, ConnEvent, ConnMachine};
use crate::continuity::SyncMode;
use crate::counters::Counters;
use crate::venues::adapter_for;

/// One adapter and its state.
pub struct FrameDriver {
    /// The venue adapter.
    pub adapter: Box<dyn VenueAdapter>,
    /// Symbol → instrument id.
    pub instruments: InstrumentTable,
    /// Per-stream counters.
    pub counters: Counters,
    /// Actions the adapter queued and the caller has not taken yet.
    pub actions: Vec<Action>,
}

impl core::fmt::Debug for FrameDriver {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("FrameDriver")
            .field("venue", &self.adapter.venue())
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl FrameDriver {
    /// A driver for `venue` (`None` if no adapter exists yet). `auto_register` makes every
    /// symbol seen an instrument (offline tools); otherwise register instruments first.
    #[must_use]
    pub fn new(venue: Venue, mode: SyncMode, auto_register: bool) -> Option<Self> {
        Some(FrameDriver {
            adapter: adapter_for(venue, mode)?,
            instruments: InstrumentTable::new(auto_register),
            counters: Counters::new(),
            actions: Vec::with_capacity(8),
        })
    }

    /// The adapter and a [`Ctx`] over this driver's table, counters and action queue.
    fn parts<'a>(
        &'a mut self,
        recv_ts_ns: i64,
        sink: &'a mut dyn RecordSink,
    ) -> (&'a mut dyn VenueAdapter, Ctx<'a>) {
        let ctx = Ctx {
            recv_ts_ns,
            resolver: &mut self.instruments,
            sink,
            counters: &mut self.counters,
            actions: &mut self.actions,
        };
        (&mut *self.adapter, ctx)
    }

    /// Feeds one complete message; a failing frame is counted as a parse error (stream 0).
    ///
    /// # Errors
    /// The adapter's [`ParseError`].
    pub fn frame(
        &mut self,
        frame: &[u8],
        recv_ts_ns: i64,
        sink: &mut dyn RecordSink,
    ) -> Result<(), ParseError> {
        let (adapter, mut ctx) = self.parts(recv_ts_ns, sink);
        let r = adapter.on_frame(frame, &mut ctx);
        if r.is_err() {
            let c = self.counters.stream_mut(0);
            c.parse_errors += 1;
            c.messages += 1;
            c.bytes += frame.len() as u64;
        }
        r
    }

    /// Feeds a REST response body the adapter asked for.
    ///
    /// # Errors
    /// The adapter's [`ParseError`].
    pub fn rest(
        &mut self,
        request: &RestRequest,
        body: &[u8],
        recv_ts_ns: i64,
        sink: &mut dyn RecordSink,
    ) -> Result<(), ParseError> {
        let (adapter, mut ctx) = self.parts(recv_ts_ns, sink);
        let r = adapter.on_rest(request, body, &mut ctx);
        if r.is_err() {
            self.counters.stream_mut(0).parse_errors += 1;
        }
        r
    }

    /// Tells the adapter the connection was re-established.
    pub fn reconnected(&mut self, sink: &mut dyn RecordSink) {
        let (adapter, mut ctx) = self.parts(0, sink);
        adapter.on_reconnect(&mut ctx);
    }

    /// The registered name of instrument `id` (its symbol with an auto-registering table).
    #[must_use]
    pub fn instrument_name(&self, id: u32) -> &str {
        self.instruments.by_id(id).map_or("", |e| e.name.as_str())
    }

    /// Feeds a connection event to `machine` at `now_ns` and publishes the resulting
    /// transition as a `FeedStatus` record (stream 0, the connection) into `sink`, stamped
    /// `recv_ts_ns = now_ns`. A reconnect (a `Connect` command after the first connection)
    /// tells the adapter to restart its continuity state (it counts the reconnect). Returns the command
    /// the collector must perform.
    pub fn connection_event(
        &mut self,
        machine: &mut ConnMachine,
        event: ConnEvent,
        now_ns: u64,
        sink: &mut dyn RecordSink,
    ) -> Option<ConnCommand> {
        let before = machine.reconnects();
        let step = machine.handle(event, now_ns);
        if machine.reconnects() > before {
            // The adapter counts the reconnect on its stream(s) and restarts continuity.
            self.reconnected(sink);
        }
        if let Some(state) = step.status {
            let mut record = self.counters.status_record(self.adapter.venue(), 0, state);
            record.recv_ts_ns = i64::try_from(now_ns).unwrap_or(i64::MAX);
            sink.emit(&record);
        }
        step.command
    }
}
