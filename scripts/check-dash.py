#!/usr/bin/env python3
"""Drives Debian's chromium (headless, Playwright for Python pointed at the system browser) against
a running `ringbolt dash` and checks what an operator would see:

- the page loads with no console errors and no uncaught exceptions;
- every panel (`section[data-panel]`) renders: charts have their canvas, tables have rows;
- the numbers change over a few seconds (records read, chart points, the reference price);
- a feed fault injected through the emulator's control API (`POST /fault?venue=&kind=`) shows up
  in the health panel (the venue's stream leaves `live`, or its reconnect/gap count rises);
- the server is read-only: any method but GET is refused, no route places or cancels orders;
- a full-page screenshot is kept (`--artifacts`/dash.png).

Prints one JSON summary line; exits non-zero with the reason when a check fails.
"""

import argparse
import http.client
import json
import os
import sys
import time
import urllib.parse

from playwright.sync_api import sync_playwright


def fail(msg):
    print(f"check-dash: FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def request(base, method, path):
    u = urllib.parse.urlparse(base)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=5)
    conn.request(method, path, body=b"{}" if method != "GET" else None)
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp.status, body


def check_read_only(base):
    """Every mutating method is refused; order-ish paths do not exist."""
    refused = {}
    for method, path in [("POST", "/"), ("POST", "/ws"), ("PUT", "/snapshot.json"),
                         ("DELETE", "/order"), ("POST", "/order"), ("POST", "/cancel"),
                         ("PATCH", "/orders")]:
        status, _ = request(base, method, path)
        if status != 405:
            fail(f"{method} {path} answered {status}, expected 405 (read-only)")
        refused[f"{method} {path}"] = status
    for path in ["/order", "/orders", "/cancel", "/cancel-all", "/admin"]:
        status, _ = request(base, "GET", path)
        if status != 404:
            fail(f"GET {path} answered {status}, expected 404")
        refused[f"GET {path}"] = status
    status, body = request(base, "GET", "/snapshot.json")
    if status != 200 or not body.startswith(b"{"):
        fail(f"GET /snapshot.json answered {status}")
    for secret in (b"key_file", b"paper.key", b"api_secret", b"passphrase", b"0x"):
        if secret in body:
            fail(f"/snapshot.json contains {secret!r}")
    return refused


def panels_rendered(page):
    return page.evaluate("""() => Array.from(document.querySelectorAll('section[data-panel]')).map(s => ({
        panel: s.dataset.panel,
        canvases: s.querySelectorAll('canvas').length,
        rows: s.querySelectorAll('tr').length,
        text: s.innerText.length,
    }))""")


def numbers(page):
    return page.evaluate("""() => ({
        records: Number(document.getElementById('f-records').textContent),
        reference: document.getElementById('f-reference').textContent,
        points: Number(document.getElementById('c-prices').dataset.points || 0),
        health: Array.from(document.querySelectorAll('#h-streams tr[data-stream]')).map(r => ({
            stream: r.dataset.stream, health: r.dataset.health,
            reconnects: Number(r.dataset.reconnects), gaps: Number(r.dataset.gaps),
            issue: r.lastElementChild.textContent })),
    })""")


def wait_for(page, what, predicate, timeout_s):
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        page.wait_for_timeout(250)
    fail(f"timed out after {timeout_s} s waiting for {what}")


def venue_view(page, venue):
    rows = [r for r in numbers(page)["health"] if r["stream"].startswith(venue + "/")]
    return rows


def inject_fault(control, venue, kind):
    host, port = control.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    conn.request("POST", f"/fault?venue={venue}&kind={kind}", body=b"")
    resp = conn.getresponse()
    resp.read()
    conn.close()
    if not 200 <= resp.status < 300:
        fail(f"emulator refused the fault {venue}/{kind}: {resp.status}")


def check_fault(page, control, venue, kind, timeout_s):
    wait_for(page, f"health rows of {venue}", lambda: venue_view(page, venue), 60)
    before = venue_view(page, venue)
    base_reconnects = sum(r["reconnects"] for r in before)
    base_gaps = sum(r["gaps"] for r in before)
    inject_fault(control, venue, kind)

    issues_before = {r["stream"]: r["issue"] for r in before}

    def seen():
        rows = venue_view(page, venue)
        not_live = [r for r in rows if r["health"] != "live"
                    or (r["issue"] and r["issue"] != issues_before.get(r["stream"]))]
        more = (sum(r["reconnects"] for r in rows) > base_reconnects
                or sum(r["gaps"] for r in rows) > base_gaps)
        return (not_live or more) and {"rows": rows, "not_live": not_live, "counts_rose": more}

    shown = wait_for(page, f"the {venue} {kind} fault in the health panel", seen, timeout_s)
    return {"venue": venue, "kind": kind, "reconnects_before": base_reconnects,
            "gaps_before": base_gaps, "after": shown["rows"], "counts_rose": shown["counts_rose"]}


def wait_until_serving(base, timeout_s=60):
    """The demo starts the dashboard with the other children: wait until it answers."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        try:
            if request(base, "GET", "/healthz")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    fail(f"{base} did not answer /healthz within {timeout_s} s")


def run(args):
    os.makedirs(args.artifacts, exist_ok=True)
    wait_until_serving(args.url)
    summary = {"url": args.url}
    errors = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.chromium, headless=True,
                                    args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1400, "height": 1500})
        page.on("console", lambda m: errors.append(f"console.{m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
        try:
            page.goto(args.url, wait_until="load")
            wait_for(page, "the WebSocket to connect", lambda: page.inner_text("#f-conn") == "live", 20)
            wait_for(page, "a reference price", lambda: numbers(page)["reference"] not in ("–", ""), 90)
            first = numbers(page)
            page.wait_for_timeout(3000)
            second = numbers(page)
            if second["records"] <= first["records"]:
                fail(f"records did not change over 3 s: {first['records']} -> {second['records']}")
            if second["points"] <= first["points"]:
                fail(f"the price chart did not grow over 3 s: {first['points']} -> {second['points']}")
            summary["records"] = [first["records"], second["records"]]
            summary["reference"] = [first["reference"], second["reference"]]
            summary["chart_points"] = [first["points"], second["points"]]
            rendered = panels_rendered(page)
            summary["panels"] = rendered
            for panel in rendered:
                if panel["canvases"] == 0 and panel["rows"] == 0:
                    fail(f"panel {panel['panel']} rendered nothing: {panel}")
            expected = {"prices", "probability", "books", "decisions", "latency", "order-latency", "health", "pnl"}
            missing = expected - {p["panel"] for p in rendered}
            if missing:
                fail(f"panels missing: {sorted(missing)}")
            if args.control:
                summary["fault"] = check_fault(page, args.control, args.venue, args.kind, args.fault_timeout)
            page.wait_for_timeout(args.settle_ms)
            shot = os.path.join(args.artifacts, "dash.png")
            page.screenshot(path=shot, full_page=True)
            summary["screenshot"] = shot
        except SystemExit:
            page.screenshot(path=os.path.join(args.artifacts, "dash-failed.png"), full_page=True)
            print(f"check-dash: console errors so far: {errors}", file=sys.stderr)
            raise
        page.close()
        browser.close()
    summary["read_only"] = check_read_only(args.url)
    summary["console_errors"] = errors
    with open(os.path.join(args.artifacts, "check-dash.json"), "w") as f:
        json.dump(summary, f, indent=1)
    if errors:
        fail(f"console errors: {errors}")
    print(json.dumps({k: summary[k] for k in ("url", "records", "reference", "screenshot")} |
                     {"fault_seen": bool(summary.get("fault")), "console_errors": 0}))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", required=True, help="the dashboard, e.g. http://127.0.0.1:8052/")
    ap.add_argument("--control", help="emulator control address host:port (fault injection)")
    ap.add_argument("--venue", default="coinbase")
    ap.add_argument("--kind", default="disconnect")
    ap.add_argument("--fault-timeout", type=float, default=30)
    ap.add_argument("--settle-ms", type=int, default=1500)
    ap.add_argument("--artifacts", default="target/test-artifacts/dash")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    run(ap.parse_args())


if __name__ == "__main__":
    main()
