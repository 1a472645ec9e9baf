//! The archive as the trade loop's record source (`ringbolt replay`): the input segments'
//! records of a Parquet archive, window by window, in their recorded bus order.

use std::time::Instant;

use anyhow::{Result, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use ringbolt_archive::reader::{ArchiveReader, Row, WindowKey, WindowRows};
use ringbolt_archive::tables::Table;
use ringbolt_bus::{Record, Venue};

use crate::config::TradeSections;
use crate::reflex::{Next, RecordSource};
use crate::replay::ReplayOptions;

/// Which archived segments are record inputs: the given list (the config's `[trade] inputs`),
/// else every segment that is neither a decision segment nor the archiver's own.
#[derive(Debug)]
pub(crate) struct Keep {
    inputs: Option<Vec<String>>,
    excluded: Vec<String>,
}

impl Keep {
    /// `inputs` when given, else every segment but `decision_segments` and the archiver's own.
    pub(crate) fn new(inputs: Option<Vec<String>>, decision_segments: &[String]) -> Self {
        let excluded = decision_segments
            .iter()
            .cloned()
            .chain([ringbolt_archive::archiver::SELF_SOURCE.to_owned()])
            .collect();
        Self { inputs, excluded }
    }

    fn keeps(&self, s: &str) -> bool {
        match &self.inputs {
            Some(list) => list.iter().any(|x| x == s),
            None => !self.excluded.iter().any(|x| x == s),
        }
    }
}

/// An archive read window by window: the rows of every record table (all but `gaps`) in bus
/// order, the next window read when the current one is used up.
#[derive(Debug)]
pub(crate) struct WindowCursor {
    pub(crate) reader: ArchiveReader,
    pub(crate) windows: Vec<WindowKey>,
    pub(crate) next_window: usize,
    rows: WindowRows,
    next_row: usize,
    tables: Vec<Table>,
    /// Time spent reading Parquet (s).
    pub(crate) read_s: f64,
}

impl WindowCursor {
    /// The windows of `reader` (of one UTC date when given) holding any record table.
    pub(crate) fn new(reader: ArchiveReader, date: Option<&str>) -> Self {
        let tables: Vec<Table> = Table::ALL
            .into_iter()
            .filter(|t| t.kind().is_some())
            .collect();
        let windows = reader.windows(&tables, date);
        Self {
            reader,
            windows,
            next_window: 0,
            rows: WindowRows::default(),
            next_row: 0,
            tables,
            read_s: 0.0,
        }
    }

    /// The next row whose segment `keep` keeps; `None` at the end of the archive.
    /// `before_window` runs before each window after the first is read, and once at the end.
    ///
    /// # Errors
    /// A window that cannot be read (the cursor then moves on to the next window).
    #[inline]
    pub(crate) fn next_row(
        &mut self,
        keep: &Keep,
        mut before_window: impl FnMut(&Self),
    ) -> Result<Option<Row>> {
        while self.next_row >= self.rows.rows.len() {
            if self.next_window > 0 {
                before_window(&*self);
            }
            let Some(key) = self.windows.get(self.next_window) else {
                return Ok(None);
            };
            self.next_window += 1;
            self.rows.rows.clear();
            self.next_row = 0;
            let t0 = Instant::now();
            self.reader
                .read_window(key, &self.tables, &|s| keep.keeps(s), &mut self.rows)?;
            self.read_s += t0.elapsed().as_secs_f64();
        }
        let row = self.rows.rows[self.next_row];
        self.next_row += 1;
        Ok(Some(row))
    }

    /// The last `n` rows of the current window up to the row last returned (bus order).
    pub(crate) fn history(&self, n: usize) -> &[Row] {
        &self.rows.rows[self.next_row.saturating_sub(n)..self.next_row]
    }
}

/// The archive as the loop's record source: the input segments' records, window by window, in
/// their recorded bus order. Segment `s` of the archive is pipeline input `k` in the config's
/// `[trade] inputs` order, else in order of first appearance.
#[derive(Debug)]
pub struct ArchiveSource {
    pub(crate) cursor: WindowCursor,
    keep: Keep,
    /// Reader segment index → pipeline input.
    seg_k: Vec<Option<usize>>,
    next_k: usize,
    max_segments: usize,
    /// Reader segment of the record last returned.
    current_segment: u16,
    /// Records returned.
    pub events: u64,
    started: Instant,
    pub(crate) progress: ProgressBar,
}

impl ArchiveSource {
    pub(crate) fn new(
        reader: ArchiveReader,
        a: &ReplayOptions,
        cfg: Option<&TradeSections>,
        decision_segments: &[String],
        quiet: bool,
    ) -> Result<Self> {
        let inputs: Option<Vec<String>> = cfg.map(|c| c.trade.inputs.clone());
        let max_segments = inputs.as_ref().map_or(8, |l| l.len().max(1));
        let cursor = WindowCursor::new(reader, a.date.as_deref());
        let progress = if a.no_progress || quiet {
            ProgressBar::hidden()
        } else {
            let pb = ProgressBar::with_draw_target(
                Some(cursor.windows.len() as u64),
                ProgressDrawTarget::stderr(),
            );
            pb.set_style(ProgressStyle::with_template(
                "{spinner} replay [{elapsed_precise}] {wide_bar} {pos}/{len} windows {msg}",
            )?);
            pb
        };
        Ok(Self {
            cursor,
            keep: Keep::new(inputs, decision_segments),
            seg_k: Vec::new(),
            next_k: 0,
            max_segments,
            current_segment: 0,
            events: 0,
            started: Instant::now(),
            progress,
        })
    }

    /// Input segments the pipeline must have room for.
    pub(crate) fn max_segments(&self) -> usize {
        self.max_segments
    }

    /// Time spent reading Parquet (s).
    pub(crate) fn read_s(&self) -> f64 {
        self.cursor.read_s
    }

    /// The last `n` rows of the current window up to the record last returned (bus order).
    pub(crate) fn history(&self, n: usize) -> &[Row] {
        self.cursor.history(n)
    }

    /// Pipeline input of reader segment `segment`.
    #[inline]
    fn input_of(&mut self, segment: u16) -> Result<usize> {
        let si = segment as usize;
        if si >= self.seg_k.len() {
            self.seg_k.resize(si + 1, None);
        }
        let k = match self.seg_k[si] {
            Some(k) => k,
            None => {
                let name = &self.cursor.reader.segments()[si];
                let k = self
                    .keep
                    .inputs
                    .as_ref()
                    .and_then(|l| l.iter().position(|x| x == name))
                    .unwrap_or(self.next_k);
                self.next_k += 1;
                self.seg_k[si] = Some(k);
                k
            }
        };
        if k >= self.max_segments {
            bail!(
                "more than {} input segments in the archive; give --config with [trade] inputs",
                self.max_segments
            );
        }
        Ok(k)
    }
}

impl RecordSource for ArchiveSource {
    #[inline]
    fn next(&mut self, rec: &mut Record) -> Result<Next> {
        let (progress, events, started) = (&self.progress, self.events, self.started);
        // A window done: the progress bar moves on (reading excluded from the rate).
        let row = self.cursor.next_row(&self.keep, |c| {
            progress.inc(1);
            let decide_s = started.elapsed().as_secs_f64() - c.read_s;
            progress.set_message(format!(
                "{} events, {:.2}M events/s",
                events,
                events as f64 / decide_s.max(1e-9) / 1e6
            ));
        })?;
        let Some(row) = row else {
            return Ok(Next::End);
        };
        let k = self.input_of(row.segment)?;
        *rec = row.record;
        self.current_segment = row.segment;
        self.events += 1;
        Ok(Next::Record(k))
    }

    fn instrument(&self, _k: usize, id: u32) -> Option<(Venue, String)> {
        self.cursor
            .reader
            .instrument(self.current_segment, id)
            .map(|(v, n)| (v, n.to_string()))
    }
}
