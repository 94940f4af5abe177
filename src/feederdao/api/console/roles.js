// The participant's, operator's and auditor's views: each only calls the API's own routes and
// shows the API's own messages.
import { api, ApiError, newKey } from "./api.js";
import { fmt } from "./scale.js";

const $ = (id) => document.getElementById(id);
const td = (text, cls) => {
  const c = document.createElement("td");
  c.textContent = text === null || text === undefined ? "–" : String(text);
  if (cls) c.className = cls;
  return c;
};
const button = (label, onClick, cls = "") => {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  if (cls) b.className = cls;
  b.addEventListener("click", onClick);
  return b;
};
const row = (...cells) => {
  const tr = document.createElement("tr");
  tr.append(...cells.map((c) => (c instanceof Node ? (c.tagName === "TD" ? c : wrap(c)) : td(c))));
  return tr;
};
const wrap = (node) => { const c = document.createElement("td"); c.append(node); return c; };
export const flash = (msg) => {
  const f = $("flash");
  f.textContent = msg;
  f.hidden = !msg;
};
const shown = (err) => (err instanceof ApiError ? err.text : String(err));

export class ParticipantView {
  constructor(session) {
    this.session = session;
    $("p-bid").addEventListener("submit", (e) => { e.preventDefault(); this.submit(); });
  }

  async load(intervals) {
    this.me = this.me || (await api("/participants/me"));
    $("p-me").textContent = `${this.me.name} (${this.me.address}) at bus ${this.me.bus}; devices: ${this.me.devices.join(", ") || "none"}`;
    const dev = $("p-device");
    if (!dev.options.length) dev.replaceChildren(new Option("(none)", ""), ...this.me.devices.map((d) => new Option(d, d)));
    this.intervals = intervals;
    const open = intervals.filter((i) => i.state === "open");
    const sel = $("p-interval");
    const keep = sel.value;
    sel.replaceChildren(...open.map((i) => new Option(`#${i.id} ${i.start.slice(0, 16).replace("T", " ")}`, i.id)));
    if (open.some((i) => String(i.id) === keep)) sel.value = keep;
    await Promise.all([this.loadBids(), this.loadSettlement(intervals)]);
  }

  async loadBids() {
    const bids = await api("/bids");
    const open = new Set(this.intervals.filter((i) => i.state === "open").map((i) => i.id));
    $("p-bids").tBodies[0].replaceChildren(...bids.map((b) => {
      const cancel = b.status === "active" && open.has(b.interval_id)
        ? button("Cancel", () => this.cancel(b.id), "secondary") : "";
      const tr = row(`#${b.interval_id}`, b.period, b.side, b.blocks.map(([p, q]) => `${q} MW @ ${p}`).join(", "), b.status, b.accepted_mw ? b.accepted_mw.map((v) => fmt(v, 4)).join(", ") : null, cancel);
      tr.dataset.bid = b.id;
      tr.dataset.status = b.status;
      return tr;
    }));
  }

  async loadSettlement(intervals) {
    const done = intervals.filter((i) => i.state === "published");
    const all = await Promise.all(done.map((i) => api(`/intervals/${i.id}/settlement`).then((rows) => rows.map((r) => [i.id, r]))));
    $("p-settlement").tBodies[0].replaceChildren(...all.flat().map(([id, r]) => row(`#${id}`, r.bus, fmt(r.bought_mwh, 4), fmt(r.sold_mwh, 4), fmt(r.energy_payment_eur), fmt(r.fee_eur))));
  }

  async submit() {
    const err = $("p-bid-error");
    err.hidden = true;
    const num = (id) => (($(id).value.trim() === "") ? null : Number($(id).value));
    const body = {
      interval_id: Number($("p-interval").value) || null,
      period: num("p-period"),
      bus: this.me.bus,
      side: $("p-side").value,
      blocks: [{ price_eur_per_mwh: num("p-price"), quantity_mw: num("p-qty") }],
    };
    if ($("p-device").value) body.device_id = $("p-device").value;
    try {
      await api("/bids", { method: "POST", body, headers: { "Idempotency-Key": newKey() } });
      await this.loadBids();
    } catch (e) {
      err.textContent = shown(e);
      err.hidden = false;
    }
  }

  async cancel(id) {
    const err = $("p-bid-error");
    err.hidden = true;
    try {
      await api(`/bids/${encodeURIComponent(id)}`, { method: "DELETE" });
      await this.loadBids();
    } catch (e) {
      err.textContent = shown(e);
      err.hidden = false;
    }
  }
}

const NEXT = { open: ["Close gate", "gate-closure"], "gate-closed": ["Clear", "clear"] };

// an escalated step is retried through its own route (a push only while its period runs; the
// server says so otherwise); any escalation can be acknowledged instead
const RETRYABLE = new Set(["clear", "anchor", "publish", "settle", "post-root", "finalise", "certify"]);
function retryPath(e) {
  const [kind, period] = e.step.split(":");
  if (kind === "push") return `/intervals/${e.interval_id}/push/${period}`;
  return RETRYABLE.has(kind) ? `/intervals/${e.interval_id}/${kind}` : null;
}

export class OperatorView {
  constructor(session, refresh) {
    this.session = session;
    this.refresh = refresh;
    this.stepsOf = null;
    $("o-suspend").addEventListener("submit", (e) => { e.preventDefault(); this.act("/dispatch/suspend", { reason: $("o-reason").value }); });
    $("o-resume").addEventListener("click", () => this.act("/dispatch/resume"));
    $("o-open").addEventListener("submit", (e) => { e.preventDefault(); this.act("/intervals", { start: $("o-start").value.trim() }); });
    $("o-issue").addEventListener("submit", (e) => { e.preventDefault(); this.issue(); });
    $("o-key-role").addEventListener("change", () => { $("o-key-participant").disabled = $("o-key-role").value !== "participant"; });
  }

  async act(path, body = {}) {
    flash("");
    try {
      await api(path, { method: "POST", body });
    } catch (e) {
      flash(shown(e));
    }
    await this.refresh();
  }

  async load(intervals) {
    const [disp, escalations, pending, approved, keys] = await Promise.all([
      api("/dispatch"),
      api("/escalations"),
      api("/participants?status=pending"),
      api("/participants?status=approved"),
      api("/api-keys"),
    ]);
    $("o-dispatch").textContent = disp.state === "suspended" ? `Suspended by ${disp.by} since ${disp.since}: ${disp.reason}` : "Running: the loop publishes and pushes setpoints.";
    $("o-dispatch").dataset.state = disp.state;
    if (!$("o-start").value) {
      const t = new Date(Date.now() + 3600e3);
      t.setUTCMinutes(0, 0, 0);
      $("o-start").value = t.toISOString().replace(".000", "");
    }
    $("o-intervals").tBodies[0].replaceChildren(...intervals.map((iv) => {
      const actions = document.createElement("span");
      actions.className = "inline";
      const next = NEXT[iv.state];
      if (next) actions.append(button(next[0], () => this.act(`/intervals/${iv.id}/${next[1]}`)));
      if (iv.state === "cleared" || iv.state === "published") {
        if (!iv.anchor_tx) actions.append(button("Anchor", () => this.act(`/intervals/${iv.id}/anchor`)));
        if (iv.state === "cleared") actions.append(button("Publish", () => this.act(`/intervals/${iv.id}/publish`)));
      }
      const tr = row(`#${iv.id}`, iv.start.slice(0, 16).replace("T", " "), iv.state, actions, button("Steps", () => this.steps(iv.id), "secondary"));
      tr.dataset.interval = iv.id;
      return tr;
    }));
    $("o-escalations").replaceChildren(...(escalations.length ? escalations.map((e) => {
      const li = document.createElement("li");
      li.textContent = `#${e.interval_id} ${e.step}: ${e.reason}${e.detail ? ` (${e.detail})` : ""} `;
      const again = retryPath(e);
      if (again) li.append(button("Retry", () => this.act(again)));
      li.append(button("Acknowledge", () => this.act(`/intervals/${e.interval_id}/steps/${encodeURIComponent(e.step)}/acknowledge`, { note: "acknowledged in the console" }), "secondary"));
      return li;
    }) : [Object.assign(document.createElement("li"), { textContent: "none" })]));
    $("o-pending").tBodies[0].replaceChildren(...pending.map((p) => row(p.name, p.address, p.requested_bus, p.requested_devices.join(", "), button("Approve and issue a key", () => this.approve(p)))));
    const who = $("o-key-participant");
    const keep = who.value;
    this.approved = new Map(approved.map((p) => [p.id, p]));
    who.replaceChildren(...approved.map((p) => new Option(`${p.name} (${p.id}, bus ${p.bus})`, p.id)));
    if (this.approved.has(keep)) who.value = keep;
    $("o-keys").tBodies[0].replaceChildren(...keys.map((k) => row(k.id, k.role, k.participant_id, k.label, k.revoked_at ? `revoked ${k.revoked_at.slice(0, 16)}` : "active", k.revoked_at ? "" : button("Revoke", () => this.act(`/api-keys/${k.id}/revoke`), "secondary"))));
    if (this.stepsOf !== null) await this.steps(this.stepsOf);
  }

  // approval and the participant's first key are two API calls; the key is shown once
  async approve(p) {
    flash("");
    try {
      await api(`/participants/${p.id}/approve`, { method: "POST", body: {} });
      const key = await api(`/participants/${p.id}/api-keys`, { method: "POST", body: { label: "console" } });
      this.showKey(`API key of ${p.name}`, key);
    } catch (e) {
      flash(shown(e));
    }
    await this.refresh();
  }

  // a participant's (approved) or an auditor's key; operator keys are made on the server
  async issue() {
    flash("");
    const role = $("o-key-role").value;
    const body = { role, label: $("o-key-label").value };
    if (role === "participant") body.participant_id = $("o-key-participant").value || null;
    try {
      const key = await api("/api-keys", { method: "POST", body });
      const p = this.approved?.get(key.participant_id);
      this.showKey(role === "auditor" ? "Auditor API key" : `API key of ${p ? p.name : key.participant_id}`, key);
      $("o-key-label").value = "";
    } catch (e) {
      flash(shown(e));
    }
    await this.refresh();
  }

  showKey(title, key) {
    const code = Object.assign(document.createElement("code"), { id: "o-newkey-value", textContent: key.api_key });
    $("o-newkey").replaceChildren(`${title} (key #${key.key_id}, shown once, hand it over now): `, code);
  }

  async steps(id) {
    this.stepsOf = id;
    $("o-steps-title").textContent = `Steps of interval #${id}`;
    const steps = await api(`/intervals/${id}/steps`);
    $("o-steps").tBodies[0].replaceChildren(...steps.map((s) => row(s.step, s.attempt, s.status, s.reason, s.detail, s.at.slice(0, 19))));
  }
}

export class AuditorView {
  constructor(session) {
    this.session = session;
    $("a-form").addEventListener("submit", (e) => { e.preventDefault(); this.recheck(); });
  }

  load(intervals) {
    const sel = $("a-interval");
    const keep = sel.value;
    const anchored = intervals.filter((i) => i.anchor_tx);
    sel.replaceChildren(...anchored.map((i) => new Option(`#${i.id} ${i.start.slice(0, 16).replace("T", " ")} (tx ${i.anchor_tx.slice(0, 10)}…)`, i.id)));
    if (anchored.some((i) => String(i.id) === keep)) sel.value = keep;
    document.querySelector("#a-form button").disabled = !anchored.length;
  }

  async recheck() {
    const out = $("a-result");
    out.replaceChildren(Object.assign(document.createElement("p"), { textContent: "Clearing again…", className: "muted" }));
    try {
      const r = await api(`/intervals/${$("a-interval").value}/re-clear`, { method: "POST", body: {} });
      const verdict = document.createElement("p");
      verdict.className = `verdict ${r.match ? "good" : "error"}`;
      verdict.dataset.match = String(r.match);
      verdict.textContent = r.match ? "✓ Match: the re-clearing reproduces the anchored result" : "✗ Mismatch";
      const dl = document.createElement("dl");
      dl.className = "prov";
      const facts = {
        "stored hash": r.stored_hash,
        "on-chain hash": r.anchor.on_chain_hash,
        "anchor": r.anchor.verified ? `verified (tx ${r.anchor.transaction}, block ${r.anchor.block})` : `not verified: ${r.anchor.reason}`,
        "stored document hashes to": r.stored_document_hash,
        "comparable hash (stored)": r.comparable_hash_stored,
        "comparable hash (re-cleared)": r.comparable_hash_recomputed,
        "first difference": r.first_difference ? `${r.first_difference.path}: stored ${r.first_difference.stored}, re-cleared ${r.first_difference.recomputed}` : "none",
        "not compared": r.ignored.map((k) => `stats.${k}`).join(", "),
      };
      for (const [k, v] of Object.entries(facts)) {
        dl.append(Object.assign(document.createElement("dt"), { textContent: k }), Object.assign(document.createElement("dd"), { textContent: v ?? "–" }));
      }
      out.replaceChildren(verdict, dl);
    } catch (e) {
      out.replaceChildren(Object.assign(document.createElement("p"), { className: "error", textContent: shown(e) }));
    }
  }
}
