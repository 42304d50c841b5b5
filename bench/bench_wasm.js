/* bench_wasm.js - a browser peer's executor speed: each built-in type on one
 * representative input, run in the WebAssembly build (p2c2r_exec.wasm,
 * under this node's V8, the engine of Chromium) and natively
 * (wasm_native_exec, the executors a native peer links), both in one
 * thread; prints the median time of each and the ratio wasm / native, for
 * the executor alone and for the whole call (the copies of input and output
 * into and out of the module's memory, which a browser peer pays too).
 * Every pair of outputs is checked equal first.
 *
 *   node bench/bench_wasm.js [WWW_DIR [NATIVE_DRIVER [RUNS]]]
 *     (defaults build/www, build/tests/tasks/wasm/wasm_native_exec, 9) */
"use strict";
const fs = require("fs");
const os = require("os");
const path = require("path");
const root = path.join(__dirname, "..");
const {randomBytes} = require("../tests/tasks/wasm/wasm_cases.js");
const {runNative} = require("../tests/tasks/wasm/wasm_native.js");
const {load} = require("../tests/tasks/wasm/wasm_load.js");

function median(a) {
    const s = a.slice().sort((x, y) => x - y);
    return s[s.length >> 1];
}

function benchCases() {
    const ex = (p) => fs.readFileSync(path.join(root, "examples", p));
    const data = path.join(root, "..", "shared", "data", "movingai");
    const mapDir = fs.existsSync(path.join(data, "arena.map")) ? data : path.join(root, "tests/tasks/pathfind/data");
    const scen = fs.readFileSync(path.join(mapDir, "arena.map.scen"), "utf8").split("\n")
        .filter((l) => /^\d+\t/.test(l)).map((l) => l.split("\t").slice(4, 8).join(" "));
    const pf = Buffer.concat([fs.readFileSync(path.join(mapDir, "arena.map")),
        Buffer.from(`queries ${scen.length}\n${scen.join("\n")}\n`)]);
    const mib = randomBytes(4 << 20, 9);
    return [
        {name: "echo 4 MiB", type: "echo", params: "", input: mib, blobs: []},
        {name: "sha256 4 MiB", type: "sha256", params: "", input: mib, blobs: []},
        {name: "pathfind arena, 130 queries, jps", type: "pathfind", params: "", input: pf, blobs: []},
        {name: "pathfind arena, 130 queries, astar", type: "pathfind", params: "algo=astar\n", input: pf, blobs: []},
        {name: "raytrace demo.json 160x90 tile, 4 spp", type: "raytrace", params: "x=240\ny=135\nw=160\nh=90\nspp=4\n",
         input: ex("scenes/demo.json"), blobs: []},
        {name: "physics bowling.json (240 steps)", type: "physics", params: "", input: ex("physics/bowling.json"),
         blobs: []},
        {name: "physics stack.json", type: "physics", params: "", input: ex("physics/stack.json"), blobs: []},
        {name: "upscale demo.png x4 lanczos3 -> png", type: "upscale", params: "scale=4\nfilter=lanczos3\n",
         input: ex("images/demo.png"), blobs: []},
        {name: "upscale demo.png x4 bicubic -> jpeg", type: "upscale", params: "scale=4\nformat=jpeg\n",
         input: ex("images/demo.png"), blobs: []},
    ];
}

async function main() {
    const www = process.argv[2] || path.join(root, "build/www");
    const driver = process.argv[3] || path.join(root, "build/tests/tasks/wasm/wasm_native_exec");
    const runs = Number(process.argv[4] || 9);
    const work = fs.mkdtempSync(path.join(os.tmpdir(), "bench-wasm-"));
    const runner = await load(www);
    console.log(`node ${process.version}, ${runs} runs each, medians`);
    console.log("| case | native ms | wasm ms (executor) | wasm / native | wasm ms (with copies) | wasm / native |");
    console.log("|---|---:|---:|---:|---:|---:|");
    for (const c of benchCases()) {
        const n = runNative(driver, work, c, runs);
        const w = [], we = [];
        let out = null;
        for (let i = 0; i < runs; i++) {
            const r = runner.run(c.type, c.params, c.input, c.blobs);
            if (!r.ok)
                throw new Error(`${c.name}: ${r.code} ${r.error}`);
            w.push(r.ms);
            we.push(r.execMs);
            out = r.output;
        }
        if (!n.ok || Buffer.compare(Buffer.from(out), n.output) !== 0)
            throw new Error(`${c.name}: wasm and native outputs differ`);
        const nm = median(n.ms), wm = median(w), wem = median(we);
        console.log(`| ${c.name} | ${nm.toFixed(2)} | ${wem.toFixed(2)} | ${(wem / nm).toFixed(2)} | ` +
                    `${wm.toFixed(2)} | ${(wm / nm).toFixed(2)} |`);
    }
    fs.rmSync(work, {recursive: true, force: true});
}

main().catch((e) => {
    console.error(e);
    process.exit(1);
});
