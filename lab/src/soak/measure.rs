//! What the soak measures besides the bus: each process's resident memory and open file
//! descriptors from `/proc`, their least-squares slope, and per-interval latency percentiles.

use std::collections::BTreeMap;

use serde::Serialize;

/// One `/proc` sample of one process.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct ProcSample {
    /// Seconds since the soak started.
    pub t_s: f64,
    /// Process id (a restart changes it).
    pub pid: u32,
    /// Resident set size, KiB (`VmRSS`): private memory plus the pages of mapped files and
    /// shared memory the process has touched.
    pub rss_kib: u64,
    /// Private anonymous resident memory, KiB (`RssAnon`): heap, stacks — where a leak shows;
    /// `None` where the kernel does not report it.
    pub rss_anon_kib: Option<u64>,
    /// Resident shared memory, KiB (`RssShmem`): the bus segments' pages this process touched,
    /// which grows until each ring has been written round once (bounded by the segment sizes).
    pub rss_shmem_kib: Option<u64>,
    /// Open file descriptors (`/proc/<pid>/fd` entries).
    pub fds: u64,
}

/// Reads `VmRSS`, `RssAnon`, `RssShmem` and the fd count of `pid`; `None` when the process is
/// gone.
#[must_use]
pub fn sample(pid: u32, t_s: f64) -> Option<ProcSample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
    };
    let rss_kib = kib("VmRSS:")?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64;
    Some(ProcSample {
        t_s,
        pid,
        rss_kib,
        rss_anon_kib: kib("RssAnon:"),
        rss_shmem_kib: kib("RssShmem:"),
        fds,
    })
}

/// Least-squares slope of `y` over `x` (per unit of `x`); `None` with fewer than 3 points or
/// no spread in `x`.
#[must_use]
pub fn slope(points: &[(f64, f64)]) -> Option<f64> {
    if points.len() < 3 {
        return None;
    }
    let n = points.len() as f64;
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    (sxx > 0.0).then(|| sxy / sxx)
}

/// A process's samples and the trend of its last incarnation (the samples since its last
/// restart, the first one left out as warm-up when there are more than three).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Trend {
    /// Every sample, in time order.
    pub samples: Vec<ProcSample>,
    /// Samples the slopes were fitted on.
    pub fit_samples: usize,
    /// Minutes the fit spans.
    pub fit_minutes: f64,
    /// RSS slope, KiB per minute.
    pub rss_kib_per_min: Option<f64>,
    /// Private (anonymous) RSS slope, KiB per minute: the leak detector; `None` unless every
    /// fitted sample has `RssAnon` (the checker then judges `VmRSS`).
    pub anon_kib_per_min: Option<f64>,
    /// Mean private RSS over the fit, KiB.
    pub mean_anon_kib: f64,
    /// Shared-memory RSS at the last sample, KiB (bus pages touched; bounded by the segments).
    pub last_shmem_kib: u64,
    /// fd slope, per minute.
    pub fds_per_min: Option<f64>,
    /// Mean RSS over the fit, KiB.
    pub mean_rss_kib: f64,
    /// Largest minus smallest fd count over the fit.
    pub fds_range: u64,
}

impl Trend {
    /// Fits the slopes on the last incarnation's samples.
    pub fn fit(&mut self) {
        let Some(last) = self.samples.last() else {
            return;
        };
        let pid = last.pid;
        let start = self
            .samples
            .iter()
            .rposition(|s| s.pid != pid)
            .map_or(0, |i| i + 1);
        let mut fit: Vec<ProcSample> = self.samples[start..].to_vec();
        if fit.len() > 3 {
            fit.remove(0);
        }
        let minutes = |s: &ProcSample| s.t_s / 60.0;
        let rss: Vec<(f64, f64)> = fit.iter().map(|s| (minutes(s), s.rss_kib as f64)).collect();
        let fds: Vec<(f64, f64)> = fit.iter().map(|s| (minutes(s), s.fds as f64)).collect();
        self.fit_samples = fit.len();
        self.fit_minutes = match (fit.first(), fit.last()) {
            (Some(a), Some(b)) => (b.t_s - a.t_s) / 60.0,
            _ => 0.0,
        };
        let anon: Option<Vec<(f64, f64)>> = fit
            .iter()
            .map(|s| Some((minutes(s), s.rss_anon_kib? as f64)))
            .collect();
        self.rss_kib_per_min = slope(&rss);
        if let Some(anon) = anon {
            self.anon_kib_per_min = slope(&anon);
            self.mean_anon_kib = anon.iter().map(|p| p.1).sum::<f64>() / anon.len().max(1) as f64;
        }
        self.last_shmem_kib = fit.last().and_then(|s| s.rss_shmem_kib).unwrap_or(0);
        self.fds_per_min = slope(&fds);
        self.mean_rss_kib = rss.iter().map(|p| p.1).sum::<f64>() / rss.len().max(1) as f64;
        let (lo, hi) = fit
            .iter()
            .fold((u64::MAX, 0), |(lo, hi), s| (lo.min(s.fds), hi.max(s.fds)));
        self.fds_range = hi.saturating_sub(lo.min(hi));
    }
}

/// p50 and p99 of one stage in one interval.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct IntervalStage {
    /// Samples in the interval.
    pub samples: u64,
    /// Median, ns.
    pub p50_ns: u64,
    /// 99th percentile, ns.
    pub p99_ns: u64,
}

/// Per-stage latency creep: the median of the interval medians in the first and in the second
/// half of the run (the first interval left out as warm-up), and their ratio.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Creep {
    /// Intervals compared.
    pub intervals: usize,
    /// Median p50 of the first half, ns.
    pub first_half_p50_ns: u64,
    /// Median p50 of the second half, ns.
    pub second_half_p50_ns: u64,
    /// Median p99 of the first half, ns.
    pub first_half_p99_ns: u64,
    /// Median p99 of the second half, ns.
    pub second_half_p99_ns: u64,
    /// `second_half_p50_ns / first_half_p50_ns`.
    pub p50_ratio: f64,
}

fn median(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

/// Creep per stage over `intervals` (each a map stage → figures).
#[must_use]
pub fn creep(intervals: &[BTreeMap<&'static str, IntervalStage>]) -> BTreeMap<&'static str, Creep> {
    let mut out = BTreeMap::new();
    let stages: std::collections::BTreeSet<&'static str> =
        intervals.iter().flat_map(|m| m.keys().copied()).collect();
    for stage in stages {
        let series: Vec<IntervalStage> = intervals
            .iter()
            .skip(1)
            .filter_map(|m| m.get(stage).copied())
            .filter(|s| s.samples > 0)
            .collect();
        if series.len() < 2 {
            continue;
        }
        let (a, b) = series.split_at(series.len() / 2);
        let p50 = |h: &[IntervalStage]| median(h.iter().map(|s| s.p50_ns).collect());
        let p99 = |h: &[IntervalStage]| median(h.iter().map(|s| s.p99_ns).collect());
        let (f, s) = (p50(a), p50(b));
        out.insert(
            stage,
            Creep {
                intervals: series.len(),
                first_half_p50_ns: f,
                second_half_p50_ns: s,
                first_half_p99_ns: p99(a),
                second_half_p99_ns: p99(b),
                p50_ratio: if f > 0 { s as f64 / f as f64 } else { 0.0 },
            },
        );
    }
    out
}

/// p50 and max of millisecond samples.
#[must_use]
pub fn p50_max(v: &[u64]) -> serde_json::Value {
    let mut s = v.to_vec();
    s.sort_unstable();
    serde_json::json!({
        "n": s.len(),
        "p50_ms": s.get(s.len() / 2),
        "max_ms": s.last(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slope_of_a_line_and_of_noise() {
        let line: Vec<(f64, f64)> = (0..10)
            .map(|i| (f64::from(i), 3.0 * f64::from(i) + 7.0))
            .collect();
        assert!((slope(&line).unwrap_or(0.0) - 3.0).abs() < 1e-9);
        let flat: Vec<(f64, f64)> = (0..10)
            .map(|i| (f64::from(i), if i % 2 == 0 { 5.0 } else { 6.0 }))
            .collect();
        assert!(slope(&flat).unwrap_or(1.0).abs() < 0.1);
        assert!(slope(&line[..2]).is_none());
    }

    #[test]
    fn trend_fits_the_last_incarnation_only() {
        let mut t = Trend::default();
        for i in 0..5u32 {
            t.samples.push(ProcSample {
                t_s: f64::from(i) * 60.0,
                pid: 1,
                rss_kib: 1000 * (u64::from(i) + 1),
                rss_anon_kib: Some(300 * (u64::from(i) + 1)),
                rss_shmem_kib: Some(700 * (u64::from(i) + 1)),
                fds: 10,
            });
        }
        for i in 5..10u32 {
            t.samples.push(ProcSample {
                t_s: f64::from(i) * 60.0,
                pid: 2,
                rss_kib: 500 + 100 * u64::from(i),
                rss_anon_kib: Some(400),
                rss_shmem_kib: Some(100 + 100 * u64::from(i)),
                fds: 12,
            });
        }
        t.fit();
        assert_eq!(t.fit_samples, 4);
        // Total RSS rises with the shared pages touched; the private part is flat.
        assert!((t.rss_kib_per_min.unwrap_or(0.0) - 100.0).abs() < 1e-9);
        assert!(t.anon_kib_per_min.unwrap_or(1.0).abs() < 1e-9);
        assert_eq!(t.last_shmem_kib, 1000);
        // A kernel without `RssAnon` leaves the private slope unset (the checker judges VmRSS).
        for s in &mut t.samples {
            s.rss_anon_kib = None;
        }
        let mut t = Trend {
            samples: t.samples,
            ..Trend::default()
        };
        t.fit();
        assert!(t.anon_kib_per_min.is_none() && t.rss_kib_per_min.is_some());
        assert_eq!(t.fds_range, 0);
    }

    #[test]
    fn sampling_this_process() {
        let s = sample(std::process::id(), 0.0).unwrap();
        assert!(s.rss_kib > 0 && s.fds >= 3, "{s:?}");
        let anon = s.rss_anon_kib.unwrap();
        assert!(anon > 0 && anon <= s.rss_kib, "{s:?}");
    }

    #[test]
    fn creep_compares_halves() {
        let mk = |p50| {
            BTreeMap::from([(
                "x",
                IntervalStage {
                    samples: 10,
                    p50_ns: p50,
                    p99_ns: 2 * p50,
                },
            )])
        };
        let iv: Vec<_> = [999, 100, 100, 100, 200, 200, 200]
            .iter()
            .map(|&v| mk(v))
            .collect();
        let c = creep(&iv)["x"];
        assert_eq!((c.first_half_p50_ns, c.second_half_p50_ns), (100, 200));
        assert!((c.p50_ratio - 2.0).abs() < 1e-9);
    }
}
