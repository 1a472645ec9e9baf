//! A sans-IO reader of the Prometheus text exposition format (0.0.4), enough for the families
//! ringbolt's processes serve: `name{label="value",…} value` lines, `#` comments skipped, bad lines
//! counted and skipped. The dashboard reads it generically: a family that is missing is "no data".

use std::collections::BTreeMap;

/// One sample line.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// Metric name (`ringbolt_stage_latency_ns`, `ringbolt_feed_gaps_total`, …).
    pub name: String,
    /// Labels in file order.
    pub labels: Vec<(String, String)>,
    /// The value.
    pub value: f64,
}

impl Sample {
    /// The value of label `key`, if present.
    #[must_use]
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// A parsed exposition: the samples and the number of lines that did not parse.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Exposition {
    /// Every sample, in file order.
    pub samples: Vec<Sample>,
    /// Lines skipped because they were not `name[{labels}] value [timestamp]`.
    pub bad_lines: u64,
}

/// Parses an exposition.
#[must_use]
pub fn parse(text: &str) -> Exposition {
    let mut out = Exposition::default();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match parse_line(line) {
            Some(sample) => out.samples.push(sample),
            None => out.bad_lines += 1,
        }
    }
    out
}

fn parse_line(line: &str) -> Option<Sample> {
    let name_end = line
        .find(|c: char| c == '{' || c.is_ascii_whitespace())
        .unwrap_or(line.len());
    let name = &line[..name_end];
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
    {
        return None;
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(after) = rest.strip_prefix('{') {
        let (parsed, tail) = parse_labels(after)?;
        labels = parsed;
        rest = tail;
    }
    let value = rest.split_ascii_whitespace().next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// Parses `k="v",k2="v2"}` and returns the labels and what follows the `}`.
fn parse_labels(mut s: &str) -> Option<(Vec<(String, String)>, &str)> {
    let mut labels = Vec::new();
    loop {
        s = s.trim_start_matches([' ', ',']);
        if let Some(tail) = s.strip_prefix('}') {
            return Some((labels, tail));
        }
        let eq = s.find('=')?;
        let key = s[..eq].trim().to_owned();
        s = s[eq + 1..].strip_prefix('"')?;
        let mut value = String::new();
        let mut chars = s.char_indices();
        let end = loop {
            let (i, c) = chars.next()?;
            match c {
                '"' => break i,
                '\\' => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                c => value.push(c),
            }
        };
        labels.push((key, value));
        s = &s[end + 1..];
    }
}

/// Percentiles of one `(process, stage)` of the `ringbolt_stage_latency_ns` summary family.
pub type StageQuantiles = BTreeMap<String, f64>;

/// The stage latency summaries of an exposition, keyed by `(process, stage)`; quantile keys are
/// the label text (`0.5`, `0.99`, …) plus `count` when `…_count` is present.
#[must_use]
pub fn stage_latencies(
    exposition: &Exposition,
    fallback_process: &str,
) -> BTreeMap<(String, String), StageQuantiles> {
    let mut out: BTreeMap<(String, String), StageQuantiles> = BTreeMap::new();
    for s in &exposition.samples {
        let field = match s.name.as_str() {
            "ringbolt_stage_latency_ns" => match s.label("quantile") {
                Some(q) => q.to_owned(),
                None => continue,
            },
            "ringbolt_stage_latency_ns_count" => "count".to_owned(),
            _ => continue,
        };
        let Some(stage) = s.label("stage") else {
            continue;
        };
        let process = s.label("process").unwrap_or(fallback_process).to_owned();
        out.entry((process, stage.to_owned()))
            .or_default()
            .insert(field, s.value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# HELP ringbolt_stage_latency_ns Stage latency.\n\
# TYPE ringbolt_stage_latency_ns summary\n\
ringbolt_stage_latency_ns{process=\"trade\",stage=\"bus_to_decision\",quantile=\"0.5\"} 1200\n\
ringbolt_stage_latency_ns{process=\"trade\",stage=\"bus_to_decision\",quantile=\"0.99\"} 8800\n\
ringbolt_stage_latency_ns_count{process=\"trade\",stage=\"bus_to_decision\"} 42\n\
ringbolt_stage_latency_ns_sum{process=\"trade\",stage=\"bus_to_decision\"} 99\n\
ringbolt_feed_gaps_total{venue=\"coinbase\",source=\"coinbase\",stream=\"matches\"} 3\n\
odd line without value\n\
ringbolt_x{a=\"quote\\\"d, {x}\"} 1e3 1700000000\n";

    #[test]
    fn parses_summaries_counters_and_escapes_and_counts_bad_lines() {
        let e = parse(TEXT);
        assert_eq!(e.bad_lines, 1);
        assert_eq!(e.samples.len(), 6);
        let last = &e.samples[5];
        assert_eq!(last.label("a"), Some("quote\"d, {x}"));
        assert!((last.value - 1000.0).abs() < f64::EPSILON);
        let stages = stage_latencies(&e, "x");
        let q = &stages[&("trade".to_owned(), "bus_to_decision".to_owned())];
        assert!((q["0.5"] - 1200.0).abs() < f64::EPSILON);
        assert!((q["0.99"] - 8800.0).abs() < f64::EPSILON);
        assert!((q["count"] - 42.0).abs() < f64::EPSILON);
        assert_eq!(q.len(), 3);
    }

    #[test]
    fn a_missing_family_is_empty_not_an_error() {
        let e = parse("ringbolt_feed_state{venue=\"okx\"} 3\n");
        assert!(stage_latencies(&e, "feeds").is_empty());
        assert_eq!(parse("").samples.len(), 0);
    }
}
