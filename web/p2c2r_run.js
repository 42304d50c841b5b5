/* p2c2r_run.js - runs a built-in executor in the WebAssembly module
 * (p2c2r_exec.wasm, built by scripts/wasm.sh from src/tasks/ and
 * wasm/p2c2r_wasm.c).  Shared by the contribute page's worker (worker.js,
 * through importScripts) and the byte-identity test under node
 * (tests/tasks/wasm/, through require).
 *
 * p2c2rRunner(mod) takes the instantiated module and returns
 *   types                      [{name, version}] of the built-in executors
 *   run(type, params, input, blobs)
 *        type: string, params: string ("key=value\n" lines) or an object,
 *        input: Uint8Array, blobs: array of Uint8Array (referenced by the
 *        SHA-256 hex of their bytes, e.g. pathfind's map=<hex>)
 *     -> {ok: true, output: Uint8Array, ms, execMs} or {ok: false, code, error, ms, execMs}
 *        (code: the p2c2r error name, e.g. "EINVAL"; ms: the whole call,
 *        copies in and out of the module's memory included; execMs: the
 *        executor alone)
 *   sha256hex(bytes)           the SHA-256 of bytes, as the module computes it */
(function (root) {
    "use strict";

    /* enum p2c2r_error of include/p2c2r/error.h, by value. */
    const ERRORS = [null, "EINVAL", "ENOMEM", "EIO", "ECLOSED", "ETIMEDOUT", "EAGAIN", "EPROTO",
        "ETOOBIG", "EAUTH", "EUNSUPPORTED", "EQUEUEFULL", "ECANCELLED", "ETASK", "ENOTFOUND",
        "EVERSION", "ELOST", "ESHUTDOWN", "ELIMIT", "EADDR", "ESTATE", "ENOBLOB", "EDEADLINE"];

    function errorName(rc) {
        return ERRORS[-rc] || "ETASK";
    }

    function now() {
        return typeof performance !== "undefined" ? performance.now() : Date.now();
    }

    function paramsText(params) {
        if (params == null)
            return "";
        if (typeof params === "string")
            return params;
        return Object.keys(params).map((k) => k + "=" + params[k] + "\n").join("");
    }

    function p2c2rRunner(mod) {
        const enc = new TextEncoder();

        /* Copies bytes into the module's memory; the caller frees the pointer. */
        function put(bytes) {
            const p = mod._p2c2r_wasm_alloc(bytes.length);
            if (!p)
                throw new Error("p2c2r_exec: out of memory for " + bytes.length + " bytes");
            mod.HEAPU8.set(bytes, p);
            return p;
        }

        function hex(bytes) {
            let s = "";
            for (const b of bytes)
                s += (b < 16 ? "0" : "") + b.toString(16);
            return s;
        }

        function sha256hex(bytes) {
            const p = put(bytes);
            const md = mod._p2c2r_wasm_alloc(32);
            try {
                if (!md || mod._p2c2r_wasm_sha256(p, bytes.length, md) !== 0)
                    throw new Error("p2c2r_exec: sha256 failed");
                return hex(mod.HEAPU8.slice(md, md + 32));
            } finally {
                mod._p2c2r_wasm_free(p);
                mod._p2c2r_wasm_free(md);
            }
        }

        const seed = new Uint32Array(1);
        /* Node 18 has WebCrypto only as require("crypto").webcrypto. */
        const wc = typeof crypto !== "undefined" && crypto.getRandomValues ? crypto
            : require("crypto").webcrypto;
        wc.getRandomValues(seed);
        mod._p2c2r_wasm_init(seed[0]);

        const types = mod.UTF8ToString(mod._p2c2r_wasm_types()).split(",").map((t) => {
            const [name, version] = t.split(":");
            return {name, version: Number(version)};
        });

        function run(type, params, input, blobs) {
            const t0 = now();
            const tb = enc.encode(type + "\0");
            const pb = enc.encode(paramsText(params));
            const ptrs = [];
            try {
                for (const b of [tb, pb, input || new Uint8Array(0)])
                    ptrs.push(put(b)); /* one at a time: a failed put frees those before it */
                for (const b of blobs || []) {
                    const bp = put(b);
                    const rc = mod._p2c2r_wasm_blob_add(bp, b.length);
                    if (rc !== 0) {
                        mod._p2c2r_wasm_free(bp);
                        return {ok: false, code: errorName(rc), error: "blob not taken", ms: now() - t0};
                    }
                }
                const t1 = now();
                const rc = mod._p2c2r_wasm_run(ptrs[0], ptrs[1], pb.length, ptrs[2],
                                               input ? input.length : 0);
                const execMs = now() - t1;
                if (rc !== 0) {
                    return {ok: false, code: errorName(rc), error: mod.UTF8ToString(mod._p2c2r_wasm_error()),
                            ms: now() - t0, execMs};
                }
                const op = mod._p2c2r_wasm_output();
                const output = mod.HEAPU8.slice(op, op + mod._p2c2r_wasm_output_len());
                return {ok: true, output, ms: now() - t0, execMs};
            } finally {
                mod._p2c2r_wasm_blobs_clear();
                for (const p of ptrs)
                    mod._p2c2r_wasm_free(p);
            }
        }

        return {types, run, sha256hex};
    }

    root.p2c2rRunner = p2c2rRunner;
    if (typeof module !== "undefined" && module.exports)
        module.exports = {p2c2rRunner, errorName};
})(typeof self !== "undefined" ? self : this);
