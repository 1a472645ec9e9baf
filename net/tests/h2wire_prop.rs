//! Property test of ringbolt's HTTP/2 frame layer (`h2wire`) against an independent peer: the
//! `h2` crate's server over an in-memory duplex. Random request headers, bodies, and server
//! settings (tiny flow-control windows, larger frames, stream limits) — the server must decode
//! every request exactly (pseudo-headers, headers, body: our HPACK encoder, DATA framing and
//! flow control), and its responses, which echo the headers back (Huffman strings and dynamic
//! table entries from h2's encoder, with evictions), must decode exactly on our side.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use proptest::prelude::*;
use ringbolt_net::h2c::HeaderBlock;
use ringbolt_net::h2wire::{Conn, Event};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Debug, Clone)]
struct Req {
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

#[derive(Debug, Clone)]
struct Case {
    window: u32,
    max_frame: u32,
    max_streams: u32,
    table_size: u32,
    reqs: Vec<Req>,
}

fn req() -> impl Strategy<Value = Req> {
    (
        "/[a-z0-9/_.-]{0,40}",
        prop::collection::vec(("x-[a-z0-9_-]{1,24}", "[ -~]{0,200}"), 0..12),
        prop::collection::vec(any::<u8>(), 0..70_000),
    )
        .prop_map(|(path, headers, body)| {
            let headers = headers
                .into_iter()
                .map(|(n, v)| (n, v.trim().to_string()))
                .collect();
            Req {
                path,
                headers,
                body,
            }
        })
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop_oneof![Just(65_535u32), 1u32..5_000, 5_000u32..200_000],
        prop_oneof![Just(16_384u32), 16_384u32..100_000],
        1u32..8,
        prop_oneof![Just(4096u32), 0u32..600],
        prop::collection::vec(req(), 1..10),
    )
        .prop_map(|(window, max_frame, max_streams, table_size, reqs)| Case {
            window,
            max_frame,
            max_streams,
            table_size,
            reqs,
        })
}

type Seen = (String, HeaderMap, Vec<u8>);

async fn serve(io: tokio::io::DuplexStream, c: Case, tx: tokio::sync::mpsc::UnboundedSender<Seen>) {
    let mut b = h2::server::Builder::new();
    b.initial_window_size(c.window)
        .max_frame_size(c.max_frame)
        .max_concurrent_streams(c.max_streams)
        .header_table_size(c.table_size);
    let mut conn = b.handshake::<_, Bytes>(io).await.unwrap();
    while let Some(r) = conn.accept().await {
        let (request, mut respond) = r.unwrap();
        let tx = tx.clone();
        tokio::spawn(async move {
            let (parts, mut body) = request.into_parts();
            let mut data = Vec::new();
            while let Some(chunk) = body.data().await {
                let chunk = chunk.unwrap();
                let _ = body.flow_control().release_capacity(chunk.len());
                data.extend_from_slice(&chunk);
            }
            let mut resp = http::Response::builder().status(201);
            for (n, v) in &parts.headers {
                resp = resp.header(n, v);
            }
            let mut send = respond
                .send_response(resp.body(()).unwrap(), false)
                .unwrap();
            send.send_data(Bytes::from(data.clone()), true).unwrap();
            let path = parts.uri.path().to_string();
            let _ = tx.send((path, parts.headers, data));
        });
    }
}

fn header_map(r: &Req) -> HeaderMap {
    let mut m = HeaderMap::new();
    for (n, v) in &r.headers {
        m.append(
            HeaderName::from_bytes(n.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    m
}

/// Runs our client over the duplex; returns the responses by tag.
async fn client(
    io: tokio::io::DuplexStream,
    c: &Case,
) -> Vec<(u64, u16, Vec<(Vec<u8>, Vec<u8>)>, Vec<u8>)> {
    let (mut rd, mut wr) = tokio::io::split(io);
    let mut conn = Conn::new();
    let mut out = Vec::new();
    conn.start(&mut out);
    let blocks: Vec<HeaderBlock> = c
        .reqs
        .iter()
        .map(|r| {
            let uri: Uri = format!("https://localhost:8443{}", r.path).parse().unwrap();
            HeaderBlock::new(&Method::POST, &uri, &header_map(r)).unwrap()
        })
        .collect();
    let (mut next, mut got) = (0usize, Vec::new());
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 65_536];
    // Bytes of `out` already written. Writing and reading run at once: a client that wrote
    // everything before reading would deadlock against a server blocked on writing its answers
    // (both halves of the duplex full), which is a harness bug, not a protocol one.
    let mut written = 0usize;
    while got.len() < c.reqs.len() {
        // Open streams as the server's limit allows (known once its SETTINGS arrived).
        while next < c.reqs.len() && conn.peer_settings_seen() && conn.check_open().is_ok() {
            let block = blocks[next].as_bytes();
            conn.send_request(
                &mut out,
                next as u64,
                |b| b.extend_from_slice(block),
                &c.reqs[next].body,
                Instant::now(),
            )
            .unwrap();
            next += 1;
        }
        out.append(conn.take_out());
        tokio::select! {
            n = wr.write(&out[written..]), if written < out.len() => {
                written += n.unwrap();
                if written == out.len() {
                    out.clear();
                    written = 0;
                }
                continue;
            }
            n = rd.read(&mut chunk) => {
                let n = n.unwrap();
                assert!(n > 0, "server closed");
                buf.extend_from_slice(&chunk[..n]);
            }
        }
        let used = conn.recv(&buf).unwrap();
        buf.drain(..used);
        while let Some(ev) = conn.next_event() {
            match ev {
                Event::Response {
                    tag,
                    status,
                    headers,
                    body,
                } => got.push((tag, status, headers, body)),
                Event::Failed { tag, why } => panic!("request {tag} failed: {why:?}"),
            }
        }
    }
    got.sort_by_key(|g| g.0);
    got
}

fn check(c: Case) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (a, b) = tokio::io::duplex(1 << 16);
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(serve(b, c.clone(), tx));
        // A stuck exchange fails with its case (and proptest shrinks it) instead of hanging.
        let got = tokio::time::timeout(Duration::from_secs(20), client(a, &c))
            .await
            .expect("the exchange finished within 20 s");
        let mut seen = Vec::new();
        while seen.len() < c.reqs.len() {
            seen.push(rx.recv().await.unwrap());
        }
        for (i, r) in c.reqs.iter().enumerate() {
            let want = header_map(r);
            let s = seen
                .iter()
                .find(|s| s.0 == r.path && s.1 == want && s.2 == r.body);
            assert!(s.is_some(), "request {i} not seen as sent: {r:?}");
            let (tag, status, headers, body) = &got[i];
            assert_eq!(*tag, i as u64);
            assert_eq!(*status, 201);
            assert_eq!(body, &r.body, "response body {i}");
            let echoed: Vec<(String, String)> = headers
                .iter()
                .map(|(n, v)| {
                    (
                        String::from_utf8(n.clone()).unwrap(),
                        String::from_utf8(v.clone()).unwrap(),
                    )
                })
                .filter(|(n, _)| n.starts_with("x-"))
                .collect();
            let mut sent: Vec<(String, String)> = r.headers.clone();
            let mut echoed = echoed;
            sent.sort();
            echoed.sort();
            assert_eq!(echoed, sent, "echoed headers {i}");
        }
    });
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn our_frames_decode_exactly_in_h2s_server_and_its_answers_in_ours(c in case()) {
        check(c);
    }
}
