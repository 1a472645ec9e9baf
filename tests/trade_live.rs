#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a failed expectation is the test failing
//! Live truth against the CLOB emulator (in-process, real TLS + HTTP/2 for orders and a real
//! TLS WebSocket for the user channel, both on the order client's io_uring driver), with non-zero
//! sizes: fills arrive over the user channel as `Fill` records (provisional, then confirmed),
//! positions and cash from those records equal the emulator's ledger exactly, a FAILED trade
//! reverts its fill, the spend caps hold across a restart through the journal, and a lost
//! heartbeat makes the venue cancel everything (the cancellation comes back over the channel).

use std::time::{Duration, Instant};

use ringbolt_bus::{Fill, OrderState, OrderTransition, Record, RecordKind, Side};
use ringbolt_exec::client::{ClientConfig, OrderClient, OrderTicket, create_or_derive_api_creds};
use ringbolt_exec::fills::TokenInfo;
use ringbolt_exec::journal::{Journal, recover};
use ringbolt_exec::ledger::Ledger;
use ringbolt_exec::risk::{KillSwitch, LiveOptIn, RiskError, RiskGate, RiskLimits, TradingMode};
use ringbolt_exec::{L2Signer, OrderInput, PrivateKey, SignedOrder};
use ringbolt_testkit::emulator::RunningEmulator;
use serde_json::Value;

const KEY_A: &str = "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318";
const WAIT: Duration = Duration::from_secs(20);
const INSTRUMENT: u32 = 7;

fn limits() -> RiskLimits {
    RiskLimits {
        max_order_notional_micros: Some(5_000_000),
        max_window_notional_micros: Some(12_000_000),
        max_day_notional_micros: Some(100_000_000),
        max_open_orders: Some(10),
    }
}

fn gate(journal: &std::path::Path) -> RiskGate {
    let live = TradingMode::live(LiveOptIn::operator_passed_live_flag());
    let mut g = RiskGate::new(live, limits(), KillSwitch::new()).unwrap();
    let (j, rec) = Journal::open(journal).unwrap();
    let now_s = (ringbolt_telemetry::now_ns() / 1_000_000_000) as u64;
    g.attach_journal(j, &rec, now_s);
    g
}

struct Live {
    emu: RunningEmulator,
    key: PrivateKey,
    api_key: String,
    token: String,
    client: OrderClient,
    recs: Vec<Record>,
    salt: u64,
}

impl Live {
    fn cfg(emu: &RunningEmulator) -> ClientConfig {
        let mut c = ClientConfig::emulator(emu.clob_port(), emu.ca_pem.clone());
        c.h2.request_timeout = Duration::from_secs(15);
        c.heartbeat_interval = Some(Duration::from_millis(200));
        c
    }

    fn connect(emu: RunningEmulator, journal: &std::path::Path) -> Live {
        let key = PrivateKey::from_hex(KEY_A).unwrap();
        let cfg = Self::cfg(&emu);
        let creds = create_or_derive_api_creds(&cfg, &key, 137, 0).unwrap();
        let api_key = creds.api_key.clone();
        let signer = L2Signer::new(&key.address(), creds).unwrap();
        let mut client = OrderClient::connect(&cfg, signer, gate(journal)).unwrap();
        let w = emu.windows();
        let list = w["windows"].as_array().unwrap();
        let i = list.iter().position(|w| w["current"] == true).unwrap();
        let token = list[i + 1]["up_token"].as_str().unwrap().to_string();
        let window_start_s = list[i + 1]["start_s"].as_i64().unwrap_or(0);
        client.register_token(
            INSTRUMENT,
            &token,
            TokenInfo {
                window_start_s,
                outcome: 0,
            },
        );
        let url = emu.info.clob.as_ref().unwrap().user_ws_url.clone();
        client.connect_user(&url).unwrap();
        Live {
            emu,
            key,
            api_key,
            token,
            client,
            recs: Vec::new(),
            salt: 9_000,
        }
    }

    fn signed(&mut self, side: &str, price: &str, size: &str) -> SignedOrder {
        self.salt += 1;
        let input: OrderInput = serde_json::from_value(serde_json::json!({
            "side": side, "kind": "limit", "price": price, "size": size,
            "token_id": self.token, "tick_size": "0.01", "salt": self.salt,
            "timestamp_ms": 1_790_000_000_000u64 + self.salt,
        }))
        .unwrap();
        input.into_spec().unwrap().sign(&self.key).unwrap()
    }

    /// Submits a BUY of `size` shares at `price` (both decimal text); its client order id.
    fn buy(&mut self, price: &str, size: &str) -> Result<u64, RiskError> {
        let o = self.signed("BUY", price, size);
        let price_e8 = (price.parse::<f64>().unwrap() * 1e8).round() as i64;
        let size_e8 = (size.parse::<f64>().unwrap() * 1e8).round() as i64;
        let ticket = OrderTicket {
            instrument: INSTRUMENT,
            side: Side::Buy,
            price_e8,
            size_e8,
            notional_micros: (i128::from(price_e8) * i128::from(size_e8) / 10i128.pow(10)) as u64,
        };
        match self.client.submit_signed(&o, ticket, &mut self.recs) {
            Ok(c) => Ok(c),
            Err(ringbolt_exec::client::SubmitError::Refused { reason, .. }) => Err(reason),
            Err(e) => panic!("{e:?}"),
        }
    }

    /// Polls until `done` holds (or panics after [`WAIT`]).
    fn until(&mut self, what: &str, mut done: impl FnMut(&Live) -> bool) {
        let t0 = Instant::now();
        while !done(self) {
            assert!(t0.elapsed() < WAIT, "timed out waiting for {what}");
            self.client
                .poll(Duration::from_millis(10), &mut self.recs)
                .unwrap();
        }
    }

    fn fills(&self, coid: u64) -> Vec<Fill> {
        self.recs
            .iter()
            .filter_map(Record::body_as::<Fill>)
            .filter(|f| f.client_order_id == coid)
            .collect()
    }

    fn state(&self, coid: u64) -> OrderState {
        self.client.core().order(coid).unwrap().state
    }

    fn ledger(&self) -> Ledger {
        let mut l = Ledger::new();
        for r in self
            .recs
            .iter()
            .filter(|r| r.kind == RecordKind::Fill as u8)
        {
            l.apply(r);
        }
        l
    }

    fn venue_account(&self) -> Value {
        self.emu.control("GET", "/clob/ledger")["accounts"][&self.api_key].clone()
    }
}

fn statuses(f: &[Fill]) -> Vec<u8> {
    f.iter().map(|f| f.status).collect()
}

#[test]
fn live_fills_positions_revert_caps_and_heartbeat_against_the_emulator() {
    let dir = ringbolt_testkit::fs::tempdir("rb-trade-live", "client");
    let journal = dir.join("exec.journal");
    let emu = RunningEmulator::clob("trade-live");
    // Every new API key starts with 1000 pUSD.
    let initial_usdc: i64 = 1_000_000_000;
    let _ = emu.control(
        "POST",
        &format!("/clob/params?mined_ms=100&confirmed_ms=300&initial_usdc_micro={initial_usdc}"),
    );
    let mut l = Live::connect(emu, &journal);

    fills_then_a_failed_revert(&mut l);
    positions_equal_the_venue_ledger(&mut l, initial_usdc);
    an_unknown_outcome_is_restored_by_its_fills(&mut l);
    let (mut l, resting) = caps_hold_across_a_restart(l, &journal);
    a_lost_heartbeat_cancels_everything(&mut l, &resting);
    std::fs::remove_dir_all(&dir).ok();
}

/// Steps 1-2: a taker fill provisional then confirmed; a FAILED trade reverting its fill.
fn fills_then_a_failed_revert(l: &mut Live) {
    // 1. A marketable BUY crosses the book (asks at 0.51): taker fills come over the user
    //    channel, provisional then confirmed; no fill is assumed from the REST response.
    let a = l.buy("0.60", "5").unwrap();
    l.until("the first fill confirmed", |l| {
        l.fills(a).iter().any(|f| f.status == 2)
    });
    let fa = l.fills(a);
    assert_eq!(statuses(&fa), vec![1, 2], "provisional, then confirmed");
    assert_eq!(fa[0].liquidity, 2, "taker");
    assert_eq!(fa[0].size, 5_00000000);
    let ta: Vec<(u8, u8, u16, u16, i64)> = l
        .recs
        .iter()
        .filter_map(Record::body_as::<OrderTransition>)
        .filter(|t| t.client_order_id == a)
        .map(|t| {
            (
                t.from_state,
                t.to_state,
                t.error_class,
                t.http_status,
                t.filled,
            )
        })
        .collect();
    assert_eq!(l.state(a), OrderState::Filled, "{ta:?}");

    // 2. The next trade FAILS: its provisional fill is reverted, the order goes back.
    let _ = l.emu.control("POST", "/clob/fail-next?count=1");
    let b = l.buy("0.60", "5").unwrap();
    l.until("the failed fill", |l| {
        l.fills(b).iter().any(|f| f.status == 3)
    });
    assert_eq!(statuses(&l.fills(b)), vec![1, 3]);
    let states: Vec<(u8, u8, i64)> = l
        .recs
        .iter()
        .filter_map(Record::body_as::<OrderTransition>)
        .filter(|t| t.client_order_id == b)
        .map(|t| (t.from_state, t.to_state, t.filled))
        .collect();
    assert!(
        states.contains(&(OrderState::Filled as u8, OrderState::Acked as u8, 0)),
        "FILLED back to ACKED with nothing filled: {states:?}"
    );
    assert_eq!(l.client.fill_counters().reverts, 1);
}

/// Step 3: the ledger from the fill records equals the venue's, by its ledger and its REST view.
fn positions_equal_the_venue_ledger(l: &mut Live, initial_usdc: i64) {
    // 3. Positions and cash from the fill records equal the emulator's ledger exactly.
    let book = l.ledger().token(INSTRUMENT);
    let acct = l.venue_account();
    let venue_shares_micro = acct["positions"][&l.token]["size_micro"].as_i64().unwrap();
    assert_eq!(book.shares_e8, venue_shares_micro * 100, "shares");
    assert_eq!(book.shares_e8, 5_00000000);
    let venue_cash_micro = acct["usdc_micro"].as_i64().unwrap() - initial_usdc;
    assert_eq!(book.cash_usdc_e8, venue_cash_micro * 100, "cash incl. fees");
    assert!(book.fees_usdc_e8 > 0, "the taker paid a fee");
    assert_eq!(book.provisional_shares_e8, 0);

    // The venue's REST view agrees: a reconciliation reads the shares held of the token.
    l.client.reconcile().unwrap();
    let recs_before = l.client.live_stats().reconciliations;
    // (The answers arrive in any order: wait for both.)
    l.until("the position and collateral check", |l| {
        l.client.venue_positions().get(&INSTRUMENT) == Some(&book.shares_e8)
            && l.client.live_stats().collateral_micros * 100
                == initial_usdc * 100 + book.cash_usdc_e8
    });
    assert!(recs_before >= 2);
}

/// Step 4: an accepted order whose response was dropped.
fn an_unknown_outcome_is_restored_by_its_fills(l: &mut Live) {
    // 4. The venue accepts an order but its response is dropped: the order's outcome is
    //    unknown locally, never resent; its fills over the user channel restore it to FILLED.
    l.emu.fault("clob", "kind=drop_response&count=1");
    let c = l.buy("0.60", "5").unwrap();
    l.until("the unknown order's fills confirmed", |l| {
        l.fills(c).iter().any(|f| f.status == 2) && l.state(c) == OrderState::Filled
    });
    assert_eq!(statuses(&l.fills(c)), vec![1, 2]);
    assert_eq!(l.client.stats().orders_sent, 3, "nothing was resent");
    let acct = l.venue_account();
    let venue_shares_micro = acct["positions"][&l.token]["size_micro"].as_i64().unwrap();
    assert_eq!(
        l.ledger().token(INSTRUMENT).shares_e8,
        venue_shares_micro * 100
    );
    assert_eq!(venue_shares_micro, 10_000_000);
}

/// Step 5: the client is dropped without shutdown; the journal keeps the spend. Returns the new
/// session and its resting orders.
fn caps_hold_across_a_restart(l: Live, journal: &std::path::Path) -> (Live, Vec<u64>) {
    // 5. Caps: 3 × 3.00 spent of the 12.00 window cap; a restart (the client and its gate are
    //    dropped without any shutdown step) keeps the spend.
    let (used, _) = l.client.gate().used();
    assert_eq!(used, 9_000_000);
    let Live { emu, client, .. } = l;
    drop(client);
    let mut l = Live::connect(emu, journal);
    let (restored, _) = l.client.gate().used();
    assert!(restored >= 9_000_000, "spend restored: {restored}");
    let mut admitted = 0u64;
    while l.buy("0.30", "5").is_ok() {
        admitted += 1;
        assert!(admitted < 10);
    }
    assert!(
        restored + admitted * 1_500_000 <= 12_000_000,
        "the window cap holds across the restart ({restored} + {admitted} × 1.5)"
    );
    assert!(matches!(
        l.buy("0.30", "5"),
        Err(RiskError::WindowNotional { .. })
    ));
    let resting: Vec<u64> = l
        .client
        .core()
        .orders()
        .filter(|o| o.price_e8 == 30_000_000 && o.state != OrderState::Rejected)
        .map(|o| o.client_order_id)
        .collect();
    assert_eq!(resting.len() as u64, admitted);
    l.until("the resting orders acked", |l| {
        resting.iter().all(|c| l.state(*c) == OrderState::Acked)
    });

    (l, resting)
}

/// Step 6: heartbeats stop; the venue cancels; the channel tells.
fn a_lost_heartbeat_cancels_everything(l: &mut Live, resting: &[u64]) {
    // 6. A lost heartbeat: stop polling (no heartbeats) past the venue's timeout; the venue
    //    cancels everything and the cancellations come back over the user channel.
    let _ = l
        .emu
        .control("POST", "/clob/params?heartbeat_timeout_ms=400");
    std::thread::sleep(Duration::from_millis(1500));
    l.until("the venue's cancellations", |l| {
        resting.iter().all(|c| l.state(*c) == OrderState::Cancelled)
    });
    assert_eq!(l.emu.control("GET", "/stats")["clob"]["open_orders"], 0);
    assert!(l.client.live_stats().user_connects >= 1);
    assert_eq!(l.client.user_parser().skipped_total(), 0);
}

#[test]
fn http_425_backs_off_without_resending() {
    let dir = ringbolt_testkit::fs::tempdir("rb-trade-live", "425");
    let emu = RunningEmulator::clob("trade-live-425");
    let mut l = Live::connect(emu, &dir.join("exec.journal"));
    // The matching engine "restarts" for 600 ms: order entry answers 425 Too Early.
    l.emu.fault("clob", "kind=http425&ms=600");
    let a = l.buy("0.30", "5").unwrap();
    l.until("the 425", |l| l.state(a) == OrderState::Rejected);
    let t: Vec<u16> = l
        .recs
        .iter()
        .filter_map(Record::body_as::<OrderTransition>)
        .filter(|t| t.client_order_id == a)
        .map(|t| t.http_status)
        .collect();
    assert_eq!(t.last(), Some(&425));
    // Backing off: the next order is refused locally, nothing is sent.
    assert!(matches!(l.buy("0.30", "5"), Err(RiskError::Backoff { .. })));
    assert_eq!(l.client.stats().orders_sent, 1);
    assert!(l.client.stats().backoffs >= 1);
    // Once the back-off and the 425 window pass, orders go out again; none was resent.
    let t0 = Instant::now();
    let b = loop {
        assert!(t0.elapsed() < WAIT, "still refused");
        std::thread::sleep(Duration::from_millis(100));
        if let Ok(b) = l.buy("0.30", "5") {
            l.until("its answer", |l| l.state(b) != OrderState::Submitted);
            if l.state(b) == OrderState::Acked {
                break b;
            }
        }
    };
    assert_eq!(l.state(b), OrderState::Acked);
    // Never resent: every order the emulator saw arrived once, and only those we sent.
    let log = l.emu.control("GET", "/wirelog");
    let mut salts: Vec<String> = log["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["salt"].to_string())
        .collect();
    assert_eq!(salts.len() as u64, l.client.stats().orders_sent, "{log}");
    salts.sort_unstable();
    salts.dedup();
    assert_eq!(salts.len() as u64, l.client.stats().orders_sent);
    std::fs::remove_dir_all(&dir).ok();
}

mod common;

/// `ringbolt trade --live` as a process: `[exec] user_ws_url`, `journal_path`, heartbeats on.
fn live_toml(
    dir: &std::path::Path,
    emu: &RunningEmulator,
    market: &str,
    out: &str,
    extra: &str,
) -> String {
    format!(
        "[trade]\ninputs = [\"{market}\"]\noutput = \"{out}\"\nevaluator = \"native\"\n\
         start = \"oldest\"\nopen_timeout_s = 60\noutput_capacity = 262144\npaper = false\n{extra}\n\n\
         [exec]\nenabled = true\nhost = \"localhost\"\nport = {port}\nca_file = \"{ca}\"\n\
         key_file = \"{key}\"\nuser_ws_url = \"{ws}\"\njournal_path = \"{journal}\"\n\
         heartbeat_ms = 200\nsizes = [\"5\"]\n\n[exec.risk]\nmax_order_notional_micros = 5000000\n\
         max_window_notional_micros = 6000000\nmax_day_notional_micros = 20000000\n\
         max_open_orders = 50\n",
        port = emu.clob_port(),
        ca = dir.join("ca.pem").display(),
        key = dir.join("key").display(),
        ws = emu.info.clob.as_ref().unwrap().user_ws_url,
        journal = dir.join("exec.journal").display(),
    )
}

fn clob_stat(emu: &RunningEmulator, k: &str) -> u64 {
    emu.control("GET", "/stats")["clob"][k]
        .as_u64()
        .unwrap_or(0)
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !done() {
        assert!(t0.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Two resting BUYs at 0.30 on the emulator's next window, under the trade process's API key
/// (same key file → same derived key); the client sends no heartbeats of its own.
fn rest_two(emu: &RunningEmulator, salt: &mut u64) {
    let key = PrivateKey::from_hex(KEY_A).unwrap();
    let mut cfg = Live::cfg(emu);
    cfg.heartbeat_interval = None;
    let creds = create_or_derive_api_creds(&cfg, &key, 137, 0).unwrap();
    let signer = L2Signer::new(&key.address(), creds).unwrap();
    let gate = RiskGate::new(
        TradingMode::live(LiveOptIn::operator_passed_live_flag()),
        limits(),
        KillSwitch::new(),
    )
    .unwrap();
    let mut c = OrderClient::connect(&cfg, signer, gate).unwrap();
    let w = emu.windows();
    let list = w["windows"].as_array().unwrap();
    let i = list.iter().position(|w| w["current"] == true).unwrap();
    let token = list[i + 1]["up_token"].as_str().unwrap().to_string();
    let mut recs = Vec::new();
    for _ in 0..2 {
        *salt += 1;
        let input: OrderInput = serde_json::from_value(serde_json::json!({
            "side": "BUY", "kind": "limit", "price": "0.30", "size": "5", "token_id": token,
            "tick_size": "0.01", "salt": *salt, "timestamp_ms": 1_790_000_000_000u64 + *salt,
        }))
        .unwrap();
        let o = input.into_spec().unwrap().sign(&key).unwrap();
        let t = OrderTicket {
            instrument: INSTRUMENT,
            side: Side::Buy,
            price_e8: 30_000_000,
            size_e8: 5_00000000,
            notional_micros: 1_500_000,
        };
        let coid = c.submit_signed(&o, t, &mut recs).unwrap();
        c.wait_for(coid, WAIT, &mut recs).unwrap().unwrap();
    }
    c.shutdown();
}

#[test]
fn trade_live_kill_signal_cancels_once_heartbeat_loss_cancels_and_caps_survive_kill_9() {
    use std::process::{Command, Stdio};
    let pid = std::process::id();
    let dir = ringbolt_testkit::fs::tempdir("rb-trade-live", "proc");
    let emu = RunningEmulator::clob("trade-live-proc");
    std::fs::write(dir.join("ca.pem"), &emu.ca_pem).unwrap();
    write_key_file(&dir.join("key"));
    let _ = emu.control("POST", "/clob/params?heartbeat_timeout_ms=1500");
    let market = format!("rb-test-tl-mkt-{pid}");
    let out = format!("rb-test-tl-dec-{pid}");
    let out2 = format!("rb-test-tl-dec2-{pid}");
    let _unlink = common::Unlink(vec![market.clone(), out.clone(), out2.clone()]);
    let (_producer, _) = common::spawn_synth(&market, 2, 21, 262_144);
    ringbolt_bus::Segment::open_wait(&market, Duration::from_secs(60)).unwrap();

    // Live mode refuses to start without the journal and the user channel.
    let bare = dir.join("bare.toml");
    let text = live_toml(&dir, &emu, &market, &out, "").replace("journal_path", "# journal_path");
    std::fs::write(&bare, text).unwrap();
    let err = ringbolt_testkit::process::run_fails(
        Command::new(common::BIN)
            .args(["trade", "--live", "--config"])
            .arg(&bare),
    );
    assert!(err.contains("journal_path"), "{err}");

    let cfg = dir.join("live.toml");
    std::fs::write(
        &cfg,
        live_toml(&dir, &emu, &market, &out, "max_runtime_s = 90"),
    )
    .unwrap();
    let mut child = Command::new(common::BIN)
        .args(["trade", "--live", "--config"])
        .arg(&cfg)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let journal = dir.join("exec.journal");
    // Running: heartbeats reach the venue and orders were admitted (spend reserved).
    wait_until(
        "heartbeats and a spend reservation",
        Duration::from_secs(60),
        || {
            clob_stat(&emu, "heartbeats") > 0
                && std::fs::read(&journal).is_ok_and(|b| recover(&b).last_reserve.is_some())
        },
    );
    let mut salt = 70_000;
    rest_two(&emu, &mut salt);
    assert_eq!(clob_stat(&emu, "open_orders"), 2);

    kill_signal_cancels_once(&emu, child.id(), &mut salt);

    // kill -9: the heartbeats stop and the venue cancels everything of the key.
    let fired0 = clob_stat(&emu, "deadman_fired");
    child.kill().unwrap();
    child.wait().unwrap();
    wait_until(
        "the venue's dead-man cancel",
        Duration::from_secs(10),
        || clob_stat(&emu, "open_orders") == 0,
    );
    assert!(clob_stat(&emu, "deadman_fired") > fired0);

    restart_keeps_the_spend(&dir, &emu, &market, &out2);
    std::fs::remove_dir_all(&dir).ok();
}

/// The kill signal: everything is cancelled; a second signal sends nothing more (once).
fn kill_signal_cancels_once(emu: &RunningEmulator, pid: u32, salt: &mut u64) {
    let cancels0 = clob_stat(emu, "cancels");
    let kill = |sig: i32| {
        // SAFETY: kill(2) on our own child's pid with a valid signal number.
        let rc = unsafe { libc::kill(pid as i32, sig) };
        assert_eq!(rc, 0);
    };
    kill(libc::SIGUSR1);
    wait_until(
        "the kill switch's cancel-all",
        Duration::from_secs(10),
        || clob_stat(emu, "open_orders") == 0,
    );
    assert_eq!(
        clob_stat(emu, "cancels") - cancels0,
        2,
        "both orders cancelled"
    );
    rest_two(emu, salt);
    kill(libc::SIGUSR1);
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(
        clob_stat(emu, "open_orders"),
        2,
        "no second cancel-all: the kill switch cancels once"
    );
}

/// Restart: the spend reserved before the crash still counts; the caps hold.
fn restart_keeps_the_spend(dir: &std::path::Path, emu: &RunningEmulator, market: &str, out: &str) {
    let journal = dir.join("exec.journal");
    let before = recover(&std::fs::read(&journal).unwrap());
    let (_, _, day_before) = before.last_reserve.unwrap();
    let cfg2 = dir.join("live2.toml");
    std::fs::write(
        &cfg2,
        live_toml(dir, emu, market, out, "exit_when_idle_ms = 3000"),
    )
    .unwrap();
    let summary = common::run_trade(&cfg2, &["--live"]);
    let exec = &summary["exec"];
    assert_eq!(exec["mode"], "live", "{summary}");
    let day_after = exec["spend_micros"][1].as_u64().unwrap();
    assert!(
        day_after >= day_before,
        "{day_after} < {day_before}: {summary}"
    );
    assert!(day_after <= 20_000_000, "day cap: {summary}");
    assert!(
        exec["live"]["reconciliations"].as_u64().unwrap() >= 1,
        "{summary}"
    );
}

/// The key file (mode 0600, as exec requires).
fn write_key_file(path: &std::path::Path) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .unwrap();
    writeln!(f, "{KEY_A}").unwrap();
}
