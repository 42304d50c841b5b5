// gw.js - a renter's session with p2c2rd's JSON/WebSocket gateway
// (docs/GATEWAY.md), shared by the dashboard (/) and the demo (/demo).
//
// It opens ws://HOST/ws on the page's own host, answers the challenge with
// gamer_register (client_id and the token, if any), and reconnects after a
// close with a growing delay (1 s doubling to 10 s).  A refused token
// (registration_ack status "error", EAUTH) is not retried: the page asks
// for another one (onAuth) and calls setToken.
//
// The token comes from, in order: setToken, the page's URL fragment
// (#token=..., which the browser never sends to a server; it is moved into
// sessionStorage and removed from the address bar), sessionStorage.  None:
// the page registers without one, which a coordinator without credentials
// accepts (docs/ACCOUNTS.md).

const TOKEN_KEY = "p2c2r-token";

export function tokenFromPage() {
    const m = /(?:^#|&)token=([^&]*)/.exec(location.hash);
    if (m) {
        const t = decodeURIComponent(m[1]);
        sessionStorage.setItem(TOKEN_KEY, t);
        history.replaceState(null, "", location.pathname + location.search);
        return t;
    }
    return sessionStorage.getItem(TOKEN_KEY) || "";
}

export function b64encode(bytes) {
    let s = "";
    for (let i = 0; i < bytes.length; i += 0x8000)
        s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    return btoa(s);
}

export function b64decode(text) {
    const s = atob(text);
    const b = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++)
        b[i] = s.charCodeAt(i);
    return b;
}

// Fills box (an empty element, hidden by the style sheet) with the form that
// asks for a token; shown by askToken.
function tokenForm(gw, box, hint) {
    box.replaceChildren();
    const h = document.createElement("h2");
    const form = document.createElement("form");
    const input = document.createElement("input");
    const go = document.createElement("button");
    const note = document.createElement("span");
    form.className = "token";
    input.type = "password";
    input.placeholder = "token";
    input.autocomplete = "off";
    input.size = 40;
    go.type = "submit";
    go.textContent = "use it";
    note.className = "dim";
    note.textContent = hint + " Kept in this tab only (sessionStorage).";
    form.append(input, go, note);
    box.append(h, form);
    form.addEventListener("submit", (ev) => {
        ev.preventDefault();
        gw.setToken(input.value.trim());
        input.value = "";
    });
    return {box, why: h, input, form};
}

export class Gateway {
    // opts: clientId; onReady(ack), onMessage(msg), onState(text, kind);
    // tokenBox (an element for the token form) and tokenHint (what a token
    // gives on this page): the form is shown when the token was refused (or
    // is missing), and no token is tried until the user gives one.
    constructor(opts) {
        this.opts = opts;
        this.form = opts.tokenBox ? tokenForm(this, opts.tokenBox, opts.tokenHint || "") : null;
        this.token = tokenFromPage();
        this.ws = null;
        this.ready = false;
        this.delay = 1000;
        this.waitingToken = false;
        this.timer = null;
    }

    askToken(why) {
        if (!this.form)
            return;
        this.form.why.textContent = why;
        this.form.box.style.display = "block";
        this.form.input.focus();
    }

    start() {
        // A token pasted into the address bar (#token=...) later replaces this one.
        window.addEventListener("hashchange", () => {
            if (/(?:^#|&)token=/.test(location.hash))
                this.setToken(tokenFromPage());
        });
        this.connect();
    }

    setToken(token) {
        this.token = token;
        if (token)
            sessionStorage.setItem(TOKEN_KEY, token);
        else
            sessionStorage.removeItem(TOKEN_KEY);
        this.waitingToken = false;
        this.delay = 1000;
        if (this.ws)
            this.ws.close();
        else
            this.connect();
    }

    state(text, kind) {
        if (this.opts.onState)
            this.opts.onState(text, kind);
    }

    connect() {
        clearTimeout(this.timer);
        this.timer = null;
        const proto = location.protocol === "https:" ? "wss:" : "ws:";
        const ws = new WebSocket(`${proto}//${location.host}/ws`);
        this.ws = ws;
        this.ready = false;
        this.state("connecting", "wait");
        ws.onmessage = (ev) => {
            if (typeof ev.data !== "string")
                return; // no binary messages are asked for
            let m;
            try {
                m = JSON.parse(ev.data);
            } catch (e) {
                return;
            }
            this.receive(m);
        };
        ws.onclose = () => {
            if (this.ws !== ws)
                return;
            this.ws = null;
            this.ready = false;
            if (this.waitingToken) {
                this.state("a token is needed", "bad");
                return;
            }
            this.state(`disconnected: retrying in ${this.delay / 1000} s`, "bad");
            this.timer = setTimeout(() => this.connect(), this.delay);
            this.delay = Math.min(this.delay * 2, 10000);
        };
    }

    receive(m) {
        switch (m.msg_type) {
        case "challenge": {
            const reg = {msg_type: "gamer_register", client_id: this.opts.clientId};
            if (this.token)
                reg.token = this.token;
            this.ws.send(JSON.stringify(reg));
            return;
        }
        case "registration_ack":
            if (m.status === "ok") {
                this.ready = true;
                this.delay = 1000;
                this.state("connected", "ok");
                if (this.form)
                    this.form.box.style.display = "none";
                if (this.opts.onReady)
                    this.opts.onReady(m);
            } else if (m.error === "EAUTH") {
                this.waitingToken = true;
                this.askToken(this.token ? "the coordinator refused this token" : "this coordinator needs a token");
            } else {
                this.state(`refused: ${m.error} ${m.message || ""}`, "bad");
            }
            return;
        case "error":
            this.state(`error ${m.code}: ${m.message}`, "bad");
            return;
        default:
            if (this.opts.onMessage)
                this.opts.onMessage(m);
        }
    }

    send(msg) {
        if (!this.ready)
            return false;
        this.ws.send(JSON.stringify(msg));
        return true;
    }
}
