#![allow(clippy::expect_used, clippy::unwrap_used)]
//! The error classifier against the venue's error bodies (fixtures copied from
//! ../shared/corpus/polymarket/rest_samples/order_and_error_responses.jsonl, sources per line).

use ringbolt_exec::classify::{ErrorClass, Outcome, classify, classify_one};
use serde_json::Value;

fn class_name(c: ErrorClass) -> String {
    format!("{c:?}")
}

#[test]
fn every_corpus_body_classifies_as_expected() {
    let text = include_str!("fixtures/order_and_error_responses.jsonl");
    let mut n = 0;
    for (i, line) in text.lines().enumerate() {
        let v: Value = serde_json::from_str(line).unwrap();
        let status = v["http_status"].as_u64().unwrap() as u16;
        let body = match &v["body"] {
            Value::String(s) => s.clone().into_bytes(),
            other => serde_json::to_vec(other).unwrap(),
        };
        let expect = v["expect"].as_str().unwrap();
        let out = classify_one(status, &body);
        match (&out, expect) {
            (Outcome::Accepted { .. }, "accepted") => {}
            (
                Outcome::Rejected {
                    class,
                    message,
                    http_status,
                },
                e,
            ) => {
                assert_eq!(class_name(*class), e, "line {}: {line}", i + 1);
                assert_eq!(*http_status, status);
                // The venue's text is kept verbatim.
                if let Some(err) = v["body"].get("error").and_then(Value::as_str) {
                    assert_eq!(message, err);
                } else if let Some(err) = v["body"]
                    .get("errorMsg")
                    .and_then(Value::as_str)
                    .filter(|e| !e.is_empty())
                {
                    assert_eq!(message, err);
                }
            }
            _ => panic!("line {}: got {out:?}, expected {expect}", i + 1),
        }
        n += 1;
    }
    assert!(n >= 24);
}

#[test]
fn batch_responses_give_one_outcome_per_order() {
    let body = br#"[{"success":true,"errorMsg":"","orderID":"0xab","status":"live"},{"success":false,"errorMsg":"invalid post-only order: order crosses book"}]"#;
    let out = classify(200, body);
    assert_eq!(out.len(), 2);
    assert!(matches!(out[0], Outcome::Accepted { .. }));
    assert!(matches!(
        out[1],
        Outcome::Rejected {
            class: ErrorClass::PostOnlyCrosses,
            ..
        }
    ));
    assert!(ErrorClass::RateLimited.retryable() && !ErrorClass::InvalidSignature.retryable());
}

proptest::proptest! {
    #[test]
    fn classify_never_panics(status in 100u16..600, body in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
        let out = classify(status, &body);
        proptest::prop_assert!(!out.is_empty() || body.starts_with(b"["));
    }
}
