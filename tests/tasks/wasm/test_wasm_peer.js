/* test_wasm_peer.js - a browser peer, end to end: p2c2rd serves the
 * contribute page and the WebAssembly module (--http-root build/www); the
 * page's own code (web/contribute.js, the session; web/worker.js in a Web
 * Worker shim, node_worker.js, that loads its scripts and the module from
 * the gateway's /static/) registers as a peer over /ws; a WebSocket renter
 * submits every successful case of wasm_cases.js, their blobs (a map, a mesh)
 * uploaded first with blob_put.
 * The page takes its inputs as binary messages (binary_inputs); a second
 * session of the same code with base64 inputs runs one case of each type.
 * A long frame cancelled while it runs stops in the page (its worker is
 * replaced), judged by the page's counters.  The coordinator runs with
 * --verify '*=quorum2' and one native local peer, so every task runs on
 * both peers and is delivered only when their outputs are equal: each
 * result must come back verified and equal to the native driver's bytes.
 *
 * With --chromium PATH the peer is the real page instead, in headless
 * Chromium driven over the DevTools protocol: it loads /contribute, presses
 * start, and the same checks apply to the figures the page shows; a
 * screenshot of the page is saved as WORK_DIR/contribute.png.
 *
 *   node --experimental-websocket test_wasm_peer.js [--chromium PATH] P2C2RD NATIVE_DRIVER SOURCE_ROOT
 *        DATA_DIR WWW_DIR WORK_DIR
 * Exits 77 (skipped) when this p2c2rd has no gateway or node no WebSocket. */
"use strict";
const fs = require("fs");
const path = require("path");
const {spawn, execFileSync} = require("child_process");
const {cases} = require("./wasm_cases.js");
const {runNative} = require("./wasm_native.js");
const {NodeWebWorker} = require("./node_worker.js");
const {ContributeSession} = require("../../../web/contribute.js");

const TIMEOUT_MS = 300000;
/* p2c2rd's frame limit: over every case's input and output but one. */
const MAX_FRAME = 4 << 20;

/* A peer made of the page's own code, in this process. */
class NodePeer {
    constructor(opts) {
        this.opts = opts || {};
    }

    async start(http) {
        this.session = new ContributeSession({
            url: `ws://${http}/ws`, peerId: "node-tab", slots: 2, WebSocket, crypto: globalThis.crypto,
            makeWorker: () => new NodeWebWorker(`http://${http}/static/worker.js`), heartbeatMs: 200,
            ...this.opts,
        });
        await this.session.start();
    }

    async stats() {
        const s = this.session;
        return {...s.stats, types: s.types, busy: s.workers.filter((w) => w && w.busy).length,
                ready: s.workers.filter((w) => w && !w.busy).length, slots: s.slots};
    }

    async stop() {
        this.session.stop();
    }
}

/* The page in headless Chromium, over the DevTools protocol. */
class ChromiumPeer {
    constructor(bin, work) {
        this.bin = bin;
        this.work = work;
        this.seq = 0;
        this.pending = new Map();
    }

    async start(http) {
        const profile = path.join(this.work, "chromium-profile");
        this.proc = spawn(this.bin, ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-dev-shm-usage", "--remote-debugging-port=0", `--user-data-dir=${profile}`,
            "--window-size=1000,900", `http://${http}/contribute`], {stdio: ["ignore", "ignore", "pipe"]});
        let err = "";
        this.proc.stderr.on("data", (b) => { err += b.toString(); });
        let devtools = null;
        await until("Chromium's DevTools port", () => {
            const m = /DevTools listening on ws:\/\/([^/\s]+)\//.exec(err);
            devtools = m && m[1];
            if (this.proc.exitCode !== null)
                throw new Error("chromium exited: " + err.slice(-500));
            return devtools;
        }, 60000);
        let page = null;
        await until("the contribute page's target", () => page, 30000, async () => {
            const list = await (await fetch(`http://${devtools}/json/list`)).json();
            page = list.find((t) => t.type === "page" && t.url.endsWith("/contribute"));
        });
        this.ws = new WebSocket(page.webSocketDebuggerUrl);
        this.ws.onmessage = (ev) => {
            const m = JSON.parse(ev.data);
            const p = this.pending.get(m.id);
            if (p) {
                this.pending.delete(m.id);
                m.error ? p.reject(new Error(JSON.stringify(m.error))) : p.resolve(m.result);
            }
        };
        await new Promise((r, j) => { this.ws.onopen = r; this.ws.onerror = () => j(new Error("devtools socket")); });
        await until("the page to load", () => this.loaded, 30000, async () => {
            this.loaded = await this.eval("document.readyState === 'complete' && !!document.getElementById('start')");
        });
        await this.eval("document.getElementById('slots').value = '2'; document.getElementById('start').click(); true");
    }

    call(method, params) {
        const id = ++this.seq;
        this.ws.send(JSON.stringify({id, method, params: params || {}}));
        return new Promise((resolve, reject) => this.pending.set(id, {resolve, reject}));
    }

    async eval(expr) {
        const r = await this.call("Runtime.evaluate", {expression: expr, returnByValue: true});
        if (r.exceptionDetails)
            throw new Error("page: " + JSON.stringify(r.exceptionDetails).slice(0, 300));
        return r.result.value;
    }

    async stats() {
        return this.eval(`(() => { const s = window.p2c2rSession; if (!s) return {state: "none", perType: {}};
            return {...s.stats, types: s.types, busy: s.workers.filter((w) => w && w.busy).length,
                    ready: s.workers.filter((w) => w && !w.busy).length, slots: s.slots,
                    shown: document.getElementById("done").textContent,
                    shownState: document.getElementById("state").textContent}; })()`);
    }

    async screenshot(file) {
        const r = await this.call("Page.captureScreenshot", {format: "png"});
        fs.writeFileSync(file, Buffer.from(r.data, "base64"));
    }

    async stop() {
        if (this.ws) {
            await this.eval("window.p2c2rSession && window.p2c2rSession.stop(); true").catch(() => {});
            this.ws.close();
        }
        if (this.proc && this.proc.exitCode === null) {
            this.proc.kill("SIGTERM");
            await new Promise((r) => this.proc.on("exit", r));
        }
    }
}

function skip(why) {
    console.log("test_wasm_peer skipped: " + why);
    process.exit(77);
}

function sleep(ms) {
    return new Promise((r) => setTimeout(r, ms));
}

/* Waits until pred() holds, running poll() (async) before each look. */
async function until(what, pred, ms, poll) {
    const end = Date.now() + ms;
    for (;;) {
        if (poll)
            await poll().catch(() => {});
        if (pred())
            return;
        if (Date.now() > end)
            throw new Error("timed out waiting for " + what);
        await sleep(poll ? 100 : 20);
    }
}

/* The renter's outcome of task id (other messages in inbox are dropped). */
async function outcomeOf(inbox, id) {
    let m = null;
    await until(`the outcome of ${id}`, () => m, TIMEOUT_MS, async () => {
        while (inbox.length && !m) {
            const x = inbox.shift();
            if (x.task_id === id)
                m = x;
        }
    });
    return m;
}

async function main() {
    const args = process.argv.slice(2);
    let chromium = null;
    if (args[0] === "--chromium") {
        chromium = args[1];
        args.splice(0, 2);
    }
    const [p2c2rd, driver, root, dataDir, www, work] = args;
    if (!work) {
        console.error("usage: node --experimental-websocket test_wasm_peer.js P2C2RD NATIVE_DRIVER SOURCE_ROOT " +
                      "DATA_DIR WWW_DIR WORK_DIR");
        process.exit(2);
    }
    if (typeof WebSocket === "undefined")
        skip("this node has no WebSocket (node 20.10+ with --experimental-websocket, or 22+)");
    const help = execFileSync(p2c2rd, ["--help"]).toString();
    if (!help.includes("--http-root"))
        skip("this p2c2rd has no gateway (--http, --http-root: docs/GATEWAY.md)");

    fs.rmSync(work, {recursive: true, force: true});
    fs.mkdirSync(work, {recursive: true});
    const ready = path.join(work, "ready");
    const logPath = path.join(work, "p2c2rd.log");
    const log = fs.openSync(logPath, "w");
    const d = spawn(p2c2rd, ["--listen", "127.0.0.1:0", "--http", "127.0.0.1:0", "--http-root", www,
        "--ready-file", ready, "--local-peers", "1", "--verify", "*=quorum2", "--log-level", "info",
        "--max-frame", String(MAX_FRAME),
        "--state", path.join(work, "state")], {stdio: ["ignore", log, log]});
    let peer = null, renter = null;
    let failed = true;
    try {
        await until("p2c2rd's ready file", () => fs.existsSync(ready) && fs.readFileSync(ready, "utf8").trim(), 30000);
        let http = null;
        await until("p2c2rd's HTTP port", () => {
            const m = /event=http_listening addr=(\S+)/.exec(fs.readFileSync(logPath, "utf8"));
            http = m && m[1];
            return http;
        }, 30000);

        /* The page is served where the brief says. */
        const page = await fetch(`http://${http}/contribute`);
        const html = await page.text();
        if (page.status !== 200 || !html.includes("static/contribute.js"))
            throw new Error(`/contribute: HTTP ${page.status}, not the contribute page`);

        peer = chromium ? new ChromiumPeer(chromium, work) : new NodePeer();
        await peer.start(http);
        let st = null;
        await until("the browser peer to register", () => st && (st.state === "running" || st.state === "error"),
                    60000, async () => { st = await peer.stats(); });
        if (st.state !== "running")
            throw new Error("the browser peer did not register: " + st.message);
        console.log(`browser peer (${chromium ? "headless Chromium" : "node"}) registered as peer ${st.peerNum}, ` +
                    "types " + st.types.map((t) => t.name).join(","));

        renter = new WebSocket(`ws://${http}/ws`);
        const inbox = [];
        renter.onmessage = (ev) => inbox.push(JSON.parse(ev.data));
        await until("the challenge", () => inbox.length, 10000);
        renter.send(JSON.stringify({msg_type: "gamer_register", client_id: "test_wasm_peer"}));
        await until("registration_ack", () => inbox.length > 1, 10000);
        if (inbox[1].status !== "ok")
            throw new Error("renter refused: " + JSON.stringify(inbox[1]));
        inbox.length = 0;

        const todo = [];
        for (const c of cases(root, dataDir)) {
            const n = runNative(driver, work, c);
            if (!n.ok)
                continue; /* error cases: test_wasm_exec compares those */
            todo.push({c, native: n.output});
        }
        /* The cases' blobs (a map, a mesh) go up first with blob_put; each
         * blob_ack's hash is the blob's SHA-256, named in the task's blobs. */
        const blobs = [...new Set(todo.flatMap((t) => t.c.blobs))];
        blobs.forEach((b, k) => renter.send(JSON.stringify({msg_type: "blob_put", request_id: "blob-" + k,
                                                            data: b.toString("base64")})));
        const acks = new Map();
        await until("every blob_ack", () => {
            while (inbox.length) {
                const m = inbox.shift();
                acks.set(m.request_id, m);
            }
            return acks.size === blobs.length;
        }, 30000);
        blobs.forEach((b, k) => {
            const m = acks.get("blob-" + k);
            const want = require("crypto").createHash("sha256").update(b).digest("hex");
            if (m.msg_type !== "blob_ack" || m.hash !== want)
                throw new Error("blob_put: " + JSON.stringify(m));
        });
        const hashOf = (b) => acks.get("blob-" + blobs.indexOf(b)).hash;
        const submit = (t, id) => renter.send(JSON.stringify({
            msg_type: "task_submit", task_id: id, task_type: t.c.type, data: t.c.input.toString("base64"),
            params: t.c.params, no_cache: true, ...(t.c.blobs.length ? {blobs: t.c.blobs.map(hashOf)} : {})}));
        todo.forEach((t, i) => submit(t, i));
        const outcome = new Map();
        const t0 = Date.now();
        await until("every outcome", () => {
            while (inbox.length) {
                const m = inbox.shift();
                if (m.task_id !== undefined)
                    outcome.set(m.task_id, m);
            }
            return outcome.size === todo.length;
        }, TIMEOUT_MS);

        let bad = 0;
        const perType = {};
        todo.forEach((t, i) => {
            const m = outcome.get(i);
            const pt = (perType[t.c.type] = perType[t.c.type] || {cases: 0, ok: 0});
            pt.cases++;
            const got = m.msg_type === "result_delivery" && m.success ? Buffer.from(m.result || "", "base64") : null;
            if (got && m.verified === true && Buffer.compare(got, t.native) === 0) {
                pt.ok++;
                return;
            }
            bad++;
            console.log(`FAIL ${t.c.name}: ${JSON.stringify(m).slice(0, 300)}`);
        });
        /* The figures of the page catch up with its last result. */
        /* The figures of the page catch up with its last result; the page
         * sends a heartbeat every 5 s. */
        await until("the page's figures and a heartbeat", () => st.done >= todo.length && st.heartbeats >= 1 &&
                    (!chromium || st.shown === String(st.done)), 20000, async () => { st = await peer.stats(); });
        for (const type of Object.keys(perType)) {
            const pt = perType[type];
            const s = st.perType[type] || {done: 0, failed: 0};
            console.log(`type ${type}: ${pt.ok}/${pt.cases} verified (quorum2: browser + native) and equal to ` +
                        `the native driver; the browser peer ran ${s.done}, failed ${s.failed}`);
            if (s.done < pt.cases) {
                console.log(`FAIL the browser peer ran ${s.done} ${type} tasks, expected ${pt.cases}`);
                bad++;
            }
        }
        if (st.failed !== 0 || st.heartbeats < 1) {
            console.log(`FAIL browser peer: ${st.failed} failures, ${st.heartbeats} heartbeats`);
            bad++;
        }
        /* The page registers with binary_inputs: every input came as a
         * binary WebSocket message, none as base64. */
        if (!(st.binaryInputs >= todo.length)) {
            console.log(`FAIL ${st.binaryInputs} inputs came as binary messages, expected ${todo.length}`);
            bad++;
        }
        /* ...and every output went back as a binary message (result_frame). */
        if (!(st.binaryResults >= st.done && st.done >= todo.length)) {
            console.log(`FAIL ${st.binaryResults} outputs went back as binary messages, of ${st.done} done`);
            bad++;
        }
        if (chromium) {
            if (st.shown !== String(st.done) || !st.shownState.startsWith("running")) {
                console.log(`FAIL the page shows ${st.shown} tasks done, state '${st.shownState}'`);
                bad++;
            }
            await peer.screenshot(path.join(work, "contribute.png"));
            console.log("screenshot: " + path.join(work, "contribute.png"));
        }
        /* An output over the coordinator's frame limit: the page answers
         * ETOOBIG, as a native peer does, and keeps its connection (sending
         * the output would have cost it the connection). */
        renter.send(JSON.stringify({msg_type: "task_submit", task_id: "big", task_type: "upscale",
            data: fs.readFileSync(path.join(root, "examples/images/demo.png")).toString("base64"),
            params: "scale=16\nformat=raw\n", no_cache: true}));
        const big = await outcomeOf(inbox, "big");
        st = await peer.stats();
        /* The coordinator may try the page more than once (the native peer
         * fails it too); how many attempts it takes is logged, not judged
         * here (2 in most runs; 9 and 16 have been seen on a loaded machine). */
        if (big.success !== false || big.error_code !== "ETOOBIG" || st.connects !== 1 || st.state !== "running" ||
            st.failed < 1) {
            console.log(`FAIL an output over --max-frame: ${JSON.stringify(big).slice(0, 300)}; browser peer ` +
                        `connected ${st.connects} time(s), ${st.state}, ${st.failed} failure(s)`);
            bad++;
        } else {
            console.log(`an output over --max-frame: ETOOBIG from the page ("${st.log[st.log.length - 1]}"), ` +
                        `still connected; the page failed ${st.failed} task(s); outcome ${JSON.stringify(big).slice(0, 300)}`);
        }

        /* The tab does not freeze: while a long task (a whole demo frame,
         * seconds of work) runs in a worker, the page's own thread still
         * answers (each look at its figures is a call into it) and shows
         * the task running. */
        const frame = Buffer.from(fs.readFileSync(path.join(root, "examples/scenes/demo.json")));
        renter.send(JSON.stringify({msg_type: "task_submit", task_id: "long", task_type: "raytrace",
            data: frame.toString("base64"), params: "spp=4\n", no_cache: true}));
        let seenBusy = 0, answered = false;
        await until("the long task", () => answered, TIMEOUT_MS, async () => {
            st = await peer.stats();
            if (st.busy > 0 && (st.perType.raytrace || {done: 0}).done === todo.filter((t) => t.c.type ===
                "raytrace").length)
                seenBusy++;
            while (inbox.length)
                answered = answered || inbox.shift().task_id === "long";
        });
        if (!seenBusy) {
            console.log("FAIL the page never answered while its worker ran the long task");
            bad++;
        } else {
            console.log(`the page answered ${seenBusy} time(s) while its worker ran a whole demo frame`);
        }
        /* A cancelled task stops in the page: a long frame (minutes of work
         * in the module) is cancelled while it runs; the page terminates
         * that worker and starts a fresh one, judged by its counters: one
         * cancel stop, no raytrace finished, every slot has an idle worker
         * again, and the fresh worker then runs a task correctly. */
        {
            st = await peer.stats();
            const rtDone = (s) => (s.perType.raytrace || {done: 0}).done;
            const before = {cancelled: st.cancelled, stops: st.cancelStops, rt: rtDone(st)};
            renter.send(JSON.stringify({msg_type: "task_submit", task_id: "cancel-me", task_type: "raytrace",
                data: frame.toString("base64"), params: "spp=512\n", no_cache: true}));
            await until("the page to run the long task", () => st.busy > 0, TIMEOUT_MS,
                        async () => { st = await peer.stats(); });
            renter.send(JSON.stringify({msg_type: "task_cancel", task_id: "cancel-me"}));
            let outcome = null;
            await until("the cancelled task's worker to be replaced", () => outcome &&
                        st.cancelStops === before.stops + 1 && st.busy === 0 && st.ready === st.slots,
                        TIMEOUT_MS, async () => {
                st = await peer.stats();
                while (inbox.length) {
                    const m = inbox.shift();
                    if (m.task_id === "cancel-me")
                        outcome = m;
                }
            });
            if (outcome.success !== false || outcome.error_code !== "ECANCELLED" ||
                st.cancelled !== before.cancelled + 1 || rtDone(st) !== before.rt) {
                console.log(`FAIL cancel: ${JSON.stringify(outcome).slice(0, 200)}; page cancelled ` +
                            `${before.cancelled} -> ${st.cancelled}, raytrace done ${before.rt} -> ${rtDone(st)}`);
                bad++;
            }
            const rt = todo.find((t) => t.c.type === "raytrace");
            renter.send(JSON.stringify({msg_type: "task_submit", task_id: "after-cancel", task_type: "raytrace",
                data: rt.c.input.toString("base64"), params: rt.c.params, no_cache: true}));
            const after = await outcomeOf(inbox, "after-cancel");
            st = await peer.stats();
            const out = after.success ? Buffer.from(after.result || "", "base64") : null;
            if (!out || after.verified !== true || Buffer.compare(out, rt.native) !== 0 ||
                rtDone(st) !== before.rt + 1) {
                console.log(`FAIL after the cancel: ${JSON.stringify(after).slice(0, 200)}, raytrace done ` +
                            `${rtDone(st)}`);
                bad++;
            } else {
                console.log(`a cancelled long frame stopped in the page (${st.cancelStops} worker stop(s), ` +
                            `${st.ready}/${st.slots} workers idle), then a fresh worker ran ${rt.c.name}`);
            }
        }
        if (!chromium) {
            /* The same page code with binaryInputs false (base64 inputs), one
             * case of each type, beside the binary one. */
            const b64peer = new NodePeer({peerId: "node-tab-b64", binaryInputs: false});
            await b64peer.start(http);
            let sb = null;
            await until("the base64 peer to register", () => sb && sb.state === "running", 60000,
                        async () => { sb = await b64peer.stats(); });
            await peer.stop();
            const some = todo.filter((t, i) => todo.findIndex((u) => u.c.type === t.c.type) === i);
            some.forEach((t, i) => submit(t, "b64-" + i));
            const got = new Map();
            await until("the base64 peer's outcomes", () => {
                while (inbox.length) {
                    const m = inbox.shift();
                    if (String(m.task_id).startsWith("b64-"))
                        got.set(m.task_id, m);
                }
                return got.size === some.length;
            }, TIMEOUT_MS);
            some.forEach((t, i) => {
                const m = got.get("b64-" + i);
                const out = m.success ? Buffer.from(m.result || "", "base64") : null;
                if (!out || m.verified !== true || Buffer.compare(out, t.native) !== 0) {
                    console.log(`FAIL base64 inputs, ${t.c.name}: ${JSON.stringify(m).slice(0, 300)}`);
                    bad++;
                }
            });
            sb = await b64peer.stats();
            if (sb.done < some.length || sb.binaryInputs !== 0 || sb.failed !== 0) {
                console.log(`FAIL the base64 peer ran ${sb.done}/${some.length}, ${sb.binaryInputs} binary inputs, ` +
                            `${sb.failed} failures`);
                bad++;
            } else {
                console.log(`base64 inputs (binaryInputs false): ${some.length} types verified, equal to native`);
            }
            peer = b64peer;
        }
        console.log(`${todo.length} tasks in ${Date.now() - t0} ms; browser peer: ${st.done} done, ` +
                    `${st.heartbeats} heartbeats`);
        console.log(bad ? `FAIL ${bad} problem(s)` : "PASS");
        failed = bad > 0;
    } finally {
        if (peer)
            await peer.stop().catch(() => {});
        if (renter)
            renter.close();
        d.kill("SIGTERM");
        await new Promise((r) => (d.exitCode !== null ? r() : d.on("exit", r)));
        if (failed)
            console.log("---- p2c2rd log (tail)\n" + fs.readFileSync(logPath, "utf8").split("\n").slice(-40).join("\n"));
    }
    process.exit(failed ? 1 : 0);
}

main().catch((e) => {
    console.error(e);
    process.exit(1);
});
