/* contribute.js - the contribute page: this tab becomes a p2c2r peer.
 *
 * ContributeSession speaks the peer side of the gateway (docs/GATEWAY.md
 * section 5) over one WebSocket: it answers the challenge with an Ed25519
 * signature (WebCrypto; the key pair is kept in IndexedDB so the tab keeps
 * its reputation), registers the types the WebAssembly module runs, hands
 * each task_assign to a free Web Worker (worker.js, one task at a time per
 * worker, one worker per slot; inputs come as binary WebSocket messages,
 * binary_inputs, unless opts.binaryInputs is false: then base64), answers
 * with task_result, sends a heartbeat
 * every few seconds, keeps the blobs the coordinator sends (bounded), and
 * reconnects after a dropped connection.  A task_cancel of a running task
 * terminates its worker (the executors have no cancel flag in WebAssembly)
 * and starts a fresh one in its slot.  Everything it does is counted in
 * session.stats, which the page shows.
 *
 * The session takes its environment as options (WebSocket, a worker
 * factory, crypto, a key store), so the same code runs in the page and in
 * the node test against a real coordinator (tests/tasks/wasm/). */
(function (root) {
    "use strict";

    const HEARTBEAT_MS = 5000;
    const BLOB_BYTES_MAX = 256 << 20;
    const LOG_LINES = 50;

    function b64encode(bytes) {
        let s = "";
        for (let i = 0; i < bytes.length; i += 0x8000)
            s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
        return btoa(s);
    }

    function b64decode(s) {
        const bin = atob(s);
        const b = new Uint8Array(bin.length);
        for (let i = 0; i < bin.length; i++)
            b[i] = bin.charCodeAt(i);
        return b;
    }

    /* The 90 bytes a peer signs: docs/GATEWAY.md 5.1. */
    async function challengeMessage(subtle, nonce, connId) {
        const msg = new Uint8Array(90);
        msg.set(new TextEncoder().encode("p2c2r-peer-auth-v1"), 0);
        msg.set(nonce, 18);
        new DataView(msg.buffer).setBigUint64(50, BigInt(connId), true);
        msg.set(new Uint8Array(await subtle.digest("SHA-256", new Uint8Array(0))), 58);
        return msg;
    }

    class ContributeSession {
        /* opts: url (ws://host/ws), token, peerId, slots, WebSocket,
         * makeWorker() -> a Worker, crypto (WebCrypto), keyStore {load(),
         * save(keyPair)} (optional), onUpdate(session), heartbeatMs,
         * capabilities, binaryInputs (default true: register with
         * binary_inputs, task inputs as binary messages, and send each
         * output as a binary message after its task_result (result_frame);
         * false: base64 both ways). */
        constructor(opts) {
            this.opts = opts;
            this.slots = Math.max(1, Math.min(64, opts.slots | 0 || 1));
            this.stats = {
                state: "stopped", message: "", peerNum: null, connects: 0, started: null,
                done: 0, failed: 0, cancelled: 0, ms: 0, bytesIn: 0, bytesOut: 0, heartbeats: 0, binaryInputs: 0,
                binaryResults: 0, /* outputs sent as binary messages (result_frame) */
                cancelStops: 0, /* workers terminated to stop a cancelled task */
                perType: {}, log: [],
            };
            this.workers = [];
            this.types = null;
            this.queue = [];
            this.running = new Map(); /* task_id -> {task, worker, gen} */
            this.blobs = new Map();   /* hex -> Uint8Array, oldest first */
            this.blobBytes = 0;
            this.gen = 0;             /* connection generation: results of older ones are dropped */
            this.binaryInputs = opts.binaryInputs !== false;
            this.awaiting = null;     /* a task_assign whose input is the next (binary) message */
            this.ws = null;
            this.stopped = true;
            this.fatal = false;
            this.backoff = 1000;
        }

        update() {
            if (this.opts.onUpdate)
                this.opts.onUpdate(this);
        }

        note(line) {
            const log = this.stats.log;
            log.push(new Date().toISOString().slice(11, 19) + " " + line);
            if (log.length > LOG_LINES)
                log.shift();
            this.update();
        }

        setState(state, message) {
            this.stats.state = state;
            this.stats.message = message || "";
            this.update();
        }

        async start() {
            if (!this.stopped)
                return;
            this.stopped = false;
            this.fatal = false;
            this.stats.started = Date.now();
            this.setState("loading", "loading the executors (WebAssembly)");
            try {
                this.keyPair = await this.loadKey();
                await this.startWorkers();
            } catch (e) {
                this.fail(String(e && e.message || e));
                return;
            }
            if (!this.stopped)
                this.connect();
        }

        stop() {
            this.stopped = true;
            clearTimeout(this.retryTimer);
            clearInterval(this.heartbeatTimer);
            if (this.ws)
                this.ws.close(1000);
            this.ws = null;
            for (const w of this.workers)
                w.terminate();
            this.workers = [];
            this.queue = [];
            this.running.clear();
            this.setState("stopped", "");
        }

        fail(message) {
            this.fatal = true;
            this.note("error: " + message);
            this.stop();
            this.setState("error", message);
        }

        async loadKey() {
            const subtle = this.opts.crypto.subtle;
            const store = this.opts.keyStore;
            let kp = store ? await store.load().catch(() => null) : null;
            if (!kp) {
                try {
                    kp = await subtle.generateKey({name: "Ed25519"}, false, ["sign", "verify"]);
                } catch (e) {
                    throw new Error("this browser has no Ed25519 in WebCrypto (Chromium 113+, Firefox 129+, " +
                                    "Safari 17+ have it): " + (e && e.message || e));
                }
                if (store)
                    await store.save(kp).catch(() => {});
            }
            this.publicKey = new Uint8Array(await subtle.exportKey("raw", kp.publicKey));
            return kp;
        }

        startWorkers() {
            const ready = [];
            for (let i = 0; i < this.slots; i++)
                ready.push(this.spawnWorker(i));
            return Promise.all(ready);
        }

        /* A worker; resolves when its module loaded (rejects if it did not). */
        spawnWorker(i) {
            return new Promise((resolve, reject) => {
                const w = this.opts.makeWorker();
                w.busy = null;
                w.onmessage = (ev) => {
                    const m = ev.data;
                    if (w.retired)
                        return; /* terminated for a cancel: what it still says is moot */
                    if (m.kind === "ready") {
                        if (this.stopped && this.types) {
                            w.terminate(); /* a replacement that finished loading after stop() */
                            resolve();
                            return;
                        }
                        this.types = this.types || m.types;
                        this.workers[i] = w;
                        resolve();
                        this.pump();
                    } else if (m.kind === "failed") {
                        w.terminate();
                        if (!this.workers[i]) {
                            reject(new Error("the executors did not load: " + m.error));
                        } else if (!this.stopped) {
                            /* It trapped: replace it. */
                            this.note("worker " + i + " replaced: " + m.error);
                            this.workers[i] = null;
                            this.spawnWorker(i).catch((e) => this.fail(String(e.message)));
                        }
                    } else if (m.kind === "done") {
                        w.busy = null;
                        this.finished(m);
                        this.pump();
                    }
                };
                w.onerror = (ev) => reject(new Error("worker: " + (ev.message || "failed to start")));
            });
        }

        connect() {
            const gen = ++this.gen;
            this.setState("connecting", this.opts.url);
            const ws = new this.opts.WebSocket(this.opts.url);
            ws.binaryType = "arraybuffer";
            this.ws = ws;
            ws.onmessage = (ev) => {
                if (gen !== this.gen)
                    return;
                if (typeof ev.data !== "string") {
                    const t = this.awaiting;
                    this.awaiting = null;
                    if (!t) {
                        this.note("unexpected binary message ignored");
                        return;
                    }
                    t.bytes = new Uint8Array(ev.data);
                    this.stats.binaryInputs++;
                    this.queue.push(t);
                    this.pump();
                    return;
                }
                let m;
                try {
                    m = JSON.parse(ev.data);
                } catch (e) {
                    this.note("unparsable message from the coordinator ignored");
                    return;
                }
                this.handle(m).catch((e) => this.note("error: " + (e && e.message || e)));
            };
            ws.onclose = (ev) => {
                if (gen !== this.gen)
                    return;
                this.gen++;
                clearInterval(this.heartbeatTimer);
                /* The coordinator hands this connection's tasks to other peers. */
                this.queue = [];
                this.awaiting = null;
                this.running.clear();
                this.stats.peerNum = null;
                if (this.stopped)
                    return;
                if (this.fatal) {
                    this.stop();
                    this.setState("error", this.stats.message);
                    return;
                }
                const wait = this.backoff;
                this.backoff = Math.min(this.backoff * 2, 30000);
                this.note(`connection closed (${ev.code || "no status"}${ev.reason ? ": " + ev.reason : ""}); ` +
                          `retrying in ${wait / 1000} s`);
                this.setState("reconnecting", `retrying in ${wait / 1000} s`);
                this.retryTimer = setTimeout(() => { if (!this.stopped) this.connect(); }, wait);
            };
        }

        send(obj) {
            if (this.ws && this.ws.readyState === 1)
                this.ws.send(JSON.stringify(obj));
        }

        async handle(m) {
            switch (m.msg_type) {
            case "challenge": {
                this.maxMessage = m.max_message || 0;
                const subtle = this.opts.crypto.subtle;
                const msg = await challengeMessage(subtle, b64decode(m.nonce), m.conn_id);
                const sig = new Uint8Array(await subtle.sign({name: "Ed25519"}, this.keyPair.privateKey, msg));
                const reg = {
                    msg_type: "peer_register", peer_id: this.opts.peerId || "browser",
                    capabilities: this.opts.capabilities || {cpu_cores: this.slots, gpu: false},
                    task_types: this.types.map((t) => ({name: t.name, version: t.version, deterministic: true})),
                    slots: this.slots, key: b64encode(this.publicKey), signature: b64encode(sig),
                };
                if (this.opts.token)
                    reg.token = this.opts.token;
                if (this.binaryInputs)
                    reg.binary_inputs = true;
                this.send(reg);
                break;
            }
            case "peer_register_response":
                if (!m.success) {
                    this.fatal = true;
                    this.setState("error", `registration refused: ${m.error}: ${m.message || ""}`);
                    break;
                }
                this.stats.peerNum = m.peer_num;
                this.stats.connects++;
                this.backoff = 1000;
                this.note(`registered as peer ${m.peer_num} with ${this.slots} slot(s)`);
                this.setState("running", "");
                clearInterval(this.heartbeatTimer);
                this.heartbeatTimer = setInterval(() => this.heartbeat(), this.opts.heartbeatMs || HEARTBEAT_MS);
                break;
            case "task_assign":
                if (m.data_frame) {
                    this.awaiting = m; /* its input is the next message (binary_inputs) */
                    break;
                }
                this.queue.push(m);
                this.pump();
                break;
            case "task_cancel": {
                const id = String(m.task_id);
                const before = this.queue.length;
                this.queue = this.queue.filter((t) => String(t.task_id) !== id);
                const r = this.running.get(id);
                if (r) {
                    r.cancelled = true; /* its result will not be sent */
                    this.stopWorker(id);
                }
                if (r || this.queue.length !== before) {
                    this.stats.cancelled++;
                    this.update();
                }
                break;
            }
            case "blob": {
                const data = b64decode(m.data || "");
                if (!this.blobs.has(m.hash)) {
                    this.blobs.set(m.hash, data);
                    this.blobBytes += data.length;
                }
                while (this.blobBytes > BLOB_BYTES_MAX && this.blobs.size > 1) {
                    const [k, v] = this.blobs.entries().next().value;
                    this.blobs.delete(k);
                    this.blobBytes -= v.length;
                }
                break;
            }
            case "error":
                if (m.code === "EAUTH")
                    this.fatal = true;
                this.note(`coordinator error ${m.code}: ${m.message}`);
                this.stats.message = `${m.code}: ${m.message}`;
                break;
            default:
                break; /* newer messages this page does not know */
            }
        }

        /* Stops the task id where it runs: WebAssembly cannot be interrupted
         * from outside, so its worker is terminated and a fresh one (the
         * module compiled again) takes its slot; the slot is busy until it
         * is ready. */
        stopWorker(id) {
            const i = this.workers.findIndex((w) => w && w.busy === id);
            if (i < 0)
                return;
            const w = this.workers[i];
            w.retired = true;
            w.terminate();
            this.workers[i] = null;
            this.running.delete(id);
            this.stats.cancelStops++;
            this.note(`task ${id} cancelled: its worker ${i} stopped and replaced`);
            if (!this.stopped)
                this.spawnWorker(i).catch((e) => this.fail(String(e.message)));
        }

        heartbeat() {
            const busy = this.workers.filter((w) => w && w.busy).length;
            this.send({msg_type: "heartbeat", peer_id: this.opts.peerId || "browser", timestamp: Date.now() / 1000,
                       load: busy / this.slots, tasks_completed: this.stats.done, tasks_failed: this.stats.failed});
            this.stats.heartbeats++;
            this.update();
        }

        /* Starts queued tasks on idle workers. */
        pump() {
            for (const w of this.workers) {
                if (!this.queue.length)
                    return;
                if (!w || w.busy)
                    continue;
                const t = this.queue.shift();
                const id = String(t.task_id);
                const blobs = [];
                const missing = (t.blobs || []).filter((h) => {
                    const b = this.blobs.get(h);
                    if (b)
                        blobs.push(b);
                    return !b;
                });
                if (missing.length) {
                    this.send({msg_type: "task_result", task_id: t.task_id, success: false,
                               error_code: "ENOBLOB", error: "blob " + missing[0] + " not held"});
                    continue;
                }
                w.busy = id;
                this.running.set(id, {task: t, gen: this.gen});
                this.stats.bytesIn += t.bytes ? t.bytes.length : Math.floor((t.data || "").length * 3 / 4);
                w.postMessage({kind: "run", id, binary: this.binaryInputs, type: t.task_type, params: t.params || {},
                               data: t.bytes || t.data || "",
                               blobs});
            }
        }

        finished(m) {
            const r = this.running.get(m.id);
            this.running.delete(m.id);
            if (!r || r.gen !== this.gen || r.cancelled)
                return; /* cancelled, or its connection is gone */
            const type = r.task.task_type;
            const pt = (this.stats.perType[type] = this.stats.perType[type] || {done: 0, failed: 0, ms: 0});
            pt.ms += m.ms;
            this.stats.ms += m.ms;
            /* A result over the coordinator's frame limit (max_message is
             * 4/3 of it plus 64 KiB) would cost the connection: it is
             * answered as too big instead, as a native peer does. */
            const limit = this.maxMessage ? Math.floor((this.maxMessage - 65536) * 3 / 4) - 4096 : Infinity;
            if (m.ok && m.bytes > limit)
                m = {ok: false, ms: m.ms, code: "ETOOBIG",
                     error: `output of ${m.bytes} bytes over the coordinator's limit of ${limit}`};
            if (m.ok) {
                pt.done++;
                this.stats.done++;
                this.stats.bytesOut += m.bytes;
                const res = {msg_type: "task_result", task_id: r.task.task_id, peer_id: this.opts.peerId || "browser",
                             success: true, processing_time_ms: m.ms};
                if (m.output instanceof Uint8Array && this.ws && this.ws.readyState === 1) {
                    /* The output follows as the next message, binary: no
                     * base64 on either side (docs/GATEWAY.md 5.4). */
                    res.result_frame = true;
                    this.ws.send(JSON.stringify(res));
                    this.ws.send(m.output);
                    this.stats.binaryResults++;
                } else {
                    res.result = m.result;
                    this.send(res);
                }
            } else {
                pt.failed++;
                this.stats.failed++;
                this.note(`${type} task ${r.task.task_id} failed: ${m.code}: ${m.error}`);
                this.send({msg_type: "task_result", task_id: r.task.task_id, peer_id: this.opts.peerId || "browser",
                           success: false, error_code: m.code, error: m.error, processing_time_ms: m.ms});
            }
            this.update();
        }
    }

    /* ---- the page ---------------------------------------------------------- */

    /* The key pair in IndexedDB (non-extractable CryptoKeys clone into it). */
    const idbKeyStore = {
        open() {
            return new Promise((resolve, reject) => {
                const req = indexedDB.open("p2c2r-contribute", 1);
                req.onupgradeneeded = () => req.result.createObjectStore("keys");
                req.onsuccess = () => resolve(req.result);
                req.onerror = () => reject(req.error);
            });
        },
        async load() {
            const db = await this.open();
            return new Promise((resolve, reject) => {
                const req = db.transaction("keys").objectStore("keys").get("peer");
                req.onsuccess = () => resolve(req.result || null);
                req.onerror = () => reject(req.error);
            });
        },
        async save(kp) {
            const db = await this.open();
            return new Promise((resolve, reject) => {
                const tx = db.transaction("keys", "readwrite");
                tx.objectStore("keys").put(kp, "peer");
                tx.oncomplete = () => resolve();
                tx.onerror = () => reject(tx.error);
            });
        },
    };

    function fmtMs(ms) {
        return ms < 1000 ? ms.toFixed(1) + " ms" : (ms / 1000).toFixed(2) + " s";
    }

    function fmtBytes(n) {
        return n < 1024 ? n + " B" : n < 1 << 20 ? (n / 1024).toFixed(1) + " KiB" : (n / 1048576).toFixed(1) + " MiB";
    }

    function render(s, el) {
        const st = s.stats;
        el.state.textContent = st.state + (st.message ? " — " + st.message : "");
        el.state.className = "state " + st.state;
        el.peer.textContent = st.peerNum == null ? "-" : String(st.peerNum);
        el.done.textContent = String(st.done);
        el.failed.textContent = String(st.failed);
        el.cancelled.textContent = String(st.cancelled);
        el.time.textContent = fmtMs(st.ms);
        el.bytes.textContent = fmtBytes(st.bytesIn) + " in, " + fmtBytes(st.bytesOut) + " out";
        el.uptime.textContent = st.started && s.stats.state !== "stopped"
            ? Math.round((Date.now() - st.started) / 1000) + " s" : "-";
        const rows = Object.keys(st.perType).sort().map((t) => {
            const p = st.perType[t];
            const n = p.done + p.failed;
            return `<tr><td>${t}</td><td>${p.done}</td><td>${p.failed}</td><td>${fmtMs(p.ms)}</td>` +
                   `<td>${n ? fmtMs(p.ms / n) : "-"}</td></tr>`;
        });
        el.types.innerHTML = rows.join("") || '<tr><td colspan="5">no tasks yet</td></tr>';
        el.log.textContent = st.log.slice().reverse().join("\n");
        el.button.textContent = s.stopped ? "Start contributing" : "Stop";
    }

    function page() {
        const $ = (id) => document.getElementById(id);
        const el = {
            state: $("state"), peer: $("peer"), done: $("done"), failed: $("failed"), cancelled: $("cancelled"),
            time: $("time"), bytes: $("bytes"), uptime: $("uptime"), types: $("types"), log: $("log"),
            button: $("start"), slots: $("slots"), token: $("token"),
        };
        const cores = navigator.hardwareConcurrency || 2;
        el.slots.max = String(cores);
        el.slots.value = String(Math.max(1, Math.min(2, cores - 1)));
        let session = null;
        let dirty = false;
        const onUpdate = () => { dirty = true; };
        setInterval(() => {
            if (session && (dirty || !session.stopped)) {
                dirty = false;
                render(session, el);
            }
        }, 250);
        el.button.onclick = () => {
            if (session && !session.stopped) {
                session.stop();
                return;
            }
            const proto = location.protocol === "https:" ? "wss:" : "ws:";
            session = new ContributeSession({
                url: `${proto}//${location.host}/ws`, token: el.token.value.trim(),
                peerId: "browser-" + Math.random().toString(16).slice(2, 8), slots: Number(el.slots.value),
                WebSocket, crypto, keyStore: typeof indexedDB !== "undefined" ? idbKeyStore : null,
                makeWorker: () => new Worker("static/worker.js"),
                capabilities: {cpu_cores: cores, ram_gb: navigator.deviceMemory || 0, gpu: false, gpu_vram_gb: 0},
                onUpdate,
            });
            /* For a person at the console, and for test_wasm_browser. */
            root.p2c2rSession = session;
            session.start();
            render(session, el);
        };
    }

    root.ContributeSession = ContributeSession;
    if (typeof module !== "undefined" && module.exports)
        module.exports = {ContributeSession, challengeMessage};
    if (typeof document !== "undefined")
        document.addEventListener("DOMContentLoaded", page);
})(typeof self !== "undefined" ? self : this);
