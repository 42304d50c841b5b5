/* wasm_native.js - runs a case (wasm_cases.js) through the native driver
 * wasm_native_exec, the executors of a native peer.
 * runNative(driver, work, c, repeat) -> {ok, output, code, error, ms: [..]} */
"use strict";
const fs = require("fs");
const path = require("path");
const {execFileSync} = require("child_process");
const {errorName} = require("../../../web/p2c2r_run.js");

function runNative(driver, work, c, repeat) {
    const f = (n) => path.join(work, n);
    fs.writeFileSync(f("params"), c.params);
    fs.writeFileSync(f("input"), c.input);
    const blobs = c.blobs.map((b, i) => {
        fs.writeFileSync(f(`blob${i}`), b);
        return f(`blob${i}`);
    });
    try { fs.unlinkSync(f("output")); } catch (e) { /* not there */ }
    const res = JSON.parse(execFileSync(driver, ["--repeat", String(repeat || 1), c.type, f("params"),
        f("input"), f("output"), ...blobs], {maxBuffer: 1 << 20}).toString());
    if (res.rc !== 0)
        return {ok: false, code: errorName(res.rc), error: res.error, ms: res.ms};
    return {ok: true, output: fs.readFileSync(f("output")), ms: res.ms};
}

module.exports = {runNative};
