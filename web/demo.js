// demo.js - the renter demo at /demo: what a game engine does with the
// gateway (docs/GATEWAY.md section 4).  A MovingAI map (/static/NAME, the
// maps of examples/maps) is drawn on a canvas; a click picks the start, the
// next the goal, and the page submits a `pathfind` task (docs/tasks/
// pathfind.md: the map, then "queries 1" and "SX SY GX GY") with
// task_submit, then draws the path of the result_delivery and names the
// peer that computed it (result_delivery.peer; its name and whether it is a
// native or a browser peer come from STATS when this token may see peers).
//
// window.p2c2rDemo holds the map geometry and every answer, for the browser
// test (tests/browser/test_pages.py).

import {Gateway, b64encode, b64decode} from "./gw.js";

const $ = (id) => document.getElementById(id);
const COLORS = {free: "#f4f1e8", blocked: "#39404f", path: "#e0457b", start: "#1e8e3e", goal: "#3367d6"};
// Passable map characters (docs/tasks/pathfind.md, "Map characters").
const PASSABLE = new Set([".", "G", "S"]);

const demo = {map: null, cell: 0, results: [], pending: 0};
window.p2c2rDemo = demo;

let gw = null, start = null, goal = null, nextId = 1, path = null;
const peers = new Map(); // id -> {name, transport}, from STATS when visible

function parseMap(text) {
    const lines = text.split(/\r?\n/);
    let h = 0, w = 0, i = 0;
    for (; i < lines.length && lines[i].trim() !== "map"; i++) {
        const [k, v] = lines[i].trim().split(/\s+/);
        if (k === "height")
            h = Number(v);
        else if (k === "width")
            w = Number(v);
    }
    const rows = lines.slice(i + 1, i + 1 + h);
    if (!w || !h || rows.length !== h || rows.some((r) => r.length !== w))
        throw new Error("not a MovingAI octile map");
    return {w, h, rows, text: lines.slice(0, i + 1 + h).join("\n") + "\n"};
}

function passable(x, y) {
    return PASSABLE.has(demo.map.rows[y][x]);
}

function draw() {
    const m = demo.map, cv = $("grid"), cx = cv.getContext("2d"), c = demo.cell;
    cx.clearRect(0, 0, cv.width, cv.height);
    for (let y = 0; y < m.h; y++)
        for (let x = 0; x < m.w; x++) {
            cx.fillStyle = passable(x, y) ? COLORS.free : COLORS.blocked;
            cx.fillRect(x * c, y * c, c, c);
        }
    if (path) {
        cx.fillStyle = COLORS.path;
        for (const [x, y] of path)
            cx.fillRect(x * c, y * c, c, c);
        cx.strokeStyle = "#7a1236";
        cx.lineWidth = Math.max(1, c / 6);
        cx.beginPath();
        path.forEach(([x, y], k) => (k ? cx.lineTo : cx.moveTo).call(cx, x * c + c / 2, y * c + c / 2));
        cx.stroke();
    }
    for (const [p, color] of [[start, COLORS.start], [goal, COLORS.goal]])
        if (p) {
            cx.fillStyle = color;
            cx.fillRect(p[0] * c, p[1] * c, c, c);
        }
}

async function loadMap(name) {
    const r = await fetch("/static/" + name);
    if (!r.ok)
        throw new Error(`/static/${name}: ${r.status}`);
    demo.map = parseMap(await r.text());
    demo.name = name;
    const cv = $("grid");
    demo.cell = Math.max(4, Math.floor(600 / Math.max(demo.map.w, demo.map.h)));
    cv.width = demo.map.w * demo.cell;
    cv.height = demo.map.h * demo.cell;
    start = goal = path = null;
    draw();
}

function peerLabel(id) {
    if (!id)
        return "none (answered from the cache)";
    const p = peers.get(id);
    return p ? `peer #${id} "${p.name}" (${p.transport === "ws" ? "browser" : "native"})` : `peer #${id}`;
}

function onClick(ev) {
    if (!demo.map)
        return;
    const cv = $("grid"), r = cv.getBoundingClientRect();
    const x = Math.floor(((ev.clientX - r.left) * cv.width) / r.width / demo.cell);
    const y = Math.floor(((ev.clientY - r.top) * cv.height) / r.height / demo.cell);
    if (x < 0 || y < 0 || x >= demo.map.w || y >= demo.map.h)
        return;
    if (!passable(x, y)) {
        $("hint").textContent = `(${x},${y}) is blocked: pick a free cell.`;
        return;
    }
    if (!start || goal) {
        start = [x, y];
        goal = path = null;
        $("hint").textContent = `start (${x},${y}): now click the goal.`;
        draw();
        return;
    }
    goal = [x, y];
    draw();
    submit();
}

function submit() {
    const q = `queries 1\n${start[0]} ${start[1]} ${goal[0]} ${goal[1]}\n`;
    const data = b64encode(new TextEncoder().encode(demo.map.text + q));
    const id = nextId++;
    const sent = gw.send({msg_type: "task_submit", task_id: id, task_type: "pathfind", data,
                          params: {algo: $("algo").value}, priority: "interactive", deadline_ms: 5000});
    if (!sent) {
        $("hint").textContent = "not connected to the coordinator yet: click the goal again in a moment.";
        goal = null;
        return;
    }
    demo.pending++;
    demo.inflight = {id, from: start.slice(), to: goal.slice(), at: performance.now()};
    $("hint").textContent = `asking the fabric for (${start}) -> (${goal}) ...`;
}

function onResult(m) {
    const q = demo.inflight && demo.inflight.id === m.task_id ? demo.inflight : null;
    if (!q)
        return; // an answer to a query of an earlier map
    demo.pending--;
    demo.inflight = null;
    const out = {id: m.task_id, from: q.from, to: q.to, peer: m.peer || 0, cached: !!m.cached,
                 exec_ms: m.processing_time_ms, network_ms: m.network_latency_ms,
                 round_trip_ms: performance.now() - q.at, cost: null, path: null, error: null};
    if (m.msg_type !== "result_delivery" || !m.success) {
        out.error = m.error_code ? `${m.error_code}: ${m.error}` : m.error || m.reason || m.msg_type;
    } else {
        const line = new TextDecoder().decode(b64decode(m.result)).split("\n")[0].trim();
        if (line === "none") {
            out.error = "no path";
        } else {
            const [cost, ...cells] = line.split(" ");
            out.cost = cost;
            out.path = cells.map((c) => c.split(",").map(Number));
        }
    }
    demo.results.push(out);
    path = out.path;
    draw();
    showAnswer(out);
    addHistory(out);
    gw.send({msg_type: "stats_request"}); // names the peer, when this token may see peers
}

function showAnswer(out) {
    const a = $("answer");
    a.className = "";
    a.textContent = out.error
        ? `(${out.from}) -> (${out.to}): ${out.error}`
        : `cost ${out.cost}, ${out.path.length} cells, computed by ${peerLabel(out.peer)}` +
          `${out.cached ? " (cached)" : ""} in ${out.exec_ms.toFixed(3)} ms; ` +
          `round trip ${out.round_trip_ms.toFixed(1)} ms`;
    a.dataset.cost = out.cost || "";
    a.dataset.peer = out.peer;
    $("hint").textContent = "Click a new start, then a goal.";
}

function addHistory(out) {
    const tr = document.createElement("tr");
    const cells = [out.id, `${out.from}`, `${out.to}`, out.cost || out.error, out.path ? out.path.length : "-",
                   peerLabel(out.peer), out.exec_ms === undefined ? "-" : out.exec_ms.toFixed(3),
                   out.network_ms === undefined ? "-" : out.network_ms.toFixed(3), out.cached ? "yes" : "no"];
    for (const c of cells) {
        const td = document.createElement("td");
        td.textContent = c;
        tr.appendChild(td);
    }
    tr.dataset.peer = out.peer;
    tr.cells[5].className = "peer";
    for (const i of [3, 4, 6, 7])
        tr.cells[i].className = "n";
    const tb = $("history").tBodies[0];
    tb.insertBefore(tr, tb.firstChild);
}

function onStats(s) {
    if (!s.peers)
        return;
    for (const p of s.peers)
        peers.set(p.id, {name: p.name, transport: p.transport});
    for (const tr of $("history").tBodies[0].rows)
        tr.cells[5].textContent = peerLabel(Number(tr.dataset.peer));
    const last = demo.results[demo.results.length - 1];
    if (last && !last.error)
        showAnswer(last);
}

async function main() {
    gw = new Gateway({
        clientId: "demo",
        onState: (text, kind) => {
            $("conn").textContent = text;
            $("conn").className = "pill " + (kind || "");
        },
        tokenBox: $("token-box"),
        tokenHint: "A renter token (or an operator's, which also names the peers).",
        onReady: () => {
            demo.ready = true;
        },
        onMessage: (m) => {
            if (m.msg_type === "stats")
                onStats(m.stats);
            else if (m.msg_type === "result_delivery" || m.msg_type === "task_timeout" || m.msg_type === "task_rejected")
                onResult(m);
        },
    });
    $("grid").addEventListener("click", onClick);
    $("map").addEventListener("change", () => loadMap($("map").value));
    gw.start();
    await loadMap($("map").value);
    demo.loaded = true;
}

main().catch((e) => {
    $("hint").textContent = "cannot load the map: " + e.message;
});
