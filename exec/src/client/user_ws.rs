//! The live half of the order client: the authenticated user channel (a WebSocket on the same
//! io_uring driver as the order connection) and reconciliation over REST.
//!
//! * [`OrderClient::connect_user`] opens `wss://…/ws/user`, subscribes with the API credentials
//!   (the message is sent, never logged) and keeps it alive with text `PING` every 10 s.
//! * [`OrderClient::poll`] drains it: every frame goes through the sans-IO parser and
//!   [`crate::fills::FillTracker`] into transition and `Fill` records. A dead channel is replaced
//!   (at most once per reconnect back-off), and every (re)connect starts a reconciliation.
//! * [`OrderClient::reconcile`] sends `GET /data/orders`, `GET /data/trades` and, for each order
//!   whose outcome is unknown, `GET /data/order/<hash>`; the answers are applied as they arrive
//!   ([`crate::reconcile`]).

use std::time::{Duration, Instant};

use ringbolt_net::tls;
use ringbolt_net::ws::{KeepAlive, WsClient, WsOptions};
use ringbolt_net::{Endpoint, NetError};
use ringbolt_telemetry::now_ns;

use super::{ClientError, ClientEvent, OrderClient, Pending, TransitionSink, now_s};
use crate::reconcile::{
    self, PATH_BALANCE_ALLOWANCE, PATH_DATA_ORDER, PATH_DATA_ORDERS, PATH_DATA_TRADES, VenueOrder,
    apply_lookup, apply_open_orders, balance_micros, order_lookup, venue_order,
};
use crate::request::HttpRequest;

/// What a reconciliation request is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Recon {
    OpenOrders,
    Trades,
    Order(u64),
    Collateral,
    Position(u32),
}

/// The user-channel connection.
#[derive(Debug)]
pub(crate) struct UserChannel {
    ws: WsClient,
    subscribe: String,
    down_since: Option<Instant>,
    last_attempt: Instant,
}

/// Counters of the live half.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct LiveStats {
    /// User-channel frames received.
    pub user_frames: u64,
    /// User-channel (re)connects, the first included.
    pub user_connects: u64,
    /// Reconciliations started.
    pub reconciliations: u64,
    /// Orders restored by reconciliation.
    pub restored: u64,
    /// Reconciliation answers that could not be used.
    pub recon_errors: u64,
    /// Open orders the venue listed at the last reconciliation.
    pub venue_open_orders: u32,
    /// Collateral (pUSD) balance at the last reconciliation, micro units.
    pub collateral_micros: i64,
}

/// `wss://host[:port]/path` → (host, port, path).
pub fn split_wss_url(url: &str) -> Option<(String, u16, String)> {
    let rest = url.strip_prefix("wss://")?;
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) => (h, p.parse().ok()?),
        None => (hostport, 443),
    };
    (!host.is_empty()).then(|| (host.to_owned(), port, path.to_owned()))
}

impl OrderClient {
    /// Connects the user channel at `url` (`wss://…/ws/user`) and subscribes (all markets of the
    /// account: `markets: []`), then starts a reconciliation.
    pub fn connect_user(&mut self, url: &str) -> Result<(), ClientError> {
        let (host, port, path) = split_wss_url(url)
            .ok_or_else(|| NetError::BadRequest(format!("user_ws_url {url:?}: not wss://")))?;
        let tls = tls::client_config(
            self.cfg.roots,
            self.cfg.extra_ca_pem.as_deref(),
            &[b"http/1.1"],
        )?;
        let ep = Endpoint {
            host,
            port,
            tls: Some(tls),
        };
        let opts = WsOptions {
            path,
            keepalive: Some((Duration::from_secs(10), KeepAlive::Text("PING".into()))),
            ..WsOptions::default()
        };
        let mut ws = WsClient::connect(&mut self.driver, &ep, &opts)?;
        let subscribe = self.signer.creds().user_subscription(&[]);
        ws.send_text(&mut self.driver, &subscribe)?;
        self.live.user_connects += 1;
        self.user_ws = Some(UserChannel {
            ws,
            subscribe,
            down_since: None,
            last_attempt: Instant::now(),
        });
        self.reconcile()
    }

    /// Shares per instrument (1e-8) the venue said we hold at the last reconciliation
    /// (`GET /balance-allowance?asset_type=CONDITIONAL`), for the tokens registered last.
    #[must_use]
    pub fn venue_positions(&self) -> &std::collections::BTreeMap<u32, i64> {
        &self.venue_positions
    }

    /// Counters of the user channel and reconciliation.
    #[must_use]
    pub fn live_stats(&self) -> LiveStats {
        self.live
    }

    /// Drains the user channel (called from [`OrderClient::poll`]).
    pub(crate) fn poll_user(&mut self, sink: &mut dyn TransitionSink) {
        let t = now_ns();
        let Self {
            user_ws,
            driver,
            user,
            fills,
            core,
            gate,
            live,
            ..
        } = self;
        let Some(ch) = user_ws.as_mut() else {
            return;
        };
        if ch.down_since.is_none() {
            loop {
                match ch.ws.next(driver) {
                    Ok(Some(m)) => {
                        live.user_frames += 1;
                        user.parse_frame(m.as_bytes(), |ev| {
                            let d = fills.on_event(core, &ev, t, sink);
                            for _ in 0..d.closed {
                                gate.closed();
                            }
                            for _ in 0..d.reopened {
                                gate.reopened();
                            }
                        });
                    }
                    Ok(None) => return,
                    Err(_) => {
                        ch.down_since = Some(Instant::now());
                        break;
                    }
                }
            }
        }
        self.reconnect_user();
    }

    fn reconnect_user(&mut self) {
        let backoff = self.cfg.reconnect_backoff;
        let Some(ch) = self.user_ws.as_mut() else {
            return;
        };
        if ch.last_attempt.elapsed() < backoff {
            return;
        }
        ch.last_attempt = Instant::now();
        let ok = ch.ws.reconnect(&mut self.driver).is_ok()
            && ch.ws.send_text(&mut self.driver, &ch.subscribe).is_ok();
        if !ok {
            self.push_event(ClientEvent::ReconnectFailed {
                reason: "user channel down".into(),
                error: "reconnect failed".into(),
            });
            return;
        }
        ch.down_since = None;
        self.live.user_connects += 1;
        self.push_event(ClientEvent::Reconnected {
            reason: "user channel".into(),
        });
        let _ = self.reconcile();
    }

    /// Starts a reconciliation: open orders, recent trades, and every order whose outcome is
    /// unknown by its hash.
    pub fn reconcile(&mut self) -> Result<(), ClientError> {
        self.live.reconciliations += 1;
        self.open_pages.clear();
        let ts = now_s();
        let req = HttpRequest::get(&self.signer, ts, PATH_DATA_ORDERS, "");
        let tag = self.send_request(&req, Pending::Other)?;
        self.recon.insert(tag, Recon::OpenOrders);
        let req = HttpRequest::get(&self.signer, ts, PATH_DATA_TRADES, "");
        let tag = self.send_request(&req, Pending::Other)?;
        self.recon.insert(tag, Recon::Trades);
        let req = HttpRequest::get(
            &self.signer,
            ts,
            PATH_BALANCE_ALLOWANCE,
            "asset_type=COLLATERAL",
        );
        let tag = self.send_request(&req, Pending::Other)?;
        self.recon.insert(tag, Recon::Collateral);
        let tokens: Vec<(u32, String)> = self
            .token_ids
            .iter()
            .rev()
            .take(8)
            .map(|(i, t)| (*i, t.clone()))
            .collect();
        for (instrument, token) in tokens {
            let query = format!("asset_type=CONDITIONAL&token_id={token}");
            let req = HttpRequest::get(&self.signer, ts, PATH_BALANCE_ALLOWANCE, &query);
            let tag = self.send_request(&req, Pending::Other)?;
            self.recon.insert(tag, Recon::Position(instrument));
        }
        let unknown: Vec<u64> = self
            .core
            .orders()
            .filter(|o| o.unknown_outcome)
            .map(|o| o.client_order_id)
            .collect();
        for coid in unknown {
            self.lookup(coid)?;
        }
        Ok(())
    }

    fn lookup(&mut self, coid: u64) -> Result<(), ClientError> {
        let Some(d) = self.core.digest(coid) else {
            return Ok(());
        };
        let path = format!("{PATH_DATA_ORDER}{}", crate::hex::encode_0x(&d));
        let req = HttpRequest::get(&self.signer, now_s(), &path, "");
        let tag = self.send_request(&req, Pending::Other)?;
        self.recon.insert(tag, Recon::Order(coid));
        Ok(())
    }

    /// A reconciliation answer (`tag` was one of ours): applies it. Returns false if `tag` is
    /// not a reconciliation request.
    pub(crate) fn on_recon(
        &mut self,
        tag: u64,
        status: u16,
        body: &[u8],
        sink: &mut dyn TransitionSink,
    ) -> bool {
        let Some(kind) = self.recon.remove(&tag) else {
            return false;
        };
        let t = now_ns();
        match kind {
            Recon::OpenOrders => self.on_open_orders(status, body, t, sink),
            Recon::Trades => match reconcile::page(body) {
                Ok((items, next)) if status < 300 => {
                    for it in items {
                        let frame = it.to_string();
                        self.on_user_frame(frame.as_bytes(), sink);
                    }
                    if let Some(cursor) = next {
                        self.next_page(PATH_DATA_TRADES, &cursor, Recon::Trades);
                    }
                }
                _ => self.live.recon_errors += 1,
            },
            Recon::Collateral => match balance_micros(status, body) {
                Ok(b) => self.live.collateral_micros = b,
                Err(_) => self.live.recon_errors += 1,
            },
            Recon::Position(instrument) => match balance_micros(status, body) {
                Ok(shares_micro) => {
                    self.venue_positions
                        .insert(instrument, shares_micro.saturating_mul(100));
                }
                Err(_) => self.live.recon_errors += 1,
            },
            Recon::Order(coid) => match order_lookup(status, body) {
                Ok(v) => {
                    let d = apply_lookup(&mut self.core, coid, v.as_ref(), t, sink);
                    self.apply_open_delta(d);
                }
                Err(_) => self.live.recon_errors += 1,
            },
        }
        true
    }

    fn on_open_orders(&mut self, status: u16, body: &[u8], t: i64, sink: &mut dyn TransitionSink) {
        let Ok((items, next)) = reconcile::page(body)
            .map_err(|_| ())
            .and_then(|p| if status < 300 { Ok(p) } else { Err(()) })
        else {
            self.live.recon_errors += 1;
            self.open_pages.clear();
            return;
        };
        self.open_pages.extend(items.iter().filter_map(venue_order));
        if let Some(cursor) = next {
            // Applied once the last page is in (an order on a later page is not missing).
            self.next_page(PATH_DATA_ORDERS, &cursor, Recon::OpenOrders);
            return;
        }
        let open: Vec<VenueOrder> = std::mem::take(&mut self.open_pages);
        let rep = apply_open_orders(&mut self.core, &open, t, sink);
        self.live.restored += u64::from(rep.restored);
        self.live.venue_open_orders = rep.venue_open;
        self.gate.set_open(rep.venue_open);
        for coid in rep.lookup {
            if self.lookup(coid).is_err() {
                self.live.recon_errors += 1;
            }
        }
    }

    /// Requests the page after `cursor` of a paginated view.
    fn next_page(&mut self, path: &str, cursor: &str, kind: Recon) {
        let query = format!("next_cursor={cursor}");
        let req = HttpRequest::get(&self.signer, now_s(), path, &query);
        match self.send_request(&req, Pending::Other) {
            Ok(tag) => {
                self.recon.insert(tag, kind);
            }
            Err(_) => self.live.recon_errors += 1,
        }
    }

    fn apply_open_delta(&mut self, d: crate::fills::OpenDelta) {
        for _ in 0..d.closed {
            self.gate.closed();
        }
        for _ in 0..d.reopened {
            self.gate.reopened();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::split_wss_url;

    #[test]
    fn wss_urls_split() {
        assert_eq!(
            split_wss_url("wss://ws-subscriptions-clob.polymarket.com/ws/user"),
            Some((
                "ws-subscriptions-clob.polymarket.com".into(),
                443,
                "/ws/user".into()
            ))
        );
        assert_eq!(
            split_wss_url("wss://localhost:4431/ws/user"),
            Some(("localhost".into(), 4431, "/ws/user".into()))
        );
        assert_eq!(split_wss_url("ws://x/y"), None);
        assert_eq!(split_wss_url("wss://:1/"), None);
    }
}
