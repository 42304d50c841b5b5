// ws_relay.js - a Node.js `ws` server speaking the renter half of the
// gateway's JSON messages (docs/GATEWAY.md) and answering each task_submit
// itself: base64-decode the input, "run" echo in-process, send a
// result_delivery with the output in base64.  It does less than p2c2rd's
// gateway (no scheduling, no peer hop), so it bounds from below what
// JSON over WebSocket costs in Node.  Driven by bench/bench_gateway.
//
// Usage: NODE_PATH=DIR/node_modules node bench/competitors/ws_relay.js PORT_FILE
// (the `ws` package from npm, installed at bench time by bench/bench_gateway.sh --node).
const { WebSocketServer } = require("ws");
const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, path: "/ws", perMessageDeflate: false });
wss.on("listening", () => {
  require("fs").writeFileSync(process.argv[2], `127.0.0.1:${wss.address().port}\n`);
});
wss.on("connection", (ws) => {
  ws.send(JSON.stringify({ msg_type: "challenge", nonce: "", conn_id: 1, max_message: 1 << 24 }));
  ws.on("message", (data, isBinary) => {
    if (isBinary) return;
    const m = JSON.parse(data);
    if (m.msg_type === "gamer_register") {
      ws.send(JSON.stringify({ msg_type: "registration_ack", status: "ok", client_id: m.client_id || "" }));
    } else if (m.msg_type === "task_submit") {
      const t0 = process.hrtime.bigint();
      const out = Buffer.from(m.data, "base64");
      const exec = Number(process.hrtime.bigint() - t0) / 1e6;
      ws.send(JSON.stringify({ msg_type: "result_delivery", task_id: m.task_id, success: true,
        processing_time_ms: exec, network_latency_ms: 0, cached: false, verified: false, attempts: 1,
        peer: 0, result: out.toString("base64"), error: null }));
    }
  });
});
