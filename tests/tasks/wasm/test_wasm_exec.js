/* test_wasm_exec.js - the WebAssembly build of the executors gives the same
 * bytes as the native one: every case of wasm_cases.js runs through
 * p2c2r_exec.wasm and through wasm_native_exec (the executors as a native
 * peer links them), and the outputs (or error codes and reasons) must be
 * equal, byte for byte.  Prints a line per case and a summary per type.
 *
 *   node test_wasm_exec.js WASM_DIR NATIVE_DRIVER SOURCE_ROOT DATA_DIR WORK_DIR */
"use strict";
const fs = require("fs");
const {cases} = require("./wasm_cases.js");
const {runNative} = require("./wasm_native.js");
const {load} = require("./wasm_load.js");

function describe(r) {
    return r.ok ? `${r.output.length} bytes` : `${r.code} (${r.error})`;
}

function firstDiff(a, b) {
    const n = Math.min(a.length, b.length);
    for (let i = 0; i < n; i++)
        if (a[i] !== b[i])
            return i;
    return n;
}

async function main() {
    const [wasmDir, driver, root, dataDir, work] = process.argv.slice(2);
    if (!work) {
        console.error("usage: node test_wasm_exec.js WASM_DIR NATIVE_DRIVER SOURCE_ROOT DATA_DIR WORK_DIR");
        process.exit(2);
    }
    fs.mkdirSync(work, {recursive: true});
    const runner = await load(wasmDir);
    const all = cases(root, dataDir);
    const perType = {};
    let bad = 0;
    for (const c of all) {
        const w = runner.run(c.type, c.params, c.input, c.blobs);
        const n = runNative(driver, work, c);
        let same;
        if (w.ok && n.ok)
            same = Buffer.compare(Buffer.from(w.output), n.output) === 0;
        else
            same = w.ok === n.ok && w.code === n.code && w.error === n.error;
        const t = (perType[c.type] = perType[c.type] || {cases: 0, same: 0, errors: 0});
        t.cases++;
        t.same += same ? 1 : 0;
        t.errors += n.ok ? 0 : 1;
        if (same) {
            console.log(`same  ${c.name}: ${describe(n)}`);
        } else {
            bad++;
            let where = "";
            if (w.ok && n.ok)
                where = ` first difference at byte ${firstDiff(w.output, n.output)}`;
            console.log(`DIFF  ${c.name}: wasm ${describe(w)}, native ${describe(n)}${where}`);
        }
    }
    for (const type of Object.keys(perType)) {
        const t = perType[type];
        console.log(`type ${type}: ${t.same}/${t.cases} byte-identical (${t.errors} error cases)`);
    }
    for (const x of runner.types)
        if (!perType[x.name]) {
            console.log(`FAIL built-in type ${x.name} has no case`);
            bad++;
        }
    console.log(bad ? `FAIL ${bad} case(s) differ` : `PASS ${all.length} cases byte-identical`);
    process.exit(bad ? 1 : 0);
}

main().catch((e) => {
    console.error(e);
    process.exit(1);
});
