/* worker.js - the Web Worker of the contribute page: runs tasks in the
 * WebAssembly build of the built-in executors (p2c2r_exec.wasm), off the
 * page's thread so the tab never freezes.  One task at a time; the page
 * starts one worker per slot.
 *
 * Messages from the page:
 *   {kind: "run", id, binary, type, params, data, blobs}
 *        data: the input, a Uint8Array (binary_inputs) or base64 (as
 *        task_assign's data carries it); params: an object of strings;
 *        blobs: [Uint8Array] the task references; binary: answer with the
 *        output's bytes (output) instead of base64 (result)
 * to the page:
 *   {kind: "ready", types: [{name, version}]}        once the module loaded
 *   {kind: "failed", error}      the module did not load, or trapped (then the
 *                                page replaces the worker)
 *   {kind: "done", id, ok, result | output, bytes, code, error, ms}
 *        result: the output, base64, or output: its bytes (a Uint8Array
 *        whose buffer is transferred) when the run asked for binary;
 *        bytes: its length; code: a p2c2r error name when !ok
 * A cancelled task is not told to the worker: the page terminates it (the
 * module cannot be interrupted) and starts a new one.
 * The files it loads sit beside it (the gateway serves them under /static/). */
"use strict";

importScripts("p2c2r_run.js", "p2c2r_exec.js");

let runner = null;

function fromBase64(s) {
    const bin = atob(s || "");
    const b = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++)
        b[i] = bin.charCodeAt(i);
    return b;
}

function toBase64(b) {
    let s = "";
    for (let i = 0; i < b.length; i += 0x8000)
        s += String.fromCharCode.apply(null, b.subarray(i, i + 0x8000));
    return btoa(s);
}

async function start() {
    try {
        const res = await fetch(new URL("p2c2r_exec.wasm", self.location.href));
        if (!res.ok)
            throw new Error("p2c2r_exec.wasm: HTTP " + res.status);
        const wasmBinary = new Uint8Array(await res.arrayBuffer());
        /* The bytes are handed over: the loader does not fetch them itself. */
        const mod = await p2c2rExec({wasmBinary});
        runner = p2c2rRunner(mod);
        self.postMessage({kind: "ready", types: runner.types});
    } catch (e) {
        self.postMessage({kind: "failed", error: String(e && e.message || e)});
    }
}

self.onmessage = (ev) => {
    const m = ev.data;
    if (m.kind !== "run")
        return;
    let r;
    try {
        const input = typeof m.data === "string" ? fromBase64(m.data) : m.data;
        r = runner.run(m.type, m.params, input, m.blobs || []);
    } catch (e) {
        /* A trap in the module (out of memory): the task failed, and the
         * module's state is no longer to be trusted, so this worker asks to
         * be replaced. */
        const error = "executor trapped: " + String(e && e.message || e);
        self.postMessage({kind: "done", id: m.id, ok: false, code: "ETASK", error, ms: 0});
        runner = null;
        self.postMessage({kind: "failed", error});
        return;
    }
    if (r.ok && m.binary) {
        const output = new Uint8Array(r.output); /* a copy of its own, to transfer */
        self.postMessage({kind: "done", id: m.id, ok: true, output, bytes: output.length, ms: r.ms},
                         [output.buffer]);
    } else if (r.ok)
        self.postMessage({kind: "done", id: m.id, ok: true, result: toBase64(r.output), bytes: r.output.length,
                          ms: r.ms});
    else
        self.postMessage({kind: "done", id: m.id, ok: false, code: r.code, error: r.error, ms: r.ms});
};

start();
