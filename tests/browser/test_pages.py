#!/usr/bin/env python3
"""test_pages: the dashboard (/) and the demo (/demo) in headless Chromium,
driven over the DevTools protocol with gwclient's WebSocket (Python's
standard library only), against a real p2c2rd with two native peers.

  - /: without a token the page asks for one (the coordinator runs with a
    tokens file); with the operator's it lists both native peers (as
    "native", transport tcp), its figures change between two readings while
    a renter keeps the peers busy, the plots have points, and a screenshot
    is saved (OUTDIR/dashboard.png).  With a renter token it shows the
    renter view: no peer list, its own account.
  - /demo (renter token): clicks start and goal on the canvas; the path the
    page draws (its cells painted in the path colour) and its cost equal
    the answer of `p2c2r path --json` for the same query, and the page names
    the peer that computed it (one of the native peers).  Screenshot
    OUTDIR/demo.png.

Usage: test_pages.py P2C2RD P2C2R-PEER P2C2R WWW_DIR CHROMIUM OUTDIR
Exit 77 (skipped) only when CHROMIUM is not an executable.
"""
import json
import base64
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from gwclient import WS, b64  # noqa: E402

FAILS = []
T0 = time.time()


def log(*a):
    print("test_pages: [%5.1fs]" % (time.time() - T0), *a, flush=True)


def check(cond, what):
    if not cond:
        FAILS.append(what)
        log("FAIL:", what)
    return cond


class CDP:
    """One page target of Chromium's DevTools protocol."""

    def __init__(self, port, path):
        self.ws = WS("127.0.0.1", port, path, timeout=30, challenge=False)
        self.n = 0
        self.errors = []

    def call(self, method, **params):
        self.n += 1
        self.ws.send_json({"id": self.n, "method": method, "params": params})
        while True:
            m = self.ws.recv_json()
            if m.get("id") == self.n:
                if "error" in m:
                    raise RuntimeError("%s: %s" % (method, m["error"]))
                return m.get("result", {})
            if m.get("method") == "Runtime.exceptionThrown":
                self.errors.append(m["params"]["exceptionDetails"].get("exception", {}).get("description", "?"))
            elif m.get("method") == "Runtime.consoleAPICalled" and m["params"]["type"] == "error":
                self.errors.append(" ".join(str(a.get("value", a.get("description", ""))) for a in m["params"]["args"]))

    def eval(self, expr):
        r = self.call("Runtime.evaluate", expression=expr, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            raise RuntimeError("%s: %s" % (expr[:80], r["exceptionDetails"]))
        return r["result"].get("value")

    def wait(self, expr, what, timeout=15):
        end = time.time() + timeout
        while time.time() < end:
            v = self.eval(expr)
            if v:
                return v
            time.sleep(0.1)
        check(False, "%s (waited %d s for %s; page errors %r)" % (what, timeout, expr, self.errors))
        return None

    def open(self, url, ready, what):
        self.errors = []
        self.call("Page.navigate", url=url)
        return self.wait("document.readyState === 'complete' && !!(%s)" % ready, what)

    def click(self, x, y):
        self.call("Input.dispatchMouseEvent", type="mouseMoved", x=x, y=y)
        for t in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=t, x=x, y=y, button="left", clickCount=1)

    def screenshot(self, path):
        data = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))
        log("screenshot", path)


class Env:
    def __init__(self, p2c2rd, peer, www, tmp):
        self.tmp = tmp
        tokens = os.path.join(tmp, "tokens")
        with open(tokens, "w") as f:
            f.write("renter:rtok\npeer:ptok\noperator:otok\n")
        ready = os.path.join(tmp, "ready")
        self.logf = os.path.join(tmp, "p2c2rd.log")
        out = open(self.logf, "wb")
        self.procs = [subprocess.Popen(
            [p2c2rd, "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0", "--http-root", www, "--tokens", tokens,
             "--ready-file", ready, "--log-level", "info"], stdout=out, stderr=subprocess.STDOUT)]
        end = time.time() + 20
        self.http = None
        while time.time() < end and self.http is None:
            if os.path.exists(ready):
                for line in open(self.logf, errors="replace"):
                    if "event=http_listening addr=" in line:
                        self.http = line.split("event=http_listening addr=")[1].split()[0]
            time.sleep(0.05)
        if not self.http:
            raise SystemExit("test_pages: p2c2rd did not start: " + open(self.logf, errors="replace").read()[-2000:])
        self.addr = open(ready).read().strip()
        self.port = int(self.http.rsplit(":", 1)[1])
        for i in (1, 2):
            self.procs.append(subprocess.Popen(
                [peer, "--coordinator", self.addr, "--token", "ptok", "--name", "native-%d" % i, "--slots", "2",
                 "--types", "echo,sha256,pathfind", "--key", os.path.join(tmp, "peer%d.key" % i),
                 "--log-level", "warn"], stdout=out, stderr=subprocess.STDOUT))

    def stats(self, token="otok"):
        w = WS("127.0.0.1", self.port)
        w.send_json({"msg_type": "gamer_register", "client_id": "test", "token": token})
        w.recv_json()
        w.send_json({"msg_type": "stats_request"})
        s = w.recv_json()["stats"]
        w.close()
        return s

    def stop(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        check(self.procs[0].returncode == 0, "p2c2rd exit status %r (sanitizer reports in its log)"
              % self.procs[0].returncode)


def load(env, stop):
    """A renter keeping the peers busy: sha256 of fresh inputs, 16 in flight."""
    w = WS("127.0.0.1", env.port)
    w.send_json({"msg_type": "gamer_register", "client_id": "load", "token": "rtok"})
    w.recv_json()
    # One input the executor refuses: a failure with its reason on the page.
    w.send_json({"msg_type": "task_submit", "task_id": "bad", "task_type": "pathfind", "data": b64(b"not a map")})
    w.recv_json()
    n = 0
    inflight = 0
    while not stop.is_set():
        while inflight < 16:
            n += 1
            w.send_json({"msg_type": "task_submit", "task_id": n, "task_type": "sha256",
                         "data": b64(os.urandom(4096 + n % 512))})
            inflight += 1
        w.recv_json()
        inflight -= 1
        time.sleep(0.002)
    w.close()


def start_chromium(binary, tmp):
    profile = os.path.join(tmp, "chromium")
    os.makedirs(profile)
    errlog = open(os.path.join(tmp, "chromium.log"), "wb")
    proc = subprocess.Popen(
        [binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-dev-shm-usage",
         "--disable-extensions", "--remote-debugging-port=0", "--user-data-dir=" + profile,
         "--window-size=1400,1200", "about:blank"], stdout=errlog, stderr=subprocess.STDOUT)
    portf = os.path.join(profile, "DevToolsActivePort")
    end = time.time() + 30
    while time.time() < end and proc.poll() is None:
        if os.path.exists(portf):
            lines = open(portf).read().split("\n")
            if len(lines) >= 2 and lines[0].isdigit():
                port = int(lines[0])
                targets = json.load(urllib.request.urlopen("http://127.0.0.1:%d/json/list" % port, timeout=10))
                pages = [t for t in targets if t.get("type") == "page"]
                if pages:
                    path = "/" + pages[0]["webSocketDebuggerUrl"].split("/", 3)[3]
                    return proc, CDP(port, path)
        time.sleep(0.1)
    raise SystemExit("test_pages: chromium did not start: " + open(os.path.join(tmp, "chromium.log"), "rb").read()
                     .decode(errors="replace")[-2000:])


def t_dashboard(env, cdp, outdir):
    base = "http://%s" % env.http
    # No token: the coordinator needs one, so the page asks for it.
    cdp.open(base + "/", "document.getElementById('token-box')", "/ loads")
    cdp.wait("getComputedStyle(document.getElementById('token-box')).display !== 'none'",
             "/ without a token shows the token form")
    # The operator's token, typed into the form.
    cdp.eval("document.querySelector('#token-box input').value = 'otok';"
             "document.querySelector('#token-box form').requestSubmit(); true")
    cdp.wait("window.p2c2rDash && p2c2rDash.updates >= 2 && "
             "document.querySelectorAll('#peers tbody tr').length === 2",
             "operator view lists the two native peers")
    rows = cdp.eval("[...document.querySelectorAll('#peers tbody tr')].map(r => ({id: r.dataset.peerId, "
                    "transport: r.dataset.transport, text: r.innerText}))") or []
    names = sorted(re.search(r"native-\d", r["text"]).group(0) for r in rows if re.search(r"native-\d", r["text"]))
    check(names == ["native-1", "native-2"], "peer names on the page %r" % rows)
    check(all(r["transport"] == "tcp" and "native" in r["text"] for r in rows), "peers shown as native %r" % rows)
    check(cdp.eval("p2c2rDash.view") == "operator", "operator view: %r" % cdp.eval("p2c2rDash.view"))
    # Figures update: two readings of the page, a couple of seconds apart.
    read = ("({u: p2c2rDash.updates, done: document.querySelector('#tile-completed .v').textContent,"
            " tput: document.querySelector('#tile-throughput .v').textContent,"
            " peers: [...document.querySelectorAll('#peers tbody tr')].map(r => r.cells[6].textContent).join()})")
    a = cdp.eval(read)
    time.sleep(2.5)
    b = cdp.eval(read)
    log("dashboard readings", a, b)
    check(b["u"] - a["u"] >= 2, "at least one update a second: %r then %r" % (a, b))
    check(a["done"] != b["done"] and a["peers"] != b["peers"], "figures change between readings: %r %r" % (a, b))
    s = env.stats()
    shown = int(b["done"].replace(",", ""))
    check(0 < shown <= s["counters"]["completed"], "completed on the page %d, coordinator %d"
          % (shown, s["counters"]["completed"]))
    pts = cdp.eval("window.Chart ? Chart.getChart('chart-tput').data.datasets[0].data.filter(v => v > 0).length : -1")
    check(pts is not None and pts >= 2, "the throughput plot has points (%r; -1: no Chart.js)" % pts)
    lat = cdp.eval("window.Chart ? Chart.getChart('chart-lat').data.datasets[3].data.filter(v => v > 0).length : -1")
    check(lat is not None and lat >= 1, "the latency plot has points (%r)" % lat)
    refusals = cdp.eval("[...document.querySelectorAll('#refusals tbody tr')].map(r => r.innerText)") or []
    check(any(r.startswith("outcome: pathfind\tEINVAL\t1") for r in refusals)
          and any("token or peer identity refused\t1" in r for r in refusals),
          "failures and refusals by reason: %r" % refusals)
    cdp.screenshot(os.path.join(outdir, "dashboard.png"))
    check(not cdp.errors, "no script errors on /: %r" % cdp.errors)

    # A renter's token: the fabric's totals and its own account, no peers.
    cdp.open(base + "/?as=renter#token=rtok", "window.p2c2rDash && p2c2rDash.updates >= 1", "/ with a renter token")
    v = cdp.eval("({view: p2c2rDash.view, rows: document.querySelectorAll('#peers tbody tr').length,"
                 " note: document.getElementById('peers-note').textContent,"
                 " acct: document.getElementById('accounts').innerText})")
    check(v["view"].startswith("renter") and v["rows"] == 0 and "operator" in v["note"] and "renter" in v["acct"],
          "renter view: %r" % v)


def t_demo(env, cdp, outdir, cli, mapfile):
    base = "http://%s" % env.http
    cdp.open(base + "/demo#token=rtok", "window.p2c2rDemo && p2c2rDemo.loaded && p2c2rDemo.ready", "/demo loads")
    g = cdp.eval("(() => { const r = document.getElementById('grid').getBoundingClientRect();"
                 " return {x: r.left, y: r.top, w: r.width, h: r.height, cell: p2c2rDemo.cell,"
                 " cw: document.getElementById('grid').width, mw: p2c2rDemo.map.w, name: p2c2rDemo.name}; })()")
    check(g["name"] == "arena.map" and g["mw"] == 49, "the demo's map %r" % g)
    scale = g["w"] / g["cw"]
    frm, to = (3, 45), (39, 11)
    for (x, y) in (frm, to):
        cdp.click(g["x"] + (x + 0.5) * g["cell"] * scale, g["y"] + (y + 0.5) * g["cell"] * scale)
    res = cdp.wait("p2c2rDemo.results.length === 1 && p2c2rDemo.results[0]", "the demo's query is answered")
    if not res:
        return
    r = subprocess.run([cli, "path", mapfile, "--from", "%d,%d" % frm, "--to", "%d,%d" % to, "--json",
                        "--coordinator", env.addr, "--token", "rtok", "--timeout", "10000"],
                       capture_output=True, text=True, timeout=30)
    native = json.loads(r.stdout) if r.returncode == 0 else {}
    want_cost = re.search(r'"cost":([0-9.]+)', r.stdout).group(1) if r.returncode == 0 else None
    log("demo answer", {k: res[k] for k in ("cost", "peer", "from", "to", "error")}, "native cost", want_cost)
    check(res["error"] is None and res["from"] == list(frm) and res["to"] == list(to), "demo result %r" % res)
    check(want_cost is not None and res["cost"] == want_cost,
          "demo cost %r, p2c2r path %r (%s)" % (res["cost"], want_cost, r.stderr.strip()))
    check(res["path"] == native.get("path"), "demo path equals p2c2r path's")
    peers = {p["id"]: p for p in env.stats()["peers"]}
    check(res["peer"] in peers and peers[res["peer"]]["transport"] == "tcp",
          "computed by a native peer: %r of %r" % (res["peer"], list(peers)))
    text = cdp.eval("document.getElementById('answer').textContent")
    check(("cost %s" % want_cost) in text and ("peer #%d" % res["peer"]) in text, "answer shown: %r" % text)
    # The path is drawn: every cell between start and goal has the path colour.
    painted = cdp.eval("(() => { const cx = document.getElementById('grid').getContext('2d'), c = p2c2rDemo.cell;"
                       " return p2c2rDemo.results[0].path.slice(1, -1).map(([x, y]) =>"
                       " Array.from(cx.getImageData(x * c + 1, y * c + 1, 1, 1).data.slice(0, 3)).join(',')); })()")
    check(painted and all(p == "224,69,123" for p in painted),
          "path cells painted in the path colour: %r" % (painted or [])[:5])
    cdp.screenshot(os.path.join(outdir, "demo.png"))
    check(not cdp.errors, "no script errors on /demo: %r" % cdp.errors)


def main():
    if len(sys.argv) != 7:
        raise SystemExit(__doc__)
    p2c2rd, peer, cli, www, chromium, outdir = sys.argv[1:]
    if not (os.path.isfile(chromium) and os.access(chromium, os.X_OK)):
        print("test_pages skipped: chromium is not installed (scripts/deps.sh installs it)")
        return 77
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    mapfile = os.path.join(src, "examples", "maps", "arena.map")
    os.makedirs(outdir, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="p2c2r-pages-")
    env = browser = None
    stop = threading.Event()
    try:
        env = Env(p2c2rd, peer, www, tmp)
        end = time.time() + 15
        while time.time() < end and env.stats()["peers_connected"] < 2:
            time.sleep(0.1)
        loader = threading.Thread(target=load, args=(env, stop), daemon=True)
        loader.start()
        browser, cdp = start_chromium(chromium, tmp)
        cdp.call("Runtime.enable")
        cdp.call("Page.enable")
        log("chromium up; coordinator http %s" % env.http)
        t_dashboard(env, cdp, outdir)
        t_demo(env, cdp, outdir, cli, mapfile)
    finally:
        stop.set()
        if browser:
            browser.terminate()
            try:
                browser.wait(10)
            except subprocess.TimeoutExpired:
                browser.kill()
        if env:
            env.stop()
        if FAILS:
            log("p2c2rd log tail:\n" + open(env.logf, errors="replace").read()[-3000:] if env else "")
        shutil.rmtree(tmp, ignore_errors=True)
    if FAILS:
        log("%d check(s) failed" % len(FAILS))
        return 1
    log("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
