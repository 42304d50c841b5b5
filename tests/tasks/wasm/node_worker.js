/* node_worker.js - a Web Worker for node, enough to run web/worker.js as a
 * browser does: the scripts come over HTTP from the page's server (the
 * gateway's /static/), importScripts evaluates them in order, self.
 * postMessage / self.onmessage go through worker_threads, and fetch is
 * node's.  NodeWebWorker(url) has the Worker interface ContributeSession
 * uses: postMessage, onmessage, onerror, terminate. */
"use strict";
const {Worker} = require("worker_threads");

/* Runs inside the worker thread. */
const BOOT = `
const {parentPort, workerData} = require("worker_threads");
const vm = require("vm");
globalThis.self = globalThis;
self.location = {href: workerData.url};
/* Emscripten's loader takes a worker under node for node, and asks for require. */
globalThis.require = require;
const scripts = new Map();
globalThis.importScripts = (...names) => {
    for (const n of names) {
        const u = new URL(n, workerData.url).href;
        if (!scripts.has(u))
            throw new Error("importScripts: " + u + " was not fetched");
        vm.runInThisContext(scripts.get(u), {filename: u});
    }
};
self.postMessage = (m) => parentPort.postMessage(m);
parentPort.on("message", (data) => { if (self.onmessage) self.onmessage({data}); });
(async () => {
    const get = async (u) => {
        const r = await fetch(u);
        if (!r.ok)
            throw new Error(u + ": HTTP " + r.status);
        return r.text();
    };
    const main = await get(workerData.url);
    for (const m of main.matchAll(/importScripts\\(([^)]*)\\)/g))
        for (const n of m[1].split(",").map((s) => s.trim().replace(/^["']|["']$/g, "")))
            scripts.set(new URL(n, workerData.url).href, await get(new URL(n, workerData.url).href));
    vm.runInThisContext(main, {filename: workerData.url});
})().catch((e) => parentPort.postMessage({kind: "failed", error: String(e && e.message || e)}));
`;

class NodeWebWorker {
    constructor(url) {
        this.w = new Worker(BOOT, {eval: true, workerData: {url}});
        this.onmessage = null;
        this.onerror = null;
        this.w.on("message", (data) => this.onmessage && this.onmessage({data}));
        this.w.on("error", (e) => this.onerror && this.onerror({message: String(e && e.message || e)}));
    }

    postMessage(m) {
        this.w.postMessage(m);
    }

    terminate() {
        this.w.terminate();
    }
}

module.exports = {NodeWebWorker};
