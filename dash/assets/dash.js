// ringbolt dash: one read-only page fed by the dashboard's WebSocket (hello, then ticks).
(function () {
  "use strict";

  const $ = (id) => document.getElementById(id);
  const state = { columns: [], data: [], maxPoints: 4800, charts: {}, fires: [] };
  const PALETTE = ["#e6194b", "#3cb44b", "#ffe119", "#4363d8", "#f58231", "#911eb4", "#46f0f0",
    "#f032e6", "#bcf60c", "#fabebe", "#008080", "#e6beff", "#9a6324"];

  const fmt = (v, d) => (v === null || v === undefined || Number.isNaN(v)) ? "–" : Number(v).toFixed(d);
  const ns = (v) => {
    if (v === null || v === undefined) return "–";
    if (v >= 1e6) return (v / 1e6).toFixed(2) + " ms";
    if (v >= 1e3) return (v / 1e3).toFixed(1) + " µs";
    return Math.round(v) + " ns";
  };
  const hhmmss = (s) => new Date(s * 1000).toISOString().substring(11, 19);
  const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c]));
  const row = (cells, tag) => "<tr>" + cells.map((c) => `<${tag || "td"}>${c}</${tag || "td"}>`).join("") + "</tr>";
  const nodata = (el, text) => { el.innerHTML = `<tr><td class="nodata">${esc(text || "no data")}</td></tr>`; };

  function width(el) { return Math.max(300, el.clientWidth - 4); }

  function makeChart(id, names, seriesOf, height) {
    const el = $(id);
    const opts = {
      width: width(el), height: height,
      scales: { x: { time: true } },
      axes: [{ stroke: "#7d8a99", grid: { stroke: "#2a3440" } },
        { stroke: "#7d8a99", grid: { stroke: "#2a3440" }, size: 70 }],
      legend: { live: false },
      series: [{}].concat(names.map(seriesOf)),
    };
    return new uPlot(opts, [[]].concat(names.map(() => [])), el);
  }

  function column(name) { return state.columns.indexOf(name); }

  function priceChart() {
    const names = ["reference", "chainlink", "strike"].concat(state.columns.slice(8));
    const chart = makeChart("c-prices", names, (n, i) => ({
      label: n,
      stroke: n === "reference" ? "#ffffff" : n === "chainlink" ? "#2a9df4" : n === "strike" ? "#f5c518" : PALETTE[i % PALETTE.length],
      width: (n === "reference" || n === "chainlink" || n === "strike") ? 2 : 1,
      dash: n === "strike" ? [6, 4] : undefined,
      spanGaps: true,
    }), 260);
    return { chart, cols: names.map(column) };
  }

  function probChart() {
    const names = ["prob_up", "prob_down", "up_mid", "down_mid"];
    const colors = { prob_up: "#3cb44b", prob_down: "#e6194b", up_mid: "#a0e0b0", down_mid: "#f0a0a0" };
    const chart = makeChart("c-prob", names, (n) => ({
      label: n.replace("_", " "), stroke: colors[n], width: n.startsWith("prob") ? 2 : 1,
      dash: n.endsWith("mid") ? [4, 3] : undefined, spanGaps: true,
    }), 200);
    return { chart, cols: names.map(column) };
  }

  function firesChart() {
    const chart = makeChart("c-fires", ["up fires", "down fires"], (n, i) => ({
      label: n, stroke: i === 0 ? "#3cb44b" : "#e6194b", width: 0,
      points: { show: true, size: 7, fill: i === 0 ? "#3cb44b" : "#e6194b" },
    }), 150);
    return { chart };
  }

  function redrawCharts() {
    const p = state.charts.prices, q = state.charts.prob;
    const x = state.data[0] || [];
    $("c-prices").dataset.points = String(x.length);
    if (p) p.chart.setData([x].concat(p.cols.map((c) => state.data[c] || [])));
    if (q) q.chart.setData([x].concat(q.cols.map((c) => state.data[c] || [])));
    const f = state.charts.fires;
    if (f) {
      const fires = state.fires.slice().sort((a, b) => a.t - b.t);
      f.chart.setData([fires.map((d) => d.t),
        fires.map((d) => d.outcome === "up" ? d.price : null),
        fires.map((d) => d.outcome === "down" ? d.price : null)]);
    }
  }

  function onHello(msg) {
    state.columns = msg.columns;
    state.data = msg.data;
    state.maxPoints = Math.max(4800, (msg.data[0] || []).length);
    for (const key of Object.keys(state.charts)) state.charts[key].chart.destroy();
    for (const id of ["c-prices", "c-prob", "c-fires"]) $(id).innerHTML = "";
    state.charts = { prices: priceChart(), prob: probChart(), fires: firesChart() };
    if (msg.latest) onTick(msg.latest, false);
    redrawCharts();
  }

  function onTick(msg, append) {
    if (append !== false && msg.point) {
      msg.point.forEach((v, i) => {
        const col = state.data[i] || (state.data[i] = []);
        col.push(v);
        if (col.length > state.maxPoints) col.shift();
      });
    }
    const p = msg.panels || {};
    renderFacts(p, msg);
    renderBooks(p.books);
    renderDecisions(p.decisions);
    renderLatency(msg.metrics);
    renderOrders(p.order_latency, msg.metrics);
    renderHealth(p.health, msg.metrics && msg.metrics.streams);
    renderPnl(p.positions);
    if (append !== false) redrawCharts();
  }

  function renderFacts(p, msg) {
    const w = p.window || {};
    $("f-window").textContent = w.start_s ? hhmmss(w.start_s) + "–" + hhmmss(w.end_s) : "–";
    $("f-left").textContent = w.start_s ? fmt(w.time_left_s, 0) + " s" : "–";
    $("f-strike").textContent = fmt(w.strike, 2);
    $("f-reference").textContent = fmt(w.reference, 2) + (w.reference_venues ? ` (${w.reference_venues})` : "");
    $("f-chainlink").textContent = fmt(w.chainlink, 2);
    $("f-prob").textContent = fmt(w.prob_up, 3);
    $("f-records").textContent = String(p.records || 0);
    const bus = msg.bus || [];
    $("f-bus").textContent = bus.map((s) => `${s.open ? (s.read_only ? "ro" : "rw") : "closed"} lag ${s.lag} lost ${s.lost}`).join(" · ") || "–";
  }

  function ladder(el, book) {
    if (!book) return nodata(el, "no book yet");
    const ours = {};
    for (const o of book.orders || []) {
      const k = o.price.toFixed(4);
      ours[k] = (ours[k] || "") + `${o.side} ${fmt(o.size, 0)} ${o.state}${o.paper ? " (paper)" : ""} `;
    }
    const lines = [row(["bid size", "price", "ask size", "ours"], "th")];
    const seen = {};
    const line = (price, bid, ask) => {
      const k = price.toFixed(4);
      seen[k] = true;
      const cls = ours[k] ? ' class="ours"' : "";
      return `<tr${cls}><td class="bid">${bid}</td><td>${price.toFixed(3)}</td><td class="ask">${ask}</td><td>${ours[k] ? esc(ours[k]) : ""}</td></tr>`;
    };
    for (const [price, size] of (book.asks || []).slice().reverse()) lines.push(line(price, "", fmt(size, 0)));
    for (const [price, size] of book.bids || []) lines.push(line(price, fmt(size, 0), ""));
    for (const k of Object.keys(ours)) if (!seen[k]) lines.push(`<tr class="ours"><td></td><td>${Number(k).toFixed(3)}</td><td></td><td>${esc(ours[k])}</td></tr>`);
    el.innerHTML = lines.join("");
  }

  function renderBooks(b) {
    if (!b) return;
    ladder($("b-up"), b.up);
    ladder($("b-down"), b.down);
    $("b-up-mid").textContent = b.up ? "mid " + fmt(b.up.mid, 4) : "";
    $("b-down-mid").textContent = b.down ? "mid " + fmt(b.down.mid, 4) : "";
    $("b-open").textContent = `· ${b.open_orders} working`;
  }

  function renderDecisions(d) {
    if (!d) return;
    $("d-counts").textContent = `· ${d.total} decisions, ${d.fired} fired`;
    const reasons = Object.keys(d.reasons_total || {});
    if (!reasons.length) nodata($("d-reasons"), "no decisions yet");
    else $("d-reasons").innerHTML = row(["reason", "last tick", "total"], "th") +
      reasons.map((r) => row([esc(r), (d.reasons_recent || {})[r] || 0, d.reasons_total[r]])).join("");
    const known = new Set(state.fires.map((f) => f.coid));
    for (const f of d.fires || []) if (!known.has(f.coid)) state.fires.push(f);
    if (state.fires.length > 400) state.fires.splice(0, state.fires.length - 400);
    const recent = state.fires.slice(-8).reverse();
    if (!recent.length) nodata($("d-fires"), "no fires yet");
    else $("d-fires").innerHTML = row(["time", "token", "side", "price", "edge", "P(up)"], "th") +
      recent.map((f) => row([hhmmss(f.t), f.outcome, f.side, fmt(f.price, 3), fmt(f.edge, 4), fmt(f.prob_up, 3)])).join("");
  }

  function stageRows(stages, filter) {
    return (stages || []).filter(filter).map((s) => {
      const q = s.quantiles || {};
      return row([esc(s.process), esc(s.stage), ns(q["0.5"]), ns(q["0.9"]), ns(q["0.99"]), ns(q["0.999"]), q.count === undefined ? "–" : q.count]);
    });
  }

  function renderLatency(m) {
    const el = $("l-stages");
    const rows = stageRows(m && m.stages, () => true);
    if (!rows.length) nodata(el, "no data (no process serves ringbolt_stage_latency_ns yet)");
    else el.innerHTML = row(["process", "stage", "p50", "p90", "p99", "p99.9", "count"], "th") + rows.join("");
    $("l-sources").textContent = ((m && m.sources) || []).map((s) => `${s.process}: ${s.ok ? s.samples + " samples" : "no data (" + s.error + ")"}`).join(" · ");
  }

  function renderOrders(o, m) {
    const el = $("o-latency");
    const lines = [row(["source", "what", "p50", "p99", "max", "n"], "th")];
    if (o && o.samples) lines.push(row(["bus", "order placed → venue answer", ns(o.p50_ns), ns(o.p99_ns), ns(o.max_ns), o.samples]));
    const ordered = (m && m.stages || []).filter((s) => /order|cancel/.test(s.stage));
    for (const s of ordered) {
      const q = s.quantiles || {};
      lines.push(row([esc(s.process), esc(s.stage), ns(q["0.5"]), ns(q["0.99"]), "–", q.count === undefined ? "–" : q.count]));
    }
    if (lines.length === 1) nodata(el, "no orders yet");
    else el.innerHTML = lines.join("");
  }

  // Feed health: the bus's feed-status rows (state, transitions) merged with the collector's
  // per-stream counters from /metrics (a stream without status rows takes its venue's state).
  function healthRows(rows, streams) {
    const byKey = {};
    const venueRow = {};
    for (const r of rows || []) {
      const key = r.venue + "/" + r.stream;
      byKey[key] = Object.assign({ key }, r);
      if (r.stream === "connection" || !venueRow[r.venue]) venueRow[r.venue] = r;
    }
    for (const [key, c] of Object.entries(streams || {})) {
      const venue = key.split("/")[0];
      const base = byKey[key] || (venueRow[venue] ? { key, venue, stream: key.split("/")[1], health: venueRow[venue].health,
        state: venueRow[venue].state, messages: 0, gaps: 0, gap_records: 0, reconnects: 0, resyncs: 0, parse_errors: 0, inherited: true } : null);
      if (!base) continue;
      for (const f of ["messages", "gaps", "gap_records", "reconnects", "resyncs", "parse_errors"]) {
        base[f] = Math.max(base[f] || 0, c[f] || 0);
      }
      // A stream the venue never used (no message, no event) is left out.
      if (base.inherited && !["messages", "gaps", "reconnects", "resyncs", "parse_errors"].some((f) => base[f] > 0)) continue;
      byKey[key] = base;
    }
    return Object.values(byKey).sort((a, b) => a.key < b.key ? -1 : 1);
  }

  function renderHealth(rows, streams) {
    const el = $("h-streams");
    const merged = healthRows(rows, streams);
    if (!merged.length) return nodata(el, "no feed status yet");
    const lines = [row(["venue / stream", "health", "state", "messages", "gaps", "gap records", "reconnects", "resyncs", "parse errors", "last issue"], "th")];
    for (const r of merged) {
      const issue = r.last_issue ? `${r.last_issue} ${hhmmss(r.last_issue_s)}` : "";
      lines.push(`<tr data-stream="${esc(r.key)}" data-health="${esc(r.health)}" data-reconnects="${r.reconnects}" data-gaps="${r.gaps}">` +
        `<td>${esc(r.key)}</td><td><span class="badge ${esc(r.health)}">${esc(r.health)}</span></td><td>${esc(r.state)}${r.inherited ? "*" : ""}</td>` +
        `<td>${r.messages}</td><td>${r.gaps}</td><td>${r.gap_records}</td><td>${r.reconnects}</td><td>${r.resyncs}</td>` +
        `<td>${r.parse_errors}</td><td>${esc(issue)}</td></tr>`);
    }
    el.innerHTML = lines.join("");
  }

  function renderPnl(p) {
    const el = $("pnl-rows");
    if (!p || !p.rows || !p.rows.length) {
      $("pnl-total").textContent = "";
      return nodata(el, "no fills yet");
    }
    $("pnl-total").textContent = `· realised ${fmt(p.realised_pnl_usdc, 2)} USDC`;
    el.innerHTML = row(["window", "token", "shares", "cash", "fees", "payout", "fills", "P&L"], "th") +
      p.rows.slice(-10).map((r) => row([hhmmss(r.window_start_s), r.outcome, fmt(r.shares, 2), fmt(r.cash_usdc, 2),
        fmt(r.fees_usdc, 3), fmt(r.payout_usdc, 2), r.fills, r.settled ? fmt(r.pnl_usdc, 2) : "open"])).join("");
  }

  function connect() {
    const token = new URLSearchParams(location.search).get("token");
    const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws" + (token ? "?token=" + encodeURIComponent(token) : "");
    const ws = new WebSocket(url);
    const conn = $("f-conn");
    ws.onopen = () => { conn.textContent = "live"; conn.className = "badge live"; };
    ws.onmessage = (ev) => {
      const msg = JSON.parse(ev.data);
      if (msg.type === "hello") onHello(msg);
      else if (msg.type === "tick") onTick(msg, true);
    };
    ws.onclose = () => {
      conn.textContent = "reconnecting"; conn.className = "badge reconnecting";
      setTimeout(connect, 1000);
    };
  }

  window.addEventListener("resize", () => {
    for (const [key, c] of Object.entries(state.charts)) {
      const el = $(key === "prices" ? "c-prices" : key === "prob" ? "c-prob" : "c-fires");
      c.chart.setSize({ width: width(el), height: c.chart.height });
    }
  });
  connect();
})();
