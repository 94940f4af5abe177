// The public market view: feeder map, heat map, interval timeline, governed parameters.
import { api } from "./api.js";
import { FeederMap } from "./feeder.js";
import { HeatMap } from "./heatmap.js";
import { domain, fmt, gradientCss, robustDomain } from "./scale.js";

const $ = (id) => document.getElementById(id);
const STEPS = [
  ["open", (iv) => true],
  ["gate closed", (iv) => iv.state !== "open"],
  ["cleared", (iv) => ["cleared", "published"].includes(iv.state)],
  ["anchored", (iv) => Boolean(iv.anchor_tx)],
  ["published", (iv) => iv.state === "published"],
];

export class MarketView {
  constructor(session) {
    this.session = session;
    this.intervals = [];
    this.selected = null;
    this.period = 0;
    this.map = new FeederMap($("m-feeder"), $("m-bus-info"));
    this.heat = new HeatMap($("m-heat"), $("m-heat-info"), (t) => this.setPeriod(t));
    $("m-period").addEventListener("input", (e) => this.setPeriod(Number(e.target.value)));
    $("m-interval").addEventListener("change", (e) => this.select(Number(e.target.value)));
    $("m-colour").addEventListener("change", () => this.loadResult());
    $("m-play").addEventListener("click", () => this.togglePlay());
    $("m-legend").innerHTML = '<span id="m-lo"></span><span class="bar"></span><span id="m-hi"></span><span id="m-unit"></span>';
    $("m-legend").querySelector(".bar").style.background = gradientCss();
  }

  // First paint: the interval list, the feeder and the governed parameters are asked for at
  // once; the selected interval's prices as soon as the list says which one, without waiting
  // for the feeder's drawing.
  async start() {
    performance.mark("console:start");
    const netP = api("/network", { anonymous: true });
    const paramsP = this.loadParameters();
    await this.refresh();  // this.net is not set yet: refresh() loads no prices
    const iv = this.current();
    const resultP = this.fetchResult(iv);
    resultP.catch(() => {});  // awaited below, after the feeder is drawn
    const net = await netP;
    performance.mark("console:fetched");
    this.net = net;
    $("network-name").textContent = `${net.name} · ${net.buses.length} buses`;
    $("m-layout").textContent = net.geographic ? "(geographic)" : "(one-line tree from the slack)";
    this.map.draw(net);
    performance.mark("console:drawn");
    this.names = new Map(net.buses.map((b) => [b.index, b.name]));
    this.showResult(iv, await resultP);
    await paramsP;
  }

  current() {
    return this.intervals.find((i) => i.id === this.selected);
  }

  visible(iv) {
    return iv.state === "published" || (this.session.seesAll && iv.state === "cleared");
  }

  // the intervals list and timeline; reload the selected interval's prices when it changed
  async refresh() {
    const list = await api("/intervals?limit=50", { anonymous: !this.session.seesAll });
    const before = this.intervals.find((i) => i.id === this.selected);
    this.intervals = list;
    const shown = list.filter((iv) => this.visible(iv));
    if (this.selected === null || !list.some((i) => i.id === this.selected)) {
      this.selected = (shown[0] || list[0] || {}).id ?? null;
    }
    const sel = $("m-interval");
    sel.replaceChildren(...list.map((iv) => {
      const o = new Option(`#${iv.id} ${iv.start.slice(0, 16).replace("T", " ")} (${iv.state})`, iv.id);
      o.selected = iv.id === this.selected;
      return o;
    }));
    this.drawTimeline();
    const now = list.find((i) => i.id === this.selected);
    const changed = !before || !now || before.state !== now.state || before.anchor_tx !== now.anchor_tx;
    if (changed && this.net) await this.loadResult();
    document.dispatchEvent(new CustomEvent("intervals", { detail: list }));
    return list;
  }

  drawTimeline() {
    const ol = $("m-timeline");
    ol.replaceChildren(...this.intervals.map((iv) => {
      const li = document.createElement("li");
      li.dataset.interval = iv.id;
      li.dataset.state = iv.state;
      if (iv.id === this.selected) li.className = "sel";
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = `#${iv.id} ${iv.start.slice(0, 16).replace("T", " ")}`;
      b.addEventListener("click", () => this.select(iv.id));
      const chips = document.createElement("span");
      chips.className = "chips";
      for (const [name, done] of STEPS) {
        const c = document.createElement("span");
        c.className = `chip${done(iv) ? " done" : ""}`;
        c.textContent = `${done(iv) ? "✓ " : ""}${name}`;
        chips.append(c);
      }
      li.append(b, chips);
      return li;
    }));
  }

  async select(id) {
    this.selected = id;
    $("m-interval").value = String(id);
    this.drawTimeline();
    await this.loadResult();
  }

  async loadResult() {
    const iv = this.current();
    this.showResult(iv, await this.fetchResult(iv));
  }

  // the interval's prices (and AC voltages, and its anchor) if the caller may see them
  async fetchResult(iv) {
    if (!iv || !this.visible(iv)) return null;
    const opts = { anonymous: !this.session.seesAll };
    const wantVoltage = $("m-colour").value === "voltage" && this.session.seesAll;
    const [g, doc, anchor] = await Promise.all([
      api(`/intervals/${iv.id}/price-grid?parts=dlmp`, opts),  // the parts come after the paint
      wantVoltage ? api(`/intervals/${iv.id}/result`) : Promise.resolve(null),
      iv.anchor_tx ? api(`/intervals/${iv.id}/anchor`, opts) : Promise.resolve(null),
    ]);
    return { g, doc, anchor };
  }

  showResult(iv, got) {
    this.grid = null;
    this.voltage = null;
    $("m-anchor").textContent = "";
    if (!got) {
      this.map.colour(new Map(), 0, 1, "", null);
      $("m-bus-info").textContent = iv ? `Interval #${iv.id} is ${iv.state}: no prices yet.` : "No interval yet.";
      this.setPeriodRange(iv ? iv.periods : 1);
      this.heat.draw({ periods: 1, buses: [], names: new Map(), part: () => null, dlmp: () => undefined }, 0, 1);
      return;
    }
    const { g, doc, anchor } = got;
    performance.mark("console:prices");
    const col = new Map(g.buses.map((b, i) => [b, i]));
    // the DLMP's parts (energy, loss, congestion, voltage) are undefined until loadParts()
    const part = (t, bus) => {
      const i = col.get(bus);
      if (i === undefined || !g.dlmp[t]) return null;
      const of = (k) => (g[k] ? g[k][t][i] : undefined);
      return { dlmp: g.dlmp[t][i], energy: of("energy"), loss: of("loss"), congestion: of("congestion"), voltage: of("voltage") };
    };
    const buses = this.net.buses.map((b) => b.index);
    const colOf = buses.map((b) => col.get(b) ?? -1);  // the heat map's rows in the grid
    const dlmp = (t, row) => (colOf[row] < 0 || !g.dlmp[t] ? undefined : g.dlmp[t][colOf[row]]);
    this.grid = { periods: iv.periods, buses, names: this.names, part, dlmp, g, col };
    [this.lo, this.hi, this.clamped] = robustDomain(g.dlmp.flat());
    if (doc) {
      this.voltage = { buses: doc.bus_indices, vm: doc.ac_vm_pu || doc.lp_vm_pu };
      [this.vlo, this.vhi] = domain(this.voltage.vm.flat());
    }
    performance.mark("console:scaled");
    this.heat.draw(this.grid, this.lo, this.hi);
    performance.mark("console:heat");
    if (anchor) {
      $("m-anchor").textContent = `anchor: tx ${anchor.transaction} in block ${anchor.block} (chain ${anchor.chain_id}); on chain now ${anchor.on_chain_hash ?? "–"}: ${anchor.verified ? "verified ✓" : `not verified (${anchor.reason})`}`;
    } else {
      $("m-anchor").textContent = `result ${iv.result_hash ?? ""}: not anchored yet`;
    }
    this.setPeriodRange(iv.periods);
    this.paint();
    this.loadParts(iv, g);
  }

  // the DLMP's parts, fetched once the map and heat map are painted (for hover and focus)
  async loadParts(iv, g) {
    const opts = { anonymous: !this.session.seesAll };
    let all;
    try {
      all = await api(`/intervals/${iv.id}/price-grid`, opts);
    } catch {
      return;  // the parts stay "loading"; the next refresh tries again
    }
    if (!this.grid || this.grid.g !== g) return;  // another interval is shown by now
    for (const k of ["energy", "loss", "congestion", "voltage"]) g[k] = all[k];
    this.paint();
    this.heat.refresh();
    document.body.dataset.parts = String(iv.id);
  }

  setPeriodRange(n) {
    const s = $("m-period");
    s.max = String(Math.max(0, n - 1));
    if (this.period > n - 1) this.period = 0;
    s.value = String(this.period);
    $("m-period-out").textContent = `${this.period + 1} / ${n}`;
  }

  setPeriod(t) {
    this.period = t;
    $("m-period").value = String(t);
    const iv = this.intervals.find((i) => i.id === this.selected);
    $("m-period-out").textContent = `${t + 1} / ${iv ? iv.periods : 1}`;
    this.paint();
  }

  paint() {
    if (!this.grid) return;
    const t = this.period;
    const parts = new Map();
    for (const bus of this.grid.buses) {
      const p = this.grid.part(t, bus);
      if (p) parts.set(bus, p);
    }
    let values, lo, hi, unit;
    if (this.voltage) {
      values = new Map(this.voltage.buses.map((b, i) => [b, this.voltage.vm[t][i]]));
      [lo, hi, unit] = [this.vlo, this.vhi, "pu"];
    } else {
      values = new Map([...parts].map(([b, p]) => [b, p.dlmp]));
      [lo, hi, unit] = [this.lo, this.hi, "EUR/MWh"];
    }
    this.map.colour(values, lo, hi, unit, parts);
    const beyond = unit !== "pu" && this.clamped;
    $("m-lo").textContent = `${beyond ? "≤ " : ""}${fmt(lo, unit === "pu" ? 3 : 2)}`;
    $("m-hi").textContent = `${beyond ? "≥ " : ""}${fmt(hi, unit === "pu" ? 3 : 2)}`;
    $("m-unit").textContent = unit;
    document.body.dataset.painted = `${this.selected}:${t}`;
    if (window.firstPaintMs === undefined) window.firstPaintMs = performance.now();
  }

  togglePlay() {
    const b = $("m-play");
    if (this.timer) {
      clearInterval(this.timer);
      this.timer = null;
      b.textContent = "Play";
      b.setAttribute("aria-pressed", "false");
      return;
    }
    b.textContent = "Pause";
    b.setAttribute("aria-pressed", "true");
    this.timer = setInterval(() => {
      const n = Number($("m-period").max) + 1;
      this.setPeriod((this.period + 1) % n);
    }, 500);
  }

  async loadParameters() {
    const p = await api("/governance/parameters", { anonymous: true });
    const body = $("m-params").tBodies[0];
    body.replaceChildren(...Object.entries(p.values).map(([k, v]) => {
      const tr = document.createElement("tr");
      tr.innerHTML = "<td></td><td class='num'></td>";
      tr.cells[0].textContent = k;
      tr.cells[1].textContent = String(v);
      return tr;
    }));
    const prov = p.provenance || {};
    const shown = { status: p.status, source: prov.source, block: prov.block_number, "block hash": prov.block_hash, transaction: prov.transaction, proposal: prov.proposal_id, changes: (prov.changes || []).length, rejected: (prov.rejected || []).join("; ") || "none", alarms: p.alarms.join("; ") || "none" };
    $("m-prov").replaceChildren(...Object.entries(shown).flatMap(([k, v]) => {
      const dt = document.createElement("dt"), dd = document.createElement("dd");
      dt.textContent = k;
      dd.textContent = v === undefined || v === null || v === "" ? "–" : String(v);
      return [dt, dd];
    }));
  }
}
