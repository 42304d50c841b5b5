// dashboard.js - the live dashboard at / (README "A tour"; docs/GATEWAY.md
// 4.7).  A renter connection of the gateway subscribes to the STATS
// document (stats_request with every_ms: the coordinator pushes it once per
// interval, 1 s; ?interval=MS, 200 at least) and draws each: peers (operator view), queues by class and by account,
// throughput and latency by stage as plots (Chart.js from Debian's
// libjs-chart.js at /static/chart.js), refusals with their reasons, cache
// and verification figures.  Rates are differences between two readings.
//
// What the coordinator shows depends on the token (docs/ACCOUNTS.md): an
// operator (or anyone, without a credentials file) gets peers[] and
// accounts[]; a renter its own account and the fabric's totals.
//
// window.p2c2rDash holds the number of updates and the last document, for
// the browser test (tests/browser/test_pages.py).

import {Gateway} from "./gw.js";

const HISTORY = 120; // points kept in the plots
const params = new URLSearchParams(location.search);
const interval = Math.max(200, Number(params.get("interval")) || 1000);
const $ = (id) => document.getElementById(id);

const dash = {updates: 0, stats: null, view: "-"};
window.p2c2rDash = dash;

let prev = null, prevAt = 0;
const prevPeer = new Map();

// ---- formatting ------------------------------------------------------------

function fmt(n, digits) {
    if (n === null || n === undefined || Number.isNaN(n))
        return "-";
    if (digits !== undefined)
        return n.toFixed(digits);
    return Math.round(n).toLocaleString("en");
}

function bytes(n) {
    const u = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (n >= 1024 && i < u.length - 1) {
        n /= 1024;
        i++;
    }
    return (i ? n.toFixed(1) : n) + " " + u[i];
}

function us(n) {
    return n >= 1000 ? (n / 1000).toFixed(n >= 100000 ? 0 : 1) + " ms" : Math.round(n) + " µs";
}

function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined)
        e.textContent = text;
    if (cls)
        e.className = cls;
    return e;
}

function row(tbody, cells) {
    const tr = document.createElement("tr");
    for (const c of cells) {
        if (c instanceof Node) {
            const td = el("td");
            td.appendChild(c);
            tr.appendChild(td);
        } else if (typeof c === "number") {
            tr.appendChild(el("td", fmt(c), "n"));
        } else {
            tr.appendChild(el("td", c === undefined || c === null ? "-" : String(c)));
        }
    }
    tbody.appendChild(tr);
    return tr;
}

function tag(text, cls) {
    return el("span", text, "tag " + cls);
}

// ---- plots -----------------------------------------------------------------

const charts = {};

function makeChart(id, series) {
    if (!window.Chart)
        return null;
    const palette = ["#3367d6", "#c5221f", "#b06000", "#1e8e3e", "#8e24aa"];
    return new window.Chart($(id), {
        type: "line",
        data: {labels: [], datasets: series.map((s, i) => ({
            label: s, data: [], borderColor: palette[i], backgroundColor: palette[i],
            borderWidth: 1.5, pointRadius: 0, tension: 0.2, spanGaps: true}))},
        options: {animation: false, responsive: true, maintainAspectRatio: false,
                  interaction: {mode: "index", intersect: false},
                  scales: {x: {ticks: {maxTicksLimit: 6}}, y: {beginAtZero: true}}},
    });
}

function push(chart, label, values) {
    if (!chart)
        return;
    chart.data.labels.push(label);
    chart.data.datasets.forEach((d, i) => d.data.push(values[i]));
    if (chart.data.labels.length > HISTORY) {
        chart.data.labels.shift();
        chart.data.datasets.forEach((d) => d.data.shift());
    }
    chart.update("none");
}

// ---- one reading -----------------------------------------------------------

const STAGES = ["queue", "dispatch", "exec", "total"];

function stageTotals(s) {
    const t = {};
    for (const st of STAGES)
        t[st] = {count: 0, sum_us: 0};
    for (const ty of s.types || [])
        for (const st of STAGES)
            if (ty.stages && ty.stages[st]) {
                t[st].count += ty.stages[st].count;
                t[st].sum_us += ty.stages[st].sum_us;
            }
    return t;
}

function tiles(s, rate) {
    const c = s.counters;
    const lookups = c.cache_hits + c.cache_misses;
    let kinds = "peers connected";
    if (s.peers) {
        const ws = s.peers.filter((p) => p.transport === "ws").length;
        kinds = `peers: ${s.peers.length - ws} native, ${ws} browser`;
    }
    const list = [
        ["peers", fmt(s.peers_connected), kinds],
        ["renters", fmt(s.renters), "renter connections"],
        ["tasks_live", fmt(s.tasks_live), "tasks live"],
        ["queued", fmt(s.queued), "queued"],
        ["throughput", rate ? fmt(rate("completed"), 1) : "-", "completed / s"],
        ["completed", fmt(c.completed), "completed"],
        ["failed", fmt(c.failed), "failed"],
        ["rejected", fmt(c.rejected), "refused at submit"],
        ["cache_hit", lookups ? fmt((100 * c.cache_hits) / lookups, 1) + " %" : "-", "cache hit ratio"],
        ["verified", fmt(c.verified), "verified results"],
        ["disagreements", fmt(c.disagreements), "disagreements"],
        ["liars", fmt(c.liars), "outvoted results"],
    ];
    const box = $("tiles");
    box.textContent = "";
    for (const [key, v, k] of list) {
        const t = el("div", undefined, "tile");
        t.id = "tile-" + key;
        t.appendChild(el("div", v, "v"));
        t.appendChild(el("div", k, "k"));
        box.appendChild(t);
    }
}

function peersTable(s, dt) {
    const tb = $("peers").tBodies[0];
    tb.textContent = "";
    if (!s.peers) {
        $("peers-note").textContent = `${s.peers_connected} connected; the list is for operators: use an operator token`;
        return;
    }
    const more = s.peers_total > s.peers.length ? `, the first ${s.peers.length} of ${s.peers_total}` : "";
    $("peers-note").textContent = `(${s.peers_total}${more})`;
    const seen = new Map();
    for (const p of s.peers) {
        const before = prevPeer.get(p.id);
        const tps = before !== undefined && dt > 0 ? (p.done - before) / dt : null;
        seen.set(p.id, p.done);
        const speed = (p.types || []).filter((t) => t.exec_us > 0).map((t) => `${t.name} ${us(t.exec_us)}`).join(", ");
        const tr = row(tb, [p.id, p.name || "-", tag(p.transport === "ws" ? "browser" : "native", p.transport),
                            tag(p.state, p.state), fmt(p.trust, 2), fmt(tps, 1), p.done, p.failed,
                            `${p.inflight} / ${p.held_limit}`, fmt(p.rtt_us / 1000, 2),
                            p.verified === undefined ? "-" : p.verified, p.lies === undefined ? "-" : p.lies,
                            p.pool, speed || "-"]);
        tr.dataset.peerId = p.id;
        tr.dataset.transport = p.transport;
        for (const i of [4, 5, 8, 9])
            tr.cells[i].className = "n";
    }
    prevPeer.clear();
    for (const [k, v] of seen)
        prevPeer.set(k, v);
}

function queuesTable(s) {
    const tb = $("queues").tBodies[0];
    tb.textContent = "";
    for (const t of s.types || []) {
        const [rt, ia, bg] = t.queued_by_class;
        const total = t.stages ? t.stages.total : {}; // absent before p2c2rd 0.2 had stages
        const tr = row(tb, [t.name, rt, ia, bg, t.peers, t.free_slots,
                            fmt(total.p50_us / 1000, 2), fmt(total.p95_us / 1000, 2), t.verify]);
        tr.cells[6].className = tr.cells[7].className = "n";
    }
}

function refusedSum(a) {
    return Object.values(a.refused || {}).reduce((x, y) => x + y, 0);
}

function accountsTable(s) {
    const tb = $("accounts").tBodies[0];
    tb.textContent = "";
    const list = s.accounts || (s.account ? [s.account] : []);
    $("accounts-title").textContent = s.accounts ? "accounts (tasks in flight and queued)"
                                     : s.account ? "your account" : "accounts";
    for (const a of list)
        row(tb, [a.name, a.role, a.tier, a.conns, a.tasks, a.submitted, a.accepted, refusedSum(a)]);
    $("accounts-note").textContent = list.length ? ""
        : "No credentials file: no accounts, every renter sees everything (docs/ACCOUNTS.md).";
}

function refusalsTable(s, rate) {
    const c = s.counters;
    const rows = [];
    for (const t of s.types || []) {
        for (const [why, n] of Object.entries(t.rejected_by || {}))
            rows.push([`submit: ${t.name}`, why, n, rate ? rate((x) => (x.types.find((y) => y.name === t.name) || {rejected_by: {}}).rejected_by[why] || 0) : null]);
        for (const [why, n] of Object.entries(t.failed_by || {}))
            rows.push([`outcome: ${t.name}`, why, n, null]);
    }
    const fixed = [
        ["admission", "would miss its deadline (EDEADLINE)", "rejected_deadline"],
        ["admission", "no peer meets the requirements", "rejected_capability"],
        ["fair share", "the renter's share of the queue is full", "rejected_share_queue"],
        ["memory", "memory budget or a renter's share", "mem_refused"],
        ["connection", "token or peer identity refused", "auth_failures"],
        ["connection", "over a limit (output, connections, types)", "limit_cuts"],
        ["connection", "protocol errors", "protocol_errors"],
        ["gateway", "malformed WebSocket messages", "gateway_refused"],
    ];
    for (const [where, why, key] of fixed)
        rows.push([where, why, c[key], rate ? rate(key) : null]);
    const acc = s.accounts || (s.account ? [s.account] : []);
    const limits = {};
    for (const a of acc)
        for (const [k, n] of Object.entries(a.refused || {}))
            limits[k] = (limits[k] || 0) + n;
    for (const [k, n] of Object.entries(limits))
        if (n)
            rows.push([s.accounts ? "tier limits" : "your tier", k, n, null]);
    if (s.logins)
        rows.push(["logins", "failed logins (backoff after repeats)", s.logins.failures, null]);
    const tb = $("refusals").tBodies[0];
    tb.textContent = "";
    for (const [where, why, n, r] of rows) {
        const tr = row(tb, [where, why, n, r === null ? "-" : fmt(r, 1)]);
        tr.cells[3].className = "n";
        if (!n)
            tr.className = "dim";
    }
}

function cacheTable(s) {
    const c = s.counters, k = s.cache;
    const lookups = k.hits + k.misses;
    const items = [
        ["cache entries", fmt(k.entries)],
        ["cache bytes", `${bytes(k.bytes)} of ${bytes(k.max_bytes)}`],
        ["hits / misses", `${fmt(k.hits)} / ${fmt(k.misses)}`],
        ["hit ratio", lookups ? fmt((100 * k.hits) / lookups, 1) + " %" : "-"],
        ["coalesced with a task in flight", fmt(c.coalesced)],
        ["evicted / expired", `${fmt(k.evictions)} / ${fmt(k.expired)}`],
        ["verification runs", fmt(c.verify_runs)],
        ["verified / unverified", `${fmt(c.verified)} / ${fmt(c.unverified)}`],
        ["disagreements", fmt(c.disagreements)],
        ["outvoted results (liars)", fmt(c.liars)],
        ["quarantines", fmt(c.quarantines)],
        ["policies", (s.types || []).map((t) => `${t.name} ${t.verify}`).join(", ")],
    ];
    const tb = $("cachever").tBodies[0];
    tb.textContent = "";
    for (const [key, v] of items) {
        const tr = row(tb, [key, v]);
        tr.cells[1].className = "n";
    }
}

function update(s) {
    const now = performance.now();
    const dt = prev ? (now - prevAt) / 1000 : 0;
    // rate(key) or rate(fn of a document): per second since the last reading.
    const rate = prev && dt > 0 ? (k) => {
        const f = typeof k === "function" ? k : (x) => x.counters[k];
        return Math.max(0, f(s) - f(prev)) / dt;
    } : null;

    $("coord").textContent = `p2c2rd ${s.version} at ${s.address}`;
    dash.view = s.peers ? "operator" : s.account ? `renter: ${s.account.name}` : "renter";
    $("view").textContent = s.peers ? "operator view" : s.account ? `renter view: ${s.account.name}` : "renter view";
    $("updated").textContent = "updated " + new Date().toLocaleTimeString();

    tiles(s, rate);
    peersTable(s, dt);
    queuesTable(s);
    accountsTable(s);
    refusalsTable(s, rate);
    cacheTable(s);

    const label = new Date().toLocaleTimeString();
    if (rate) {
        push(charts.tput, label, [rate("completed"), rate("failed"), rate("rejected"), rate("cache_hits")]);
        const a = stageTotals(s), b = stageTotals(prev);
        push(charts.lat, label, STAGES.map((st) => {
            const n = a[st].count - b[st].count;
            return n > 0 ? (a[st].sum_us - b[st].sum_us) / n / 1000 : null;
        }));
    }
    prev = s;
    prevAt = now;
    dash.stats = s;
    dash.updates++;
}

// ---- the session -----------------------------------------------------------

function setConn(text, kind) {
    const c = $("conn");
    c.textContent = text;
    c.className = "pill " + (kind || "");
}

function main() {
    charts.tput = makeChart("chart-tput", ["completed", "failed", "refused", "cache hits"]);
    charts.lat = makeChart("chart-lat", STAGES);
    if (!window.Chart)
        for (const id of ["chart-tput", "chart-lat"])
            $(id).parentNode.replaceChildren(el("p", "plots need Debian's libjs-chart.js (served at /static/chart.js)", "dim"));

    const gw = new Gateway({
        clientId: "dashboard",
        onState: setConn,
        tokenBox: $("token-box"),
        tokenHint: "An operator token shows every peer and account; a renter token your own account and the fabric's totals.",
        // Each (re)connection subscribes: the coordinator pushes a reading
        // every interval, and holds the next one back while this tab is
        // not reading (a hidden or slow tab is never flooded).
        onReady: () => gw.send({msg_type: "stats_request", every_ms: interval}),
        onMessage: (m) => {
            if (m.msg_type === "stats" && !m.stats.rate_limited)
                update(m.stats);
        },
    });
    $("token-open").addEventListener("click", () => gw.askToken("use another token"));
    gw.start();
}

main();
