//! `ringbolt bus …`: the pinned layout and live segment status.

use anyhow::{Context, Result};
use clap::Subcommand;
use ringbolt_bus::{Segment, schema};
use serde_json::json;

/// Bus inspection commands.
#[derive(Debug, Subcommand)]
pub enum BusCommand {
    /// Print the layout description that the schema-drift gate pins (bus/schema/layout-vN.txt).
    Layout,
    /// Print a live segment's header, ring heads, epoch and consumer lag as JSON.
    Status {
        /// Segment name (as in /dev/shm), e.g. `ringbolt-market`.
        #[arg(long)]
        segment: String,
    },
}

/// Runs a bus command.
pub fn run(command: BusCommand) -> Result<()> {
    match command {
        BusCommand::Layout => {
            print!("{}", schema::describe());
            Ok(())
        }
        BusCommand::Status { segment } => {
            let seg = Segment::open(&segment)
                .with_context(|| format!("opening bus segment {segment}"))?;
            let geometry = seg.geometry();
            let heads: Vec<u64> = (0..geometry.ring_count)
                .map(|ring| seg.head(ring))
                .collect();
            let consumers: Vec<_> = seg
                .consumers()
                .into_iter()
                .map(|c| {
                    json!({
                        "pid": c.pid, "ring": c.ring, "cursor": c.cursor, "lost_records": c.lost,
                        "lag_records": heads.get(c.ring).map_or(0, |h| h.saturating_sub(c.cursor)),
                    })
                })
                .collect();
            let status = json!({
                "segment": seg.name(),
                "layout_version": ringbolt_bus::LAYOUT_VERSION,
                "layout_fingerprint": format!("{:#018x}", schema::fingerprint()),
                "rings": geometry.ring_count,
                "capacity_records": geometry.capacity,
                "size_bytes": geometry.total_size(),
                "producer_pid": seg.producer_pid(),
                "epoch": seg.epoch(),
                "heads": heads,
                "consumers": consumers,
                "instruments": instruments_json(&seg),
            });
            println!("{}", serde_json::to_string_pretty(&status)?);
            Ok(())
        }
    }
}

/// The instrument table's occupancy (ADR 0024: retired entries are reused under a new
/// generation, so `live` — not uptime — is what must fit in `capacity`).
fn instruments_json(seg: &Segment) -> serde_json::Value {
    let s = seg.instrument_stats();
    json!({
        "capacity": s.capacity,
        "used": s.used,
        "live": s.live,
        "retired": s.retired,
        "max_generation": s.max_generation,
    })
}
