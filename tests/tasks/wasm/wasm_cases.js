/* wasm_cases.js - the inputs of the WebAssembly byte-identity test and
 * benchmark: every built-in task type on real data (the MovingAI arena map
 * and its 130 scenarios, examples/maps, examples/scenes, examples/physics,
 * examples/images), seeded random bytes, and malformed inputs whose error
 * code and reason must match too.
 *
 * cases(root, dataDir) -> [{name, type, params, input: Buffer, blobs: [Buffer]}] */
"use strict";
const fs = require("fs");
const path = require("path");

/* xorshift32: the same "random" bytes on every run. */
function randomBytes(n, seed) {
    const b = Buffer.alloc(n);
    let x = seed >>> 0 || 1;
    for (let i = 0; i < n; i++) {
        x ^= x << 13; x >>>= 0;
        x ^= x >>> 17;
        x ^= x << 5; x >>>= 0;
        b[i] = x & 255;
    }
    return b;
}

function scenQueries(scenText) {
    const q = scenText.split("\n").filter((l) => /^\d+\t/.test(l)).map((l) => {
        const f = l.split("\t");
        return `${f[4]} ${f[5]} ${f[6]} ${f[7]}`;
    });
    return `queries ${q.length}\n${q.join("\n")}\n`;
}

function cases(root, dataDir) {
    const ex = (p) => fs.readFileSync(path.join(root, "examples", p));
    const out = [];
    const add = (name, type, params, input, blobs) =>
        out.push({name, type, params: params || "", input: Buffer.from(input), blobs: blobs || []});

    for (const [n, seed] of [[0, 1], [1, 2], [64, 3], [4095, 4], [100000, 5], [1 << 20, 6]]) {
        const b = randomBytes(n, seed);
        add(`echo ${n}B`, "echo", "", b);
        add(`sha256 raw ${n}B`, "sha256", "", b);
        add(`sha256 hex ${n}B`, "sha256", "format=hex\n", b);
    }
    add("sha256 bad format", "sha256", "format=base64\n", Buffer.from("abc"));

    const mapDir = fs.existsSync(path.join(dataDir, "movingai", "arena.map"))
        ? path.join(dataDir, "movingai") : path.join(root, "tests", "tasks", "pathfind", "data");
    const arena = fs.readFileSync(path.join(mapDir, "arena.map"));
    const scen = scenQueries(fs.readFileSync(path.join(mapDir, "arena.map.scen"), "utf8"));
    for (const algo of ["jps", "astar"]) {
        add(`pathfind arena 130 scen ${algo}`, "pathfind", `algo=${algo}\n`,
            Buffer.concat([arena, Buffer.from(scen)]));
    }
    add("pathfind arena paths=0", "pathfind", "paths=0\n", Buffer.concat([arena, Buffer.from(scen)]));
    add("pathfind rooms", "pathfind", "", Buffer.concat([ex("maps/rooms.map"), ex("maps/rooms.queries")]));
    const sha = require("crypto").createHash("sha256").update(arena).digest("hex");
    add("pathfind arena map as blob", "pathfind", `map=${sha}\n`, Buffer.from(scen), [arena]);
    add("pathfind malformed", "pathfind", "", Buffer.from("type octile\nheight 2\nwidth 2\nmap\n..\n.\n"));

    const demo = ex("scenes/demo.json");
    add("raytrace demo tile raw", "raytrace", "x=200\ny=100\nw=96\nh=64\nspp=4\n", demo);
    add("raytrace demo tile png", "raytrace", "x=0\ny=300\nw=160\nh=60\nspp=2\nformat=png\n", demo);
    add("raytrace demo 64x36 full frame", "raytrace", "w=64\nh=36\nspp=1\n",
        Buffer.from(demo.toString().replace(/"width"\s*:\s*\d+/, '"width": 64')
            .replace(/"height"\s*:\s*\d+/, '"height": 36')));
    add("raytrace torus mesh blob", "raytrace", "x=100\ny=60\nw=64\nh=48\nspp=2\n", ex("scenes/torus.json"),
        [ex("scenes/torus.mesh")]);
    add("raytrace malformed", "raytrace", "", Buffer.from('{"version":1,"width":0}'));

    for (const s of ["stack", "bowling"])
        add(`physics ${s}`, "physics", "", ex(`physics/${s}.json`));
    add("physics stack 30 steps dt", "physics", "steps=30\ndt=0.01\n", ex("physics/stack.json"));
    add("physics malformed", "physics", "", Buffer.from('{"bodies":[{"id":1,"shape":"cone"}]}'));

    const png = ex("images/demo.png");
    for (const f of ["nearest", "bilinear", "bicubic", "lanczos3"]) {
        add(`upscale png x2 ${f}`, "upscale", `scale=2\nfilter=${f}\n`, png);
        add(`upscale png x0.75 ${f} raw`, "upscale", `scale=0.75\nfilter=${f}\nformat=raw\n`, png);
    }
    add("upscale png -> jpeg q85", "upscale", "width=320\nformat=jpeg\nquality=85\n", png);
    add("upscale png compression 9", "upscale", "scale=1.5\ncompression=9\n", png);
    add("upscale raw rgb in", "upscale", "in_width=64\nin_height=48\nin_channels=3\nscale=3\nfilter=lanczos3\n",
        randomBytes(64 * 48 * 3, 7));
    add("upscale malformed", "upscale", "scale=2\n", Buffer.from("\x89PNG\r\n\x1a\nnot a png"));
    return out;
}

module.exports = {cases, randomBytes};
