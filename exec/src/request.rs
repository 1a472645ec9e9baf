//! Request bytes for the HTTP/2 order client: method, path, header list and body. The transport
//! (net's HTTP/2 on io_uring) HPACK-encodes the headers; nothing here does I/O.
//!
//! Two forms:
//! * [`HttpRequest`] (owned, allocates): cancels, heartbeats, API-key creation/derivation,
//!   one-off orders.
//! * [`RequestBuf`] (caller-owned, reused): the hot path writes an order request into it without
//!   allocating (see [`crate::pool`]).

use crate::Error;
use crate::auth::{HMAC_B64_LEN, L1Headers, L2Signer};
use crate::order::{SignedOrder, batch_body, fmt_u64, write_json_str};

/// `POST /order`.
pub const PATH_ORDER: &str = "/order";
/// `POST /orders`.
pub const PATH_ORDERS: &str = "/orders";
/// `DELETE /cancel-all`.
pub const PATH_CANCEL_ALL: &str = "/cancel-all";
/// `POST /v1/heartbeats`.
pub const PATH_HEARTBEAT: &str = "/v1/heartbeats";
/// `POST /auth/api-key` (create).
pub const PATH_CREATE_API_KEY: &str = "/auth/api-key";
/// `GET /auth/derive-api-key`.
pub const PATH_DERIVE_API_KEY: &str = "/auth/derive-api-key";
/// Content type of every JSON body.
pub const CONTENT_TYPE: &str = "application/json";
/// Our user agent.
pub const USER_AGENT: &str = "ringbolt";

/// `{"<key>":"<value>"}` as `json.dumps(separators=(",", ":"))` writes it.
fn one_field(key: &str, value: &str) -> Vec<u8> {
    let mut body = vec![b'{'];
    write_json_str(&mut body, key.as_bytes());
    body.push(b':');
    write_json_str(&mut body, value.as_bytes());
    body.push(b'}');
    body
}

/// An owned request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpRequest {
    /// `GET`, `POST`, `DELETE`.
    pub method: &'static str,
    /// Path (the HMAC covers the path without query).
    pub path: String,
    /// Headers in sending order (names as the reference spells them).
    pub headers: Vec<(&'static str, String)>,
    /// Body bytes (empty for none).
    pub body: Vec<u8>,
}

impl HttpRequest {
    fn l2(signer: &L2Signer, ts: u64, method: &'static str, path: &str, body: Vec<u8>) -> Self {
        let h = signer.headers(ts, method, path, &body);
        let mut headers = vec![
            ("POLY_ADDRESS", h.address),
            ("POLY_SIGNATURE", h.signature),
            ("POLY_TIMESTAMP", h.timestamp),
            ("POLY_API_KEY", h.api_key),
            ("POLY_PASSPHRASE", h.passphrase),
            ("user-agent", USER_AGENT.to_owned()),
        ];
        if !body.is_empty() {
            headers.push(("content-type", CONTENT_TYPE.to_owned()));
        }
        HttpRequest {
            method,
            path: path.to_owned(),
            headers,
            body,
        }
    }

    /// `POST /order` for one signed order.
    #[must_use]
    pub fn post_order(signer: &L2Signer, ts: u64, order: &SignedOrder) -> Self {
        let body = order.body(&signer.creds().api_key).into_bytes();
        Self::l2(signer, ts, "POST", PATH_ORDER, body)
    }

    /// `POST /orders` for up to 15 orders.
    pub fn post_orders(
        signer: &L2Signer,
        ts: u64,
        orders: &[SignedOrder],
        post_only: bool,
        defer_exec: bool,
    ) -> Result<Self, Error> {
        let body = batch_body(orders, &signer.creds().api_key, post_only, defer_exec)?;
        Ok(Self::l2(signer, ts, "POST", PATH_ORDERS, body.into_bytes()))
    }

    /// `DELETE /order {"orderID": id}`.
    #[must_use]
    pub fn cancel_order(signer: &L2Signer, ts: u64, order_id: &str) -> Self {
        Self::l2(
            signer,
            ts,
            "DELETE",
            PATH_ORDER,
            one_field("orderID", order_id),
        )
    }

    /// `DELETE /orders [ids]`.
    #[must_use]
    pub fn cancel_orders(signer: &L2Signer, ts: u64, order_ids: &[&str]) -> Self {
        let mut body = vec![b'['];
        for (i, id) in order_ids.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            write_json_str(&mut body, id.as_bytes());
        }
        body.push(b']');
        Self::l2(signer, ts, "DELETE", PATH_ORDERS, body)
    }

    /// `GET <path>?<query>` with L2 headers (the HMAC covers the path without the query).
    #[must_use]
    pub fn get(signer: &L2Signer, ts: u64, path: &str, query: &str) -> Self {
        let mut r = Self::l2(signer, ts, "GET", path, Vec::new());
        if !query.is_empty() {
            r.path = format!("{path}?{query}");
        }
        r
    }

    /// `DELETE /cancel-all` (no body).
    #[must_use]
    pub fn cancel_all(signer: &L2Signer, ts: u64) -> Self {
        Self::l2(signer, ts, "DELETE", PATH_CANCEL_ALL, Vec::new())
    }

    /// `POST /v1/heartbeats {"heartbeat_id": id}` (the dead-man switch).
    #[must_use]
    pub fn heartbeat(signer: &L2Signer, ts: u64, heartbeat_id: &str) -> Self {
        let body = one_field("heartbeat_id", heartbeat_id);
        Self::l2(signer, ts, "POST", PATH_HEARTBEAT, body)
    }

    fn l1(method: &'static str, path: &str, h: L1Headers) -> Self {
        HttpRequest {
            method,
            path: path.to_owned(),
            headers: vec![
                ("POLY_ADDRESS", h.address),
                ("POLY_SIGNATURE", h.signature),
                ("POLY_TIMESTAMP", h.timestamp),
                ("POLY_NONCE", h.nonce),
                ("user-agent", USER_AGENT.to_owned()),
            ],
            body: Vec::new(),
        }
    }

    /// `POST /auth/api-key` with L1 headers.
    #[must_use]
    pub fn create_api_key(h: L1Headers) -> Self {
        Self::l1("POST", PATH_CREATE_API_KEY, h)
    }

    /// `GET /auth/derive-api-key` with L1 headers.
    #[must_use]
    pub fn derive_api_key(h: L1Headers) -> Self {
        Self::l1("GET", PATH_DERIVE_API_KEY, h)
    }
}

/// Largest body a [`RequestBuf`] holds without growing (a 15-order batch is ~11 KiB).
pub const REQUEST_BUF_BODY_CAPACITY: usize = 16 * 1024;

/// A reusable, caller-owned request buffer for the hot path. Constant header values (address,
/// API key, passphrase) are copied in once by [`RequestBuf::new`]; each request rewrites the
/// body, `POLY_TIMESTAMP` and `POLY_SIGNATURE` in place.
#[derive(Clone)]
pub struct RequestBuf {
    method: &'static str,
    path: &'static str,
    body: Vec<u8>,
    signature: [u8; HMAC_B64_LEN],
    timestamp: [u8; 20],
    timestamp_len: usize,
    address: [u8; 42],
    api_key: Box<[u8]>,
    passphrase: Box<[u8]>,
}

impl std::fmt::Debug for RequestBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestBuf")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("body_len", &self.body.len())
            .finish_non_exhaustive()
    }
}

impl RequestBuf {
    /// A buffer for `signer`'s requests, with [`REQUEST_BUF_BODY_CAPACITY`] reserved.
    #[must_use]
    pub fn new(signer: &L2Signer) -> Self {
        RequestBuf {
            method: "POST",
            path: PATH_ORDER,
            body: Vec::with_capacity(REQUEST_BUF_BODY_CAPACITY),
            signature: [0; HMAC_B64_LEN],
            timestamp: [0; 20],
            timestamp_len: 0,
            address: *signer.address(),
            api_key: signer.creds().api_key.as_bytes().into(),
            passphrase: signer.creds().passphrase().as_bytes().into(),
        }
    }

    /// Fills the buffer with `POST path` carrying `body`, signed at `timestamp_s`. Does not
    /// allocate while `body` fits the reserved capacity.
    pub fn fill(&mut self, signer: &L2Signer, timestamp_s: u64, path: &'static str, body: &[u8]) {
        let quote_free = !body.contains(&b'\'');
        self.fill_prescanned(signer, timestamp_s, path, body, quote_free);
    }

    /// [`RequestBuf::fill`] for a body whose `'` scan was done ahead of time (see
    /// [`L2Signer::sign_prescanned`]).
    pub fn fill_prescanned(
        &mut self,
        signer: &L2Signer,
        timestamp_s: u64,
        path: &'static str,
        body: &[u8],
        quote_free: bool,
    ) {
        self.set_post(timestamp_s, path, body);
        signer.sign_prescanned(
            timestamp_s,
            self.method,
            self.path,
            &self.body,
            quote_free,
            &mut self.signature,
        );
    }

    /// [`RequestBuf::fill_prescanned`] with the `POLY_SIGNATURE` made ahead of time for
    /// exactly this timestamp, path and body by this buffer's signer (the pool's per-second
    /// tables, [`crate::pool::PresignedPool::presign_auth`]).
    pub fn fill_presigned(
        &mut self,
        timestamp_s: u64,
        path: &'static str,
        body: &[u8],
        signature: &[u8; HMAC_B64_LEN],
    ) {
        self.set_post(timestamp_s, path, body);
        self.signature = *signature;
    }

    /// A `POST` of `body` to `path` at `timestamp_s`, its signature left to the caller.
    fn set_post(&mut self, timestamp_s: u64, path: &'static str, body: &[u8]) {
        self.method = "POST";
        self.path = path;
        self.body.clear();
        self.body.extend_from_slice(body);
        let mut num = [0u8; 20];
        let ts = fmt_u64(&mut num, timestamp_s);
        self.timestamp_len = ts.len();
        self.timestamp[..ts.len()].copy_from_slice(ts);
    }

    /// Method.
    #[must_use]
    pub fn method(&self) -> &'static str {
        self.method
    }

    /// Path.
    #[must_use]
    pub fn path(&self) -> &'static str {
        self.path
    }

    /// Body bytes.
    #[must_use]
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The two per-request header values: `POLY_SIGNATURE` and `POLY_TIMESTAMP`.
    #[must_use]
    pub fn auth_values(&self) -> (&[u8], &[u8]) {
        (&self.signature[..], &self.timestamp[..self.timestamp_len])
    }

    /// The header list, in the reference's order plus content type and user agent.
    #[must_use]
    pub fn headers(&self) -> [(&'static str, &[u8]); 7] {
        [
            ("POLY_ADDRESS", &self.address[..]),
            ("POLY_SIGNATURE", &self.signature[..]),
            ("POLY_TIMESTAMP", &self.timestamp[..self.timestamp_len]),
            ("POLY_API_KEY", &self.api_key),
            ("POLY_PASSPHRASE", &self.passphrase),
            ("content-type", CONTENT_TYPE.as_bytes()),
            ("user-agent", USER_AGENT.as_bytes()),
        ]
    }
}
