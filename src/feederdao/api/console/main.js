// The console: sign-in, views by URL fragment, and live updates from /events.
import { api, auth, ApiError } from "./api.js";
import { MarketView } from "./market.js";
import { AuditorView, OperatorView, ParticipantView, flash } from "./roles.js";

performance.mark("console:modules");

const $ = (id) => document.getElementById(id);
const session = {
  role: null, participantId: null, until: null,
  get key() { return auth.key; },
  get seesAll() { return this.role === "operator" || this.role === "auditor"; },
};

const market = new MarketView(session);
const participant = new ParticipantView(session);
const operator = new OperatorView(session, () => refresh());
const auditor = new AuditorView(session);

function route() {
  const name = (location.hash || "#market").slice(1);
  const known = ["market", "participant", "operator", "auditor"];
  const view = known.includes(name) ? name : "market";
  for (const s of document.querySelectorAll("main > section")) s.hidden = s.dataset.view !== view;
  for (const a of document.querySelectorAll("nav a")) {
    if (a.dataset.view === view) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
  document.body.dataset.view = view;
}

function showRole() {
  for (const el of document.querySelectorAll(".role-body")) el.hidden = !el.dataset.role.split(" ").includes(session.role);
  for (const el of document.querySelectorAll(".needs-role")) el.hidden = el.dataset.role.split(" ").includes(session.role);
  $("signin").hidden = Boolean(session.role);
  $("whoami").hidden = $("signout").hidden = !session.role;
  const until = session.until ? ` (wallet, until ${session.until.slice(11, 16)} UTC)` : "";
  $("whoami").textContent = session.role ? `${session.role}${session.participantId ? ` ${session.participantId}` : ""}${until}` : "";
  document.body.dataset.role = session.role || "";
}

async function signIn(key, until = null) {
  auth.key = key;
  if (until) auth.until = until;
  try {
    const who = await api("/session");
    session.role = who.role;
    session.participantId = who.participant_id;
    session.until = auth.until;
    flash("");
  } catch (e) {
    auth.key = null;
    auth.until = null;
    session.role = null;
    flash(e instanceof ApiError ? `Sign-in refused: ${e.text}` : String(e));
  }
  showRole();
}

let busy = null, again = false, failed = false;
async function refresh() {
  if (busy) { again = true; return busy; }
  busy = (async () => {
    try {
      const list = await market.refresh();
      const jobs = [];
      if (session.role === "participant") jobs.push(participant.load(list));
      if (session.role === "operator") jobs.push(operator.load(list));
      if (session.seesAll) auditor.load(list);
      await Promise.all(jobs);
      document.body.dataset.refreshed = String(Date.now());
      if (failed) { failed = false; flash(""); }  // what a failed refresh said is over
    } catch (e) {
      failed = true;
      flash(e instanceof ApiError ? e.text : String(e));
    }
  })();
  await busy;
  busy = null;
  if (again) { again = false; await refresh(); }
}

// One stream. EventSource comes back by itself after a dropped connection (after the server's
// `retry:`), but gives up for good on an answer that is not a stream (a proxy's 502 or 503 while
// the service restarts): then the page opens a new one, waiting 1, 2, 4 … 30 s (with a little
// jitter, so that consoles do not all come back at once). Events sent while it was away are
// lost, so every reconnection reloads what the page shows.
let pending = null;
const soon = () => { clearTimeout(pending); pending = setTimeout(refresh, 150); };
function listen() {
  const live = $("live");
  const shown = (on) => {
    live.textContent = on ? "live" : "reconnecting…";
    live.className = `live ${on ? "on" : "off"}`;
    document.body.dataset.live = on ? "on" : "off";
  };
  let es = null, wait = 1000, timer = null, dropped = false;
  const open = () => {
    es = new EventSource("/events");
    es.onopen = () => {
      shown(true);
      wait = 1000;
      if (dropped) { dropped = false; soon(); }
    };
    es.onerror = () => {
      dropped = true;
      shown(false);
      if (es.readyState !== EventSource.CLOSED) return;  // the browser retries by itself
      clearTimeout(timer);
      timer = setTimeout(open, wait * (1 + Math.random() * 0.2));
      wait = Math.min(wait * 2, 30000);
    };
    for (const kind of ["interval", "step", "dispatch", "resync"]) es.addEventListener(kind, soon);
  };
  open();
  window.addEventListener("pagehide", () => { clearTimeout(timer); es.close(); });
}

$("signin").addEventListener("submit", async (e) => {
  e.preventDefault();
  await signIn($("apikey").value.trim());
  $("apikey").value = "";
  await refresh();
});
// Sign-In with Ethereum: the service writes the message (its domain, the address, a nonce, the
// times), the wallet shows and signs it (personal_sign), the service checks it and answers with
// a session key that ends at the message's expiration time.
const hex = (text) => `0x${Array.from(new TextEncoder().encode(text), (b) => b.toString(16).padStart(2, "0")).join("")}`;
async function walletSignIn() {
  const err = $("p-wallet-error");
  err.hidden = true;
  try {
    const eth = window.ethereum;
    if (!eth || typeof eth.request !== "function") {
      throw new Error("No wallet in this browser: signing in with one needs an Ethereum wallet (an EIP-1193 provider such as a wallet extension).");
    }
    const [address] = await eth.request({ method: "eth_requestAccounts" });
    if (!address) throw new Error("The wallet shared no account.");
    const ch = await api("/session/nonce", { method: "POST", body: { address, uri: `${location.origin}/` }, anonymous: true });
    const signature = await eth.request({ method: "personal_sign", params: [hex(ch.message), address] });
    const got = await api("/session/wallet", { method: "POST", body: { message: ch.message, signature }, anonymous: true });
    await signIn(got.api_key, got.expires_at);
    await refresh();
  } catch (e) {
    err.textContent = e instanceof ApiError ? `Sign-in refused: ${e.text}` : `Sign-in failed: ${(e && e.message) || e}`;
    err.hidden = false;
  }
}
$("p-wallet").addEventListener("click", walletSignIn);

function signOut() {
  auth.key = null;
  auth.until = null;
  session.until = null;
  session.role = session.participantId = null;
  participant.me = null;
  showRole();
}
$("signout").addEventListener("click", async () => {
  signOut();
  await refresh();
});
// a key refused while signed in (revoked, rotated, expired): signed out, with the API's words
document.addEventListener("keyrefused", (e) => {
  if (!session.role) return;
  signOut();
  flash(`Signed out: ${e.detail}. Sign in again.`);
});
window.addEventListener("hashchange", route);

route();
(async () => {
  if (auth.key) await signIn(auth.key); else showRole();
  await market.start();
  await refresh();
  listen();
  document.body.dataset.ready = "true";
})();
