#![allow(clippy::expect_used, clippy::unwrap_used)]
//! Architecture invariants, checked (rust-analyzer's "code invariants are tested"): the allowed
//! dependency arrows between the workspace crates, the appliance binary's dependency tree, and
//! where threads, wall-clock reads and sockets may appear. Each failure is a sentence naming the
//! rule that broke and where. docs/ARCHITECTURE.md states the same rules in prose.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// Every workspace package and the workspace packages it may depend on (normal dependencies),
/// one crate a line: `crate: dependency dependency …`, names without the `ringbolt-` prefix
/// (`ringbolt` is the appliance binary, `lab` the lab binary). A new crate must be placed here
/// deliberately, with its arrows, and in docs/ARCHITECTURE.md's code map.
const ARROWS: &str = "
    # the contract and the leaves
    bus:
    net:
    service:
    telemetry: bus
    market: bus
    # sans-IO logic: feeds never reaches net; decide sees the market only through the bus
    feeds: bus market
    decide: bus market
    # the paper exchange: sans-IO, sees the market only through the bus
    paper: bus market
    exec: bus market net telemetry
    archive: bus market telemetry
    # processes as libraries
    collector: bus market net feeds service telemetry
    trade: bus market net decide exec archive service telemetry paper
    # the operator dashboard: a read-only bus observer (decide's market state for the view)
    dash: bus market decide feeds
    # the whole ringbolt.toml, composed of the processes' sections (used by the binaries only)
    config: collector trade decide archive dash service
    # the appliance binary: every process, no emulator, bench or test crate
    ringbolt: bus market net service telemetry feeds decide exec archive collector trade config paper dash
    # the venue side, the lab binary and the test kit (a dev-dependency only)
    sim: bus market exec
    lab: bus market net service telemetry feeds decide exec archive collector trade config sim paper dash
    testkit: bus sim
";

fn package(short: &str) -> String {
    if short == "ringbolt" {
        short.to_string()
    } else {
        format!("ringbolt-{short}")
    }
}

/// [`ARROWS`] as package name → allowed package names.
fn arrows() -> BTreeMap<String, BTreeSet<String>> {
    ARROWS
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (krate, deps) = l.split_once(':').expect("`crate: deps` line");
            (
                package(krate),
                deps.split_whitespace().map(package).collect(),
            )
        })
        .collect()
}

/// The one production dependency allowed to bring an HTTP stack into the appliance: the archive
/// shipper's S3 client (`object_store` → `reqwest` → `hyper`, ADR 0027; the archive names
/// `reqwest` itself only to choose its TLS). What these link is not checked against
/// [`NOT_IN_APPLIANCE`]; that only `ringbolt-archive` links them is.
const S3_CLIENT: &[&str] = &["object_store", "reqwest"];

/// Crates the appliance binary must not link: benches' and emulators' peers.
const NOT_IN_APPLIANCE: &[&str] = &[
    "iceoryx2",
    "hyper",
    "hyper-util",
    "tokio-tungstenite",
    "tokio-rustls",
    "rcgen",
    "ringbolt-sim",
    "ringbolt-lab",
    "ringbolt-testkit",
];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn metadata() -> Value {
    let platform = format!("{}-unknown-linux-gnu", std::env::consts::ARCH);
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--locked"])
        .args(["--filter-platform", &platform])
        .current_dir(workspace_root())
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON")
}

struct Workspace {
    /// Package name → (manifest dir, normal workspace deps, dev workspace deps).
    members: BTreeMap<String, Member>,
    /// Package id → name, for the resolve graph.
    names: BTreeMap<String, String>,
    /// Package id → ids of its normal (non-dev, non-build) dependencies.
    normal_edges: BTreeMap<String, Vec<String>>,
}

struct Member {
    id: String,
    dir: PathBuf,
    normal: BTreeSet<String>,
}

fn workspace() -> Workspace {
    let meta = metadata();
    let member_ids: BTreeSet<&str> = meta["workspace_members"]
        .as_array()
        .expect("workspace_members")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let mut names = BTreeMap::new();
    let mut members = BTreeMap::new();
    for pkg in meta["packages"].as_array().expect("packages") {
        let id = pkg["id"].as_str().expect("id").to_string();
        let name = pkg["name"].as_str().expect("name").to_string();
        names.insert(id.clone(), name.clone());
        if !member_ids.contains(id.as_str()) {
            continue;
        }
        let manifest = PathBuf::from(pkg["manifest_path"].as_str().expect("manifest_path"));
        let normal = pkg["dependencies"]
            .as_array()
            .expect("dependencies")
            .iter()
            .filter(|d| d["kind"].is_null() && d["path"].is_string())
            .map(|d| d["name"].as_str().expect("dep name").to_string())
            .collect();
        let dir = manifest.parent().expect("manifest dir").to_path_buf();
        members.insert(name, Member { id, dir, normal });
    }
    let mut normal_edges = BTreeMap::new();
    for node in meta["resolve"]["nodes"].as_array().expect("resolve nodes") {
        let id = node["id"].as_str().expect("node id").to_string();
        let deps = node["deps"]
            .as_array()
            .expect("node deps")
            .iter()
            .filter(|d| {
                d["dep_kinds"]
                    .as_array()
                    .is_some_and(|kinds| kinds.iter().any(|k| k["kind"].is_null()))
            })
            .map(|d| d["pkg"].as_str().expect("dep pkg").to_string())
            .collect();
        normal_edges.insert(id, deps);
    }
    Workspace {
        members,
        names,
        normal_edges,
    }
}

#[test]
fn every_crate_depends_only_along_the_allowed_arrows() {
    let ws = workspace();
    let arrows = arrows();
    let mut broken = Vec::new();
    for (name, member) in &ws.members {
        let Some(allowed) = arrows.get(name) else {
            broken.push(format!(
                "crate `{name}` is not in the architecture's table: add it with the crates it may \
                 depend on to tests/architecture.rs and to docs/ARCHITECTURE.md's code map"
            ));
            continue;
        };
        for dep in &member.normal {
            if !allowed.contains(dep) {
                broken.push(format!(
                    "`{name}` depends on `{dep}`, which the architecture does not allow \
                     (allowed: {allowed:?})"
                ));
            }
        }
    }
    for name in arrows.keys() {
        if !ws.members.contains_key(name) {
            broken.push(format!(
                "the architecture names `{name}`, which is not a workspace member"
            ));
        }
    }
    assert!(
        broken.is_empty(),
        "architecture rules broken:\n- {}",
        broken.join("\n- ")
    );
}

#[test]
fn the_appliance_binary_links_no_bench_or_emulator_crate() {
    let ws = workspace();
    let root = &ws.members["ringbolt"].id;
    let mut seen = BTreeSet::new();
    let mut stack = vec![root.clone()];
    let mut s3_linked_by = BTreeSet::new();
    while let Some(id) = stack.pop() {
        if seen.insert(id.clone()) {
            for dep in ws.normal_edges.get(&id).into_iter().flatten() {
                if S3_CLIENT.contains(&ws.names[dep].as_str()) {
                    s3_linked_by.insert(ws.names[&id].clone());
                    seen.insert(dep.clone());
                } else {
                    stack.push(dep.clone());
                }
            }
        }
    }
    assert!(
        s3_linked_by.iter().all(|n| n == "ringbolt-archive"),
        "only the archive shipper may link the S3 client {S3_CLIENT:?}; linked by {s3_linked_by:?}"
    );
    let linked: BTreeSet<&str> = seen.iter().map(|id| ws.names[id].as_str()).collect();
    let bad: Vec<&&str> = NOT_IN_APPLIANCE
        .iter()
        .filter(|n| linked.contains(**n))
        .collect();
    assert!(
        bad.is_empty(),
        "the appliance binary `ringbolt` (which holds the signing key) links {bad:?}: benches, \
         emulators and test peers belong to `ringbolt-lab` (see `cargo tree -p ringbolt -e normal -i <crate>`)"
    );
}

/// What a line of non-test source may not contain in a crate, and the files exempt from it.
struct SourceRule {
    what: &'static str,
    needles: &'static [&'static str],
    crates: &'static [&'static str],
    /// Paths relative to the crate's `src/` that may do it, with the reason in the docs.
    exempt: &'static [&'static str],
}

const THREADS: &[&str] = &["thread::spawn", "thread::Builder", "thread::scope"];
const CLOCK: &[&str] = &[
    "SystemTime::now",
    "Instant::now",
    "clock_gettime",
    "now_ns(",
];
const SOCKETS: &[&str] = &[
    "TcpStream",
    "TcpListener",
    "UdpSocket",
    "libc::socket",
    "tokio::net",
];

/// Calls that block the calling thread until a peer answers (DNS, TCP connect, TLS and
/// WebSocket handshakes run to completion).
const BLOCKING_CONNECT: &[&str] = &[
    "WsClient::connect",
    "Link::connect",
    "H2Client::connect",
    "HttpGet::start",
    "Driver::resolve",
    "http1::get(",
    "LinkConnect::finish",
    ".reconnect(",
    "to_socket_addrs",
];

/// What would let the dashboard write to a segment or take a consumer slot.
const BUS_WRITES: &[&str] = &[
    "Publisher",
    "RingWriter",
    "Consumer::new(",
    "Segment::open(",
    "Segment::open_wait(",
];

/// Arithmetic on bus instrument ids: an id is `generation << 16 | slot` and a slot is reused
/// under the next generation (ADR 0024), so consumers map ids through
/// `ringbolt_decide::IdMap` (generation-checked), never by arithmetic or as a flat index.
const ID_ARITHMETIC: &[&str] = &[
    "% SEGMENT_ID_SPAN",
    "%= SEGMENT_ID_SPAN",
    "SEGMENT_ID_SPAN + ",
    "instrument as usize]",
    "instrument as usize)",
];

const SOURCE_RULES: &[SourceRule] = &[
    SourceRule {
        what: "could write to the bus (the dashboard maps segments read-only and observes \
               them: `Segment::open_read_only` + `Consumer::observe`)",
        needles: BUS_WRITES,
        crates: &["ringbolt-dash"],
        exempt: &[],
    },
    SourceRule {
        what: "opens a socket outside the dashboard's page server and its /metrics scraper",
        needles: SOCKETS,
        crates: &["ringbolt-dash"],
        exempt: &["server.rs", "scrape.rs"],
    },
    SourceRule {
        what: "maps bus instrument ids by arithmetic (ids carry a slot generation: map them \
               through `ringbolt_decide::IdMap`, ADR 0024)",
        needles: ID_ARITHMETIC,
        crates: &[
            "ringbolt-decide",
            "ringbolt-trade",
            "ringbolt-paper",
            "ringbolt-exec",
            "ringbolt-archive",
            "ringbolt-collector",
            "ringbolt",
        ],
        // ids.rs is the map; the synth generator's own ids (features synth) are not bus ids.
        exempt: &["ids.rs", "features_cmd.rs"],
    },
    SourceRule {
        what: "blocks a ring thread on a connect (no ring thread blocks on connect: step a \
               `ws::WsConnect` / `HttpGet::begin` with the ring's resolver instead)",
        needles: BLOCKING_CONNECT,
        crates: &["ringbolt-collector"],
        // The discovery thread is a helper thread with its own driver.
        exempt: &["discovery.rs"],
    },
    SourceRule {
        what: "spawns a thread (sans-IO crates are driven by their caller)",
        needles: THREADS,
        crates: &[
            "ringbolt-market",
            "ringbolt-feeds",
            "ringbolt-decide",
            "ringbolt-bus",
        ],
        exempt: &[],
    },
    SourceRule {
        what: "reads the wall clock (sans-IO crates take time as an argument; decide uses event time only)",
        needles: CLOCK,
        crates: &["ringbolt-market", "ringbolt-feeds", "ringbolt-decide"],
        exempt: &[],
    },
    SourceRule {
        what: "spawns a thread outside the order client, the pool refill and the kill-switch watch",
        needles: THREADS,
        crates: &["ringbolt-exec"],
        exempt: &["pool.rs", "risk.rs", "client/"],
    },
    SourceRule {
        what: "opens a socket (sockets live in net, and listening endpoints in service, only)",
        needles: SOCKETS,
        crates: &[
            "ringbolt-bus",
            "ringbolt-market",
            "ringbolt-feeds",
            "ringbolt-decide",
            "ringbolt-exec",
            "ringbolt-archive",
            "ringbolt-telemetry",
            "ringbolt-collector",
            "ringbolt-trade",
            "ringbolt",
        ],
        exempt: &[],
    },
];

/// The crate's non-test source lines: files under `src/`, each cut at its `#[cfg(test)]` module.
fn source_lines(dir: &Path) -> Vec<(PathBuf, usize, String)> {
    let mut files = Vec::new();
    collect_rs(&dir.join("src"), &mut files);
    let mut lines = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read source");
        let rel = file
            .strip_prefix(dir.join("src"))
            .expect("under src")
            .to_path_buf();
        let mut prev_cfg_test = false;
        for (n, line) in text.lines().enumerate() {
            let trimmed = line.trim_start();
            if prev_cfg_test && trimmed.starts_with("mod ") {
                break;
            }
            prev_cfg_test = trimmed.starts_with("#[cfg(test)]");
            if trimmed.starts_with("//") {
                continue;
            }
            lines.push((rel.clone(), n + 1, line.to_string()));
        }
    }
    lines
}

fn collect_rs(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_rs(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn threads_clocks_and_sockets_stay_where_the_architecture_puts_them() {
    let ws = workspace();
    let mut broken = Vec::new();
    for rule in SOURCE_RULES {
        for krate in rule.crates {
            let Some(member) = ws.members.get(*krate) else {
                continue;
            };
            for (rel, n, line) in source_lines(&member.dir) {
                let rel_s = rel.to_string_lossy();
                if rule
                    .exempt
                    .iter()
                    .any(|e| rel_s == *e || rel_s.starts_with(e))
                {
                    continue;
                }
                if let Some(needle) = rule.needles.iter().find(|k| line.contains(**k)) {
                    broken.push(format!(
                        "`{krate}` {} at src/{rel_s}:{n} (`{needle}`)",
                        rule.what
                    ));
                }
            }
        }
    }
    assert!(
        broken.is_empty(),
        "architecture rules broken:\n- {}",
        broken.join("\n- ")
    );
}

#[test]
fn unsafe_code_lives_only_in_the_crates_that_need_it() {
    // bus maps shared memory; net drives io_uring and raw sockets; telemetry and the processes
    // pin threads and install signal handlers. Every block carries a `// SAFETY:` comment (clippy
    // denies undocumented unsafe blocks); pure-logic crates forbid it outright.
    let ws = workspace();
    let mut broken = Vec::new();
    for krate in [
        "ringbolt-market",
        "ringbolt-feeds",
        "ringbolt-decide",
        "ringbolt-dash",
    ] {
        let Some(member) = ws.members.get(krate) else {
            continue;
        };
        for (rel, n, line) in source_lines(&member.dir) {
            if line.contains("unsafe ") && !line.contains("forbid(unsafe_code)") {
                broken.push(format!(
                    "`{krate}` uses `unsafe` at src/{}:{n}",
                    rel.display()
                ));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "architecture rules broken:\n- {}",
        broken.join("\n- ")
    );
}
