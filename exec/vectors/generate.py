#!/usr/bin/env python3
"""Generate ringbolt's CLOB V2 cross-check vectors with Polymarket's official Python client.

Usage: python exec/vectors/generate.py --out exec/vectors/vectors.json [--bench-out FILE]
       python exec/vectors/generate.py --bench-out FILE     (timing only; used by `bench exec`)

Everything is deterministic: fixed private keys, API credentials, salts, timestamps, and a seeded
PRNG for the case spread. The official client (``py-clob-client-v2``, pinned in
exec/requirements.txt) does the work; this script only fixes its clock and salt source and
captures the request it would send instead of sending it:

* amounts, EIP-712 signatures and order hashes come from ``OrderBuilder.build_order`` /
  ``build_market_order`` (the code ``ClobClient.create_order`` / ``create_market_order`` call
  once they know the tick size, neg-risk flag and version; those are given per case here);
* the ``POST /order`` / ``POST /orders`` body and L2 headers come from ``ClobClient.post_order`` /
  ``post_orders`` with ``_post`` replaced by a recorder (no network);
* L1 headers come from ``create_level_1_headers``; extra L2 header cases from
  ``create_level_2_headers``.

The reference computes amounts in binary floating point; ringbolt uses exact decimals. For every
case the script also evaluates the reference's rounding rules in exact ``Decimal`` arithmetic
(``exact_amounts``). Where the two differ (a float artefact, e.g. ``floor(4.35 * 100)`` = 434),
the case is marked ``float_artifact`` and its signature/body are produced by the official
builder from the exact amounts, so ringbolt is still checked byte-for-byte on everything else.
"""

import argparse
import json
import random
import sys
import time
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

import py_clob_client_v2
import py_clob_client_v2.headers.headers as headers_mod
import py_clob_client_v2.order_builder.builder as builder_mod
from py_clob_client_v2.client import ClobClient
from py_clob_client_v2.clob_types import (
    ApiCreds,
    CreateOrderOptions,
    MarketOrderArgsV2,
    OrderArgsV2,
    PostOrdersV2Args,
    RequestArgs,
)
from py_clob_client_v2.order_builder.builder import ROUNDING_CONFIG, OrderBuilder
from py_clob_client_v2.order_utils import ExchangeOrderBuilderV2
from py_clob_client_v2.order_utils.model.order_data_v2 import OrderDataV2
from py_clob_client_v2.order_utils.model.side import Side
from py_clob_client_v2.signer import Signer

ZERO32 = "0x" + "00" * 32

# Fixed test keys (never funded; do not reuse).
KEYS = [
    "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318",
    "0x8f2a55949038a9610f50fb23b5883af3b4ecb3c3bb792cbcefbd1542c692be63",
    "0x0000000000000000000000000000000000000000000000000000000000000001",
]
CREDS = ApiCreds(
    api_key="3b6a2f4e-1c9d-4e7a-9b2f-5d8c0e1a7f63",
    api_secret="c2VjcmV0LWtleS1mb3ItcmluZ2JvbHQtdGVzdHMtMDEyMzQ1Njc4OWFiY2RlZg==",
    api_passphrase="6f1e0c9b8a7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a3928170f6e5d4c",
)
FUNDERS = [
    "0x2fA3b8C1d4E5f60718293a4B5c6D7e8F90a1B2c3",
    "0x9999999999999999999999999999999999999999",
    "0xabcdefabcdefabcdefabcdefabcdefabcdefabcd",
]
TOKENS = [
    "104239898038807136052399800151408521467737075933964991162589336683346093173875",
    "71183960810705820955071415844881728181970340514894896943812046065452395013351",
    "1",
]
BUILDER = "0x" + "42" * 16 + "00" * 16
METADATA = "0x" + "00" * 31 + "07"
TICKS = ["0.1", "0.01", "0.005", "0.0025", "0.001", "0.0001"]


class _FixedTime:
    """Stands in for the ``time`` module inside the order builder (timestamp_ms)."""

    def __init__(self, ms):
        self.ms = ms

    def time_ns(self):
        return self.ms * 1_000_000


class _FixedDatetime:
    """Stands in for ``datetime`` inside the header module (POLY_TIMESTAMP)."""

    ts = 0

    class _Now:
        def __init__(self, ts):
            self._ts = ts

        def timestamp(self):
            return float(self._ts)

    @classmethod
    def now(cls):
        return cls._Now(cls.ts)


def _salted_builder(salt):
    class SaltedBuilder(ExchangeOrderBuilderV2):
        def __init__(self, *a, **kw):
            kw["generate_salt"] = lambda: str(salt)
            super().__init__(*a, **kw)

    return SaltedBuilder


# ---------------------------------------------------------------------------------------------
# Exact-decimal evaluation of the reference's rounding rules (see OrderBuilder.get_*_amounts).


def _dp(x: Decimal) -> int:
    x = x.normalize()
    return max(0, -x.as_tuple().exponent)


def _down(x: Decimal, d: int) -> Decimal:
    return x.quantize(Decimal(1).scaleb(-d), rounding=ROUND_FLOOR)


def _up(x: Decimal, d: int) -> Decimal:
    return x.quantize(Decimal(1).scaleb(-d), rounding=ROUND_CEILING)


def _fix(x: Decimal, amount_dp: int) -> Decimal:
    if _dp(x) > amount_dp:
        x = _up(x, amount_dp + 4)
        if _dp(x) > amount_dp:
            x = _down(x, amount_dp)
    return x


def exact_amounts(kind, side, price, qty, tick):
    import decimal

    ctx = decimal.getcontext()
    ctx.prec = 80
    rc = ROUNDING_CONFIG[tick]
    p = Decimal(price)
    q = Decimal(qty)
    if kind == "limit":
        p = p.quantize(Decimal(1).scaleb(-rc.price))  # on-grid input: no-op
        base = _down(q, rc.size)
        other = _fix(base * p, rc.amount)
        maker, taker = (other, base) if side == "BUY" else (base, other)
    else:
        p = _down(p, rc.price)
        maker = _down(q, rc.size)
        taker = _fix(maker / p if side == "BUY" else maker * p, rc.amount)
    to6 = lambda x: int((x * 1_000_000).to_integral_value())  # noqa: E731
    return to6(maker), to6(taker)


# ---------------------------------------------------------------------------------------------


def make_client(key_hex, sig_type, funder, chain_id):
    client = ClobClient(
        "https://clob.invalid", chain_id, key=key_hex, creds=CREDS,
        signature_type=sig_type, funder=funder,
    )
    return client


def capture_post(client, fn, *args, **kw):
    captured = {}

    def fake_post(endpoint, headers=None, data=None, params=None):
        captured["endpoint"] = endpoint
        captured["headers"] = dict(headers)
        captured["data"] = data
        return {"success": True, "errorMsg": "", "orderID": "0x01", "status": "live",
                "transactionsHashes": [], "tradeIDs": []}

    client._post = fake_post
    fn(*args, **kw)
    return captured


def sign_case(case, key_hex):
    """Builds and signs one order with the official builder. Returns (signed, amounts, hash)."""
    chain_id = case["chain_id"]
    funder = case.get("funder")
    client = make_client(key_hex, case["signature_type"], funder, chain_id)
    builder: OrderBuilder = client.builder
    side = case["side"]
    tick = case["tick_size"]
    rc = ROUNDING_CONFIG[tick]
    qty = case["size"] if case["kind"] == "limit" else case["amount"]
    asset = {"position_id": case["position_id"], "token_id": None} if "position_id" in case \
        else {"token_id": case["token_id"]}
    if case["kind"] == "limit":
        _, ref_maker, ref_taker = builder.get_order_amounts(side, float(qty), float(case["price"]), rc)
    else:
        _, ref_maker, ref_taker = builder.get_market_order_amounts(side, float(qty), float(case["price"]), rc)
    ex_maker, ex_taker = exact_amounts(case["kind"], side, case["price"], qty, tick)
    artifact = (ref_maker, ref_taker) != (ex_maker, ex_taker)

    builder_mod.time = _FixedTime(case["timestamp_ms"])
    builder_mod.ExchangeOrderBuilderV2 = _salted_builder(case["salt"])
    version = case["exchange_version"]
    opts = CreateOrderOptions(tick_size=tick, neg_risk=case["neg_risk"])
    if not artifact:
        if case["kind"] == "limit":
            args = OrderArgsV2(price=float(case["price"]), size=float(qty), side=side,
                               expiration=int(case["expiration"]), builder_code=case["builder_code"],
                               metadata=case["metadata"], **asset)
            signed = builder.build_order(args, opts, version=version)
        else:
            args = MarketOrderArgsV2(amount=float(qty), side=side, price=float(case["price"]),
                                     builder_code=case["builder_code"], metadata=case["metadata"], **asset)
            signed = builder.build_market_order(args, opts, version=version)
    else:
        # Same path below build_order, with the exact amounts.
        cfg = builder_mod.get_contract_config(chain_id)
        v = 3 if "position_id" in case else version
        exchange = cfg.exchange_v3 if v == 3 else (
            cfg.neg_risk_exchange_v2 if case["neg_risk"] else cfg.exchange_v2)
        data = OrderDataV2(
            maker=builder.funder, tokenId=case.get("position_id", case.get("token_id")),
            makerAmount=str(ex_maker), takerAmount=str(ex_taker),
            side=Side.BUY if side == "BUY" else Side.SELL, signer=builder._v2_order_signer(),
            signatureType=builder.signature_type, timestamp=str(case["timestamp_ms"]),
            metadata=case["metadata"], builder=case["builder_code"],
            expiration=str(case["expiration"]) if case["kind"] == "limit" else None,
        )
        eb = _salted_builder(case["salt"])(exchange, chain_id, builder.signer, domain_version=str(v))
        signed = eb.build_signed_order(data)
    # Order hash (EIP-712 digest of the order under the exchange domain).
    cfg = builder_mod.get_contract_config(chain_id)
    v = 3 if "position_id" in case else version
    exchange = cfg.exchange_v3 if v == 3 else (
        cfg.neg_risk_exchange_v2 if case["neg_risk"] else cfg.exchange_v2)
    eb = ExchangeOrderBuilderV2(exchange, chain_id, builder.signer, domain_version=str(v))
    digest = eb.build_order_hash(eb.build_order_typed_data(signed))
    return client, signed, (ref_maker, ref_taker), (ex_maker, ex_taker), artifact, digest


def random_cases(rng, n):
    cases = []
    for i in range(n):
        tick = TICKS[i % len(TICKS)]
        rc = ROUNDING_CONFIG[tick]
        t = Decimal(tick)
        steps = int((1 - 2 * t) / t)
        price = t * (1 + rng.randrange(steps + 1))
        price = format(price.quantize(Decimal(1).scaleb(-rc.price)).normalize(), "f")
        kind = "limit" if rng.random() < 0.6 else "market"
        side = rng.choice(["BUY", "SELL"])
        qty_dp = rng.choice([0, 1, 2, 3, 4])
        qty = Decimal(rng.randrange(1, 250_000)).scaleb(-qty_dp)
        qty = format(qty.normalize(), "f")
        sig = rng.choice([0, 0, 1, 2, 3])
        version = rng.choice([2, 2, 3])
        if kind == "limit":
            order_type = rng.choice(["GTC", "GTC", "GTD", "FOK", "FAK"])
        else:
            order_type = rng.choice(["FOK", "FAK"])
        post_only = order_type in ("GTC", "GTD") and rng.random() < 0.4
        case = {
            "side": side,
            "kind": kind,
            "price": price,
            "tick_size": tick,
            "neg_risk": rng.random() < 0.3,
            "signature_type": sig,
            "order_type": order_type,
            "post_only": post_only,
            "defer_exec": rng.random() < 0.2,
            "expiration": 1773307500 + rng.randrange(10_000) if order_type == "GTD" else 0,
            "salt": rng.randrange(1, 1_773_307_200_000),
            "timestamp_ms": 1773307200000 + rng.randrange(300_000),
            "builder_code": BUILDER if rng.random() < 0.3 else ZERO32,
            "metadata": METADATA if rng.random() < 0.2 else ZERO32,
            "chain_id": 137 if rng.random() < 0.85 else 80002,
            "exchange_version": version,
        }
        case["size" if kind == "limit" else "amount"] = qty
        token = rng.choice(TOKENS)
        if version == 3 and rng.random() < 0.7:
            case["position_id"] = token
        else:
            case["token_id"] = token
        if sig != 0 or rng.random() < 0.2:
            case["funder"] = rng.choice(FUNDERS)
        if sig == 3 and "funder" not in case:
            case["funder"] = FUNDERS[0]
        cases.append((rng.randrange(len(KEYS)), case))
    return cases


def fixed_cases():
    base = {
        "tick_size": "0.01", "neg_risk": False, "signature_type": 0, "order_type": "GTC",
        "post_only": False, "defer_exec": False, "expiration": 0, "salt": 123456789,
        "timestamp_ms": 1773307200123, "builder_code": ZERO32, "metadata": ZERO32,
        "chain_id": 137, "exchange_version": 2, "token_id": TOKENS[0],
    }
    out = []
    # Examples from PROTOCOL_NOTES.md section 2.
    out.append((0, {**base, "side": "BUY", "kind": "limit", "price": "0.37", "size": "12.345"}))
    out.append((0, {**base, "side": "BUY", "kind": "market", "price": "0.55", "amount": "25",
                    "order_type": "FOK"}))
    # Float artefacts of the reference (floor(4.35*100) == 434 in binary floating point).
    out.append((0, {**base, "side": "SELL", "kind": "limit", "price": "0.5", "size": "4.35"}))
    out.append((1, {**base, "side": "BUY", "kind": "limit", "price": "0.29", "size": "0.29"}))
    # Every tick size at its extremes, both sides, limit and market.
    for tick in TICKS:
        t = Decimal(tick)
        for price in (t, 1 - t):
            for side in ("BUY", "SELL"):
                for kind in ("limit", "market"):
                    c = {**base, "tick_size": tick, "side": side, "kind": kind,
                         "price": format(price.normalize(), "f"),
                         "order_type": "GTC" if kind == "limit" else "FAK"}
                    c["size" if kind == "limit" else "amount"] = "7.777"
                    out.append((2, c))
    # Each signature type x version x neg_risk.
    for sig in (0, 1, 2, 3):
        for version in (2, 3):
            for neg in (False, True):
                c = {**base, "side": "BUY", "kind": "limit", "price": "0.42", "size": "100",
                     "signature_type": sig, "exchange_version": version, "neg_risk": neg,
                     "order_type": "GTD", "expiration": 1773307800, "post_only": True}
                if sig:
                    c["funder"] = FUNDERS[sig % len(FUNDERS)]
                if version == 3:
                    c.pop("token_id")
                    c["position_id"] = TOKENS[1]
                out.append((1, c))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", help="vectors JSON to write")
    ap.add_argument("--bench-out", help="write the reference's sign timing here (not diffed)")
    ap.add_argument("--bench-iterations", type=int, default=300)
    a = ap.parse_args()
    if not a.out:
        if not a.bench_out:
            ap.error("give --out and/or --bench-out")
        bench(a.bench_out, a.bench_iterations)
        return

    rng = random.Random(0x52494E47)  # "RING"
    cases = fixed_cases() + random_cases(rng, 160)
    orders = []
    batch_pool = []
    for key_idx, case in cases:
        key_hex = KEYS[key_idx]
        client, signed, ref, exact, artifact, digest = sign_case(case, key_hex)
        headers_mod.datetime = _FixedDatetime
        _FixedDatetime.ts = case["timestamp_ms"] // 1000
        cap = capture_post(client, client.post_order, signed, case["order_type"],
                           case["post_only"], case["defer_exec"])
        orders.append({
            "key_index": key_idx,
            "api_key": CREDS.api_key,
            "input": case,
            "reference_amounts": {"maker_amount": str(ref[0]), "taker_amount": str(ref[1])},
            "float_artifact": artifact,
            "expected": {
                "maker_amount": str(exact[0]),
                "taker_amount": str(exact[1]),
                "signature": signed.signature,
                "digest": digest,
                "body": cap["data"],
            },
            "request": {"method": "POST", "path": "/order", "headers": cap["headers"]},
        })
        batch_pool.append((key_idx, case, client, signed))

    # Batches (POST /orders): orders of one key, sizes 1, 2, 5, 15, with shared post_only/defer_exec
    # flags as the client applies them to the whole batch.
    batches = []
    by_key = {}
    for key_idx, case, client, signed in batch_pool:
        by_key.setdefault(key_idx, []).append((case, client, signed))
    for n, (post_only, defer) in zip((1, 2, 5, 15), ((False, False), (True, False), (False, True), (False, False))):
        for key_idx in sorted(by_key):
            items = [it for it in by_key[key_idx]
                     if not (post_only and it[0]["order_type"] in ("FOK", "FAK"))]
            # One client per batch: take the signature type/funder of the first order.
            first = items[0]
            same = [it for it in items if it[0]["signature_type"] == first[0]["signature_type"]
                    and it[0].get("funder") == first[0].get("funder")
                    and it[0]["chain_id"] == first[0]["chain_id"]][:n]
            if len(same) < n:
                continue
            client = same[0][1]
            ts = 1773307260 + n
            headers_mod.datetime = _FixedDatetime
            _FixedDatetime.ts = ts
            args = [PostOrdersV2Args(order=it[2], orderType=it[0]["order_type"]) for it in same]
            cap = capture_post(client, client.post_orders, args, post_only, defer)
            batches.append({
                "key_index": key_idx,
                "api_key": CREDS.api_key,
                "inputs": [it[0] for it in same],
                "post_only": post_only,
                "defer_exec": defer,
                "timestamp_s": ts,
                "body": cap["data"],
                "request": {"method": "POST", "path": "/orders", "headers": cap["headers"]},
            })
            break

    # L1 (ClobAuth) headers.
    l1 = []
    for key_idx, key in enumerate(KEYS):
        for ts, nonce in ((1773307200, 0), (1773307299, 7), (1700000000, 123456789)):
            signer = Signer(key, 137 if nonce != 7 else 80002)
            h = headers_mod.create_level_1_headers(signer, nonce=nonce, timestamp=ts)
            l1.append({"key_index": key_idx, "chain_id": signer.get_chain_id(), "timestamp": ts,
                       "nonce": nonce, "headers": h})

    # L2 headers for assorted requests.
    l2 = []
    reqs = [
        ("GET", "/data/orders", None),
        ("DELETE", "/order", '{"orderID":"0xabc"}'),
        ("DELETE", "/cancel-all", None),
        ("POST", "/v1/heartbeats", '{"heartbeat_id":""}'),
        ("GET", "/balance-allowance", ""),
        ("POST", "/order", "{'quoted': 'single'}"),
    ]
    for i, (method, path, body) in enumerate(reqs):
        signer = Signer(KEYS[i % len(KEYS)], 137)
        ts = 1773307200 + i
        h = headers_mod.create_level_2_headers(
            signer, CREDS, RequestArgs(method=method, request_path=path, serialized_body=body),
            timestamp=ts)
        l2.append({"key_index": i % len(KEYS), "method": method, "path": path, "body": body,
                   "timestamp": ts, "headers": h})

    out = {
        "generator": "exec/vectors/generate.py",
        "reference": f"py-clob-client-v2 {_version()}",
        "keys": KEYS,
        "creds": {"api_key": CREDS.api_key, "secret": CREDS.api_secret,
                  "passphrase": CREDS.api_passphrase},
        "orders": orders,
        "batches": batches,
        "l1_headers": l1,
        "l2_headers": l2,
    }
    with open(a.out, "w") as f:
        json.dump(out, f, indent=1, sort_keys=True)
        f.write("\n")

    if a.bench_out:
        bench(a.bench_out, a.bench_iterations)
    n_art = sum(o["float_artifact"] for o in orders)
    print(f"wrote {len(orders)} orders ({n_art} float artefacts), {len(batches)} batches, "
          f"{len(l1)} L1, {len(l2)} L2 header vectors to {a.out}", file=sys.stderr)


def _version():
    try:
        from importlib.metadata import version
        return version("py-clob-client-v2")
    except Exception:  # pragma: no cover
        return getattr(py_clob_client_v2, "__version__", "unknown")


def bench(path, iterations):
    """Times the reference's build-and-sign of one limit order and one L2 HMAC."""
    from py_clob_client_v2.signing.hmac import build_hmac_signature

    client = make_client(KEYS[0], 0, None, 137)
    opts = CreateOrderOptions(tick_size="0.01", neg_risk=False)
    args = OrderArgsV2(token_id=TOKENS[0], price=0.42, size=100.0, side="BUY")
    for _ in range(20):
        client.builder.build_order(args, opts, version=2)
    samples = []
    for _ in range(iterations):
        t0 = time.perf_counter_ns()
        client.builder.build_order(args, opts, version=2)
        samples.append(time.perf_counter_ns() - t0)
    samples.sort()
    hm = []
    body = "x" * 700
    for _ in range(iterations * 10):
        t0 = time.perf_counter_ns()
        build_hmac_signature(CREDS.api_secret, 1773307200, "POST", "/order", body)
        hm.append(time.perf_counter_ns() - t0)
    hm.sort()
    res = {
        "reference": f"py-clob-client-v2 {_version()}",
        "python": sys.version.split()[0],
        "sign_order_p50_ns": samples[len(samples) // 2],
        "sign_order_p99_ns": samples[len(samples) * 99 // 100],
        "sign_orders_per_s": round(1e9 / samples[len(samples) // 2], 1),
        "l2_hmac_p50_ns": hm[len(hm) // 2],
        "iterations": iterations,
    }
    with open(path, "w") as f:
        json.dump(res, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
