/* bench_wasm.js - a browser peer's executor speed: each built-in type on one
 * representative input, run in the WebAssembly build (p2c2r_exec.wasm,
 * under this node's V8, the engine of Chromium) and natively
 * (wasm_native_exec, the executors a native peer links), both in one
 * thread; prints the median time of each and the ratio wasm / native, for
 * the executor alone and for the whole call (the copies of input and output
 * into and out of the module's memory, which a browser peer pays too).
 * Every pair of outputs is checked equal first.
 *
 * With --chromium PATH the module runs in headless Chromium instead, in a Web
 * Worker as on the contribute page: this script serves the module, the
 * inputs and a small page over HTTP on 127.0.0.1, and the page posts its
 * times back.
 *
 *   node bench/bench_wasm.js [--chromium PATH] [WWW_DIR [NATIVE_DRIVER [RUNS]]]
 *     (defaults build/www, build/tests/tasks/wasm/wasm_native_exec, 9) */
"use strict";
const fs = require("fs");
const os = require("os");
const path = require("path");
const root = path.join(__dirname, "..");
const {randomBytes} = require("../tests/tasks/wasm/wasm_cases.js");
const {runNative} = require("../tests/tasks/wasm/wasm_native.js");
const {load} = require("../tests/tasks/wasm/wasm_load.js");
const http = require("http");
const {spawn} = require("child_process");

/* The page and its worker for --chromium: the worker loads the module as
 * web/worker.js does, runs every case RUNS times and posts the times. */
const BENCH_HTML = `<!DOCTYPE html><meta charset="utf-8"><title>bench</title><script>
const w = new Worker("bench_worker.js");
w.onmessage = (ev) => fetch("result", {method: "POST", body: JSON.stringify(ev.data)});
</script>`;
const BENCH_WORKER = `importScripts("p2c2r_run.js", "p2c2r_exec.js");
(async () => {
    try {
        const wasmBinary = new Uint8Array(await (await fetch("p2c2r_exec.wasm")).arrayBuffer());
        const runner = p2c2rRunner(await p2c2rExec({wasmBinary}));
        const cases = await (await fetch("cases.json")).json();
        const out = {ua: navigator.userAgent, cases: []};
        for (let i = 0; i < cases.length; i++) {
            const c = cases[i];
            const input = new Uint8Array(await (await fetch("case/" + i)).arrayBuffer());
            const ms = [], execMs = [];
            let output = null;
            for (let r = 0; r < c.runs; r++) {
                const x = runner.run(c.type, c.params, input, []);
                if (!x.ok)
                    throw new Error(c.name + ": " + x.code + " " + x.error);
                ms.push(x.ms);
                execMs.push(x.execMs);
                output = x.output;
            }
            out.cases.push({ms, execMs, sha256: runner.sha256hex(output)});
        }
        self.postMessage(out);
    } catch (e) {
        self.postMessage({error: String(e && e.message || e)});
    }
})();`;

/* Runs cases in headless Chromium; resolves to the page's report. */
function runChromium(bin, www, cases, runs, work) {
    return new Promise((resolve, reject) => {
        let proc = null;
        const files = {"p2c2r_run.js": "text/javascript", "p2c2r_exec.js": "text/javascript",
                       "p2c2r_exec.wasm": "application/wasm"};
        const server = http.createServer((req, res) => {
            const u = req.url.slice(1);
            const send = (type, body) => { res.writeHead(200, {"Content-Type": type}); res.end(body); };
            if (u === "bench.html")
                return send("text/html", BENCH_HTML);
            if (u === "bench_worker.js")
                return send("text/javascript", BENCH_WORKER);
            if (files[u])
                return send(files[u], fs.readFileSync(path.join(www, u)));
            if (u === "cases.json")
                return send("application/json", JSON.stringify(cases.map((c) => ({name: c.name, type: c.type,
                    params: c.params, runs}))));
            if (u.startsWith("case/"))
                return send("application/octet-stream", cases[Number(u.slice(5))].input);
            if (u === "result" && req.method === "POST") {
                let body = "";
                req.on("data", (b) => { body += b; });
                req.on("end", () => {
                    res.end();
                    server.close();
                    proc.kill("SIGTERM");
                    const r = JSON.parse(body);
                    r.error ? reject(new Error("chromium: " + r.error)) : resolve(r);
                });
                return;
            }
            res.writeHead(404);
            res.end();
        });
        server.listen(0, "127.0.0.1", () => {
            const url = `http://127.0.0.1:${server.address().port}/bench.html`;
            proc = spawn(bin, ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--disable-dev-shm-usage", `--user-data-dir=${path.join(work, "profile")}`, url],
                {stdio: "ignore"});
            proc.on("exit", (code) => { if (server.listening) { server.close(); reject(new Error("chromium exited " + code)); } });
        });
    });
}

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
    const args = process.argv.slice(2);
    let chromium = null;
    if (args[0] === "--chromium") {
        chromium = args[1];
        args.splice(0, 2);
    }
    const www = args[0] || path.join(root, "build/www");
    const driver = args[1] || path.join(root, "build/tests/tasks/wasm/wasm_native_exec");
    const runs = Number(args[2] || 9);
    const work = fs.mkdtempSync(path.join(os.tmpdir(), "bench-wasm-"));
    const cases = benchCases();
    let wasm;
    if (chromium) {
        const r = await runChromium(chromium, www, cases, runs, work);
        console.log(`headless Chromium (${r.ua}), in a Web Worker, ${runs} runs each, medians`);
        wasm = r.cases;
    } else {
        const runner = await load(www);
        console.log(`node ${process.version}, ${runs} runs each, medians`);
        wasm = cases.map((c) => {
            const ms = [], execMs = [];
            let output = null;
            for (let i = 0; i < runs; i++) {
                const r = runner.run(c.type, c.params, c.input, c.blobs);
                if (!r.ok)
                    throw new Error(`${c.name}: ${r.code} ${r.error}`);
                ms.push(r.ms);
                execMs.push(r.execMs);
                output = r.output;
            }
            return {ms, execMs, sha256: runner.sha256hex(output)};
        });
    }
    console.log("| case | native ms | wasm ms (executor) | wasm / native | wasm ms (with copies) | wasm / native |");
    console.log("|---|---:|---:|---:|---:|---:|");
    cases.forEach((c, i) => {
        const n = runNative(driver, work, c, runs);
        const sha = require("crypto").createHash("sha256").update(n.ok ? n.output : "").digest("hex");
        if (!n.ok || sha !== wasm[i].sha256)
            throw new Error(`${c.name}: wasm and native outputs differ`);
        const nm = median(n.ms), wm = median(wasm[i].ms), wem = median(wasm[i].execMs);
        console.log(`| ${c.name} | ${nm.toFixed(2)} | ${wem.toFixed(2)} | ${(wem / nm).toFixed(2)} | ` +
                    `${wm.toFixed(2)} | ${(wm / nm).toFixed(2)} |`);
    });
    fs.rmSync(work, {recursive: true, force: true});
}

main().catch((e) => {
    console.error(e);
    process.exit(1);
});
