//! `soak.json`: what the soak injected against what the appliance announced, and everything
//! else issue #18 asks a long run to show. `scripts/check-soak.py` judges it.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use ringbolt_bus::{FeedState, RecordKind, Venue};
use serde_json::{Value, json};

use super::measure::{self, p50_max};
use super::schedule::Action;
use super::{Observed, Routes};
use crate::demo::monitor::Monitor;
use crate::demo::supervisor::Supervisor;

/// Everything the report is built from.
pub struct Context<'a> {
    pub seconds: u64,
    pub elapsed: Duration,
    pub seed: u64,
    pub routes: &'a Routes,
    pub sup: &'a Supervisor,
    pub mon: &'a Monitor,
    pub obs: &'a Observed,
    pub emulator: Value,
    /// Replay of the first decision epoch (exit code, summary) and of each later one.
    pub replay: Option<super::ReplayRuns>,
}

fn venue_name(v: u8) -> &'static str {
    Venue::from_u8(v).map_or("unknown", Venue::as_str)
}

/// Per bus venue: disconnects announced on the connection stream, gap statuses on any stream,
/// and reconnect times (a `disconnected` to the next `live` of the venue's connection stream).
fn announced(mon: &Monitor) -> BTreeMap<&'static str, (u64, u64, Vec<u64>)> {
    let mut out: BTreeMap<&'static str, (u64, u64, Vec<u64>)> = BTreeMap::new();
    let mut down_since: BTreeMap<u8, i64> = BTreeMap::new();
    for e in mon.status_log.iter().flatten() {
        let entry = out.entry(venue_name(e.venue)).or_default();
        match e.state {
            Some(FeedState::Disconnected) if e.stream == 0 => {
                entry.0 += 1;
                down_since.entry(e.venue).or_insert(e.recv_ts_ns);
            }
            Some(FeedState::GapDetected) => entry.1 += 1,
            Some(FeedState::Live) if e.stream == 0 => {
                if let Some(t) = down_since.remove(&e.venue) {
                    entry
                        .2
                        .push(u64::try_from((e.recv_ts_ns - t) / 1_000_000).unwrap_or(0));
                }
            }
            _ => {}
        }
    }
    out
}

/// Injected (connections a connection-ending fault hit, per the proxy) against announced
/// (`disconnected` statuses), per venue.
fn streams(ctx: &Context<'_>) -> Value {
    let stats = ctx.routes.proxy.all_stats();
    let announced = announced(ctx.mon);
    let mut per_venue: BTreeMap<&'static str, Value> = BTreeMap::new();
    for (source, venue) in &ctx.routes.venue_of {
        let s = stats.get(source).cloned().unwrap_or_default();
        let v = per_venue.entry(venue).or_insert_with(
            || json!({"sources": [], "injected": 0, "faults": {}, "proxy_reconnect_ms": []}),
        );
        if let Some(a) = v["sources"].as_array_mut() {
            a.push(json!(source));
        }
        v["injected"] = json!(v["injected"].as_u64().unwrap_or(0) + s.connections_faulted);
        for (k, n) in &s.injected {
            v["faults"][*k] = json!(v["faults"][*k].as_u64().unwrap_or(0) + n);
        }
        if let Some(a) = v["proxy_reconnect_ms"].as_array_mut() {
            a.extend(s.reconnect_ms.iter().map(|x| json!(x)));
        }
    }
    for (venue, v) in &mut per_venue {
        let (down, gaps, rec) = announced.get(venue).cloned().unwrap_or_default();
        v["detected"] = json!(down);
        v["gap_statuses"] = json!(gaps);
        v["reconnect"] = p50_max(&rec);
        let proxy_rec: Vec<u64> = v["proxy_reconnect_ms"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_u64).collect())
            .unwrap_or_default();
        v["proxy_reconnect_ms"] = p50_max(&proxy_rec);
    }
    json!(per_venue)
}

fn clob(ctx: &Context<'_>) -> Value {
    let s = ctx.routes.proxy.stats("clob").unwrap_or_default();
    let events_hit = ctx
        .obs
        .done
        .iter()
        .filter(|(e, hit)| {
            *hit > 0
                && matches!(&e.action, Action::Proxy(r, f) if r == "clob" && f.ends_connection())
        })
        .count();
    json!({
        "faults": s.injected,
        "connections_faulted": s.connections_faulted,
        "fault_events_that_hit": events_hit,
        "reconnected": s.reconnect_ms.len(),
        "reconnect": p50_max(&s.reconnect_ms),
        "accepted": s.accepted,
    })
}

/// Archive rows per (table, venue) against what the monitor read on the bus, and market events
/// per venue against the archive report's.
fn archive(ctx: &Context<'_>, out: &Path) -> Value {
    let report =
        match ringbolt_archive::report::summarize(&out.join("archive"), None, &mut |_, _| {}) {
            Ok(r) => r,
            Err(e) => return json!({ "error": e.to_string() }),
        };
    let mut rows: BTreeMap<String, u64> = BTreeMap::new();
    let mut events: BTreeMap<String, u64> = BTreeMap::new();
    let mut gaps: BTreeMap<String, u64> = BTreeMap::new();
    for day in report.days.values() {
        for (table, venues) in &day.tables {
            for (venue, vol) in venues {
                *rows.entry(format!("{table}/{venue}")).or_insert(0) += vol.rows;
            }
        }
        for (v, n) in &day.events_by_venue {
            *events.entry(v.clone()).or_insert(0) += n;
        }
        for (k, g) in &day.gaps {
            *gaps.entry(k.clone()).or_insert(0) += g.records;
        }
    }
    let mut bus: BTreeMap<String, u64> = BTreeMap::new();
    for (&(v, _, k), &n) in &ctx.mon.events {
        let table = RecordKind::from_u8(k)
            .and_then(RecordKind::desc)
            .map_or("unknown", |d| d.table);
        *bus.entry(format!("{table}/{}", venue_name(v))).or_insert(0) += n;
    }
    let decisions_table = RecordKind::Decision.desc().map_or("decisions", |d| d.table);
    let archived_decisions: u64 = rows
        .iter()
        .filter(|(k, _)| k.starts_with(&format!("{decisions_table}/")))
        .map(|(_, n)| n)
        .sum();
    let market_rows: BTreeMap<&String, (u64, u64)> = bus
        .iter()
        .map(|(k, n)| (k, (*n, rows.get(k).copied().unwrap_or(0))))
        .collect();
    json!({
        "files": report.files,
        "rows_by_table_venue": rows,
        "bus_market_records_by_table_venue": bus,
        "market_rows_bus_vs_archive": market_rows,
        "market_events_bus": ctx.mon.events_per_venue(),
        "market_events_archive": events,
        "gaps_table_records": gaps,
        "decisions_bus": ctx.mon.decisions_total,
        "decisions_archive": archived_decisions,
    })
}

fn resources(obs: &Observed) -> Value {
    json!(obs.trends)
}

fn latency(obs: &Observed) -> Value {
    let intervals: Vec<Value> = obs
        .intervals
        .iter()
        .map(|(t, m)| json!({"t_s": t, "stages": m}))
        .collect();
    let series: Vec<_> = obs.intervals.iter().map(|(_, m)| m.clone()).collect();
    let totals: BTreeMap<&str, ringbolt_telemetry::Percentiles> = obs
        .totals
        .iter()
        .filter(|(_, h)| !h.is_empty())
        .map(|(k, h)| (*k, ringbolt_telemetry::Percentiles::of(h)))
        .collect();
    json!({
        "intervals": intervals,
        "creep": measure::creep(&series),
        "whole_run_ns": totals,
    })
}

fn schedule(obs: &Observed) -> Value {
    let mut kills: BTreeMap<&str, u64> = BTreeMap::new();
    let mut list = Vec::new();
    for (e, hit) in &obs.done {
        let at = e.at.as_secs();
        match &e.action {
            Action::Kill(c) => {
                *kills.entry(c).or_insert(0) += 1;
                list.push(json!({"at_s": at, "kill": c, "hit": hit}));
            }
            Action::Proxy(r, f) => {
                list.push(json!({"at_s": at, "route": r, "fault": f, "hit": hit}))
            }
        }
    }
    json!({ "kills": kills, "events": list })
}

/// The first trade session's replay, and for every restarted session (a later decision epoch)
/// whether its decisions are a prefix of the replay's (`prefix_parity`: a session stops where
/// it was killed or where the run ended, so the replay may go further).
pub(super) fn replay_json(runs: &super::ReplayRuns) -> Value {
    let ((code, summary), later) = runs;
    let later: Vec<Value> = later
        .iter()
        .map(|(epoch, code, s)| {
            let p = &s["parity"];
            json!({"epoch": epoch, "exit_code": code, "parity": p, "prefix_parity": is_prefix(p)})
        })
        .collect();
    json!({
        "exit_code": code,
        "summary": summary,
        "prefix_parity": is_prefix(&summary["parity"]),
        "restarted_sessions": later,
    })
}

/// Whether a session's live decisions are a prefix of the replay's: every live decision
/// matched in order, nothing fired live that replay did not, and replay diverges (if at all)
/// only after the session's last decision — a session killed -9 stops there, replay goes on.
fn is_prefix(p: &Value) -> bool {
    let live = p["decisions_live"].as_u64().unwrap_or(0);
    p["decisions_matched"].as_u64() == Some(live)
        && (p["first_divergence"].is_null() || p["first_divergence"].as_u64() == Some(live + 1))
        && p["fires_only_live"].as_u64() == Some(0)
}

/// The whole `soak.json`.
pub fn build(ctx: &Context<'_>, out: &Path) -> Value {
    let children: BTreeMap<&str, _> = ctx.sup.reports().into_iter().collect();
    let replay = ctx.replay.as_ref().map_or(Value::Null, replay_json);
    json!({
        "emulated": true,
        "seconds_requested": ctx.seconds,
        "seconds_run": ctx.elapsed.as_secs_f64(),
        "interrupted": super::STOP.load(std::sync::atomic::Ordering::Relaxed),
        "seed": ctx.seed,
        "machine": crate::machine::Machine::current(),
        "streams": streams(ctx),
        "clob": clob(ctx),
        "schedule": schedule(ctx.obs),
        "children": children,
        "market_epochs": ctx.mon.market_epochs,
        "observer_lost_records": ctx.mon.observer_lost,
        "decisions": {
            "total": ctx.mon.decisions_total,
            "fired": ctx.mon.decisions_fired,
            "fired_on_untrusted_book": ctx.mon.fired_on_untrusted_book,
        },
        "paper_exchange": { "fills": ctx.mon.paper_fills, "settlements": ctx.mon.paper_settlements },
        "resources": resources(ctx.obs),
        "latency": latency(ctx.obs),
        "archive": archive(ctx, out),
        "replay": replay,
        "proxy": ctx.routes.proxy.all_stats(),
        "emulator": ctx.emulator,
    })
}

/// A few lines on stdout.
pub fn print_summary(r: &Value) {
    println!("== ringbolt soak summary ==");
    println!("ran {:.0} s", r["seconds_run"].as_f64().unwrap_or(0.0));
    if let Some(m) = r["streams"].as_object() {
        for (v, s) in m {
            println!(
                "  {v:<16} injected {:>3} detected {:>3} gap statuses {:>3} reconnect p50 {} ms max {} ms",
                s["injected"],
                s["detected"],
                s["gap_statuses"],
                s["reconnect"]["p50_ms"],
                s["reconnect"]["max_ms"]
            );
        }
    }
    println!("clob {}", r["clob"]);
    println!(
        "kills {} epochs {}",
        r["schedule"]["kills"], r["market_epochs"]
    );
    if let Some(m) = r["resources"].as_object() {
        for (p, t) in m {
            println!(
                "  {p:<8} rss slope {} KiB/min (private {} KiB/min) fds slope {} /min over {:.1} min",
                t["rss_kib_per_min"],
                t["anon_kib_per_min"],
                t["fds_per_min"],
                t["fit_minutes"].as_f64().unwrap_or(0.0)
            );
        }
    }
    println!("replay {}", r["replay"]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restarted_session_is_judged_as_a_prefix_of_its_replay() {
        let first = (0, json!({"parity": {"passed": true}}));
        let stopped_early = json!({"parity": {"decisions_live": 10, "decisions_matched": 10,
            "first_divergence": 11, "fires_only_live": 0}});
        let diverged = json!({"parity": {"decisions_live": 10, "decisions_matched": 4,
            "first_divergence": 5, "fires_only_live": 0}});
        let v = replay_json(&(first, vec![(7, 1, stopped_early), (8, 1, diverged)]));
        assert_eq!(v["exit_code"], 0);
        let s = v["restarted_sessions"].as_array().unwrap();
        assert_eq!(s[0]["prefix_parity"], true);
        assert_eq!(s[1]["prefix_parity"], false);
        assert_eq!(s[1]["epoch"], 8);
        // A first session killed -9 after 10 decisions, replayed over the whole archive.
        let killed = (
            1,
            json!({"parity": {"decisions_live": 10, "decisions_matched": 10,
            "first_divergence": 11, "fires_only_live": 0}}),
        );
        assert_eq!(replay_json(&(killed, Vec::new()))["prefix_parity"], true);
    }
}
