/* wasm_load.js - instantiates build/wasm/p2c2r_exec.wasm under node.
 * The wasm bytes are handed to the loader (wasmBinary), as the worker does:
 * Emscripten 3.1.6's loader would fetch() a file path, which node's fetch
 * refuses.  load(dir) -> Promise of a p2c2rRunner (web/p2c2r_run.js). */
"use strict";
const fs = require("fs");
const path = require("path");
const {p2c2rRunner} = require("../../../web/p2c2r_run.js");

async function load(dir) {
    const factory = require(path.join(path.resolve(dir), "p2c2r_exec.js"));
    const mod = await factory({wasmBinary: fs.readFileSync(path.join(dir, "p2c2r_exec.wasm"))});
    return p2c2rRunner(mod);
}

module.exports = {load};
