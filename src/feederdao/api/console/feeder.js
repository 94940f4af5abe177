// The feeder drawn as SVG by our own code: geographic when every bus has coordinates, else a
// one-line tree (depth from the slack across, one row per branch of the tree).
import { viridis, fmt } from "./scale.js";

const NS = "http://www.w3.org/2000/svg";
const el = (name, attrs = {}) => {
  const e = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
};

function treeLayout(net) {
  const adj = new Map(net.buses.map((b) => [b.index, []]));
  for (const br of net.branches) {
    adj.get(br.from_bus)?.push(br.to_bus);
    adj.get(br.to_bus)?.push(br.from_bus);
  }
  const pos = new Map();
  let row = 0, maxDepth = 0;
  const roots = net.slack_buses.length ? net.slack_buses : [net.buses[0].index];
  const seen = new Set();
  // iterative depth-first walk: a bus's first child stays on its row (a one-line chain)
  for (const root of [...roots, ...net.buses.map((b) => b.index)]) {
    if (seen.has(root)) continue;
    const stack = [[root, 0, true]];
    while (stack.length) {
      const [bus, depth, sameRow] = stack.pop();
      if (seen.has(bus)) continue;
      seen.add(bus);
      if (!sameRow && pos.size) row += 1;
      pos.set(bus, [depth, row]);
      maxDepth = Math.max(maxDepth, depth);
      const kids = (adj.get(bus) || []).filter((k) => !seen.has(k));
      for (let i = kids.length - 1; i >= 0; i -= 1) stack.push([kids[i], depth + 1, i === 0]);
    }
  }
  const gx = 26, gy = 22, pad = 14;
  const xy = new Map();
  for (const [bus, [d, r]] of pos) xy.set(bus, [pad + d * gx, pad + r * gy]);
  return { xy, width: pad * 2 + maxDepth * gx, height: pad * 2 + row * gy };
}

function geoLayout(net) {
  const xs = net.buses.map((b) => b.x), ys = net.buses.map((b) => b.y);
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const dx = x1 - x0 || 1, dy = y1 - y0 || 1;
  let k = 900 / dx;
  if (dy * k > 700) k = 700 / dy;
  const pad = 14, xy = new Map();
  for (const b of net.buses) xy.set(b.index, [pad + (b.x - x0) * k, pad + (y1 - b.y) * k]);
  return { xy, width: dx * k + 2 * pad, height: dy * k + 2 * pad };
}

export class FeederMap {
  constructor(host, info, onFocus) {
    this.host = host;
    this.info = info;
    this.onFocus = onFocus;
    this.circles = new Map();
  }

  draw(net) {
    this.net = net;
    this.byIndex = new Map(net.buses.map((b) => [b.index, b]));
    const lay = net.geographic ? geoLayout(net) : treeLayout(net);
    const svg = el("svg", {
      viewBox: `0 0 ${lay.width} ${lay.height}`,
      role: "group",
      "aria-label": `${net.name}: ${net.buses.length} buses, ${net.branches.length} branches`,
    });
    // a deep tree keeps 15 px per level (the box scrolls) so a 180-bus feeder stays legible
    if (!net.geographic) svg.style.minWidth = `${Math.min(lay.width * 0.6, 1400)}px`;
    const lines = el("g");
    for (const br of net.branches) {
      const a = lay.xy.get(br.from_bus), b = lay.xy.get(br.to_bus);
      if (!a || !b) continue;
      const d = net.geographic ? `M${a[0]},${a[1]}L${b[0]},${b[1]}` : `M${a[0]},${a[1]}V${b[1]}H${b[0]}`;
      lines.append(el("path", { d, class: "br" }));
    }
    svg.append(lines);
    const slack = new Set(net.slack_buses);
    for (const bus of net.buses) {
      const [x, y] = lay.xy.get(bus.index);
      const c = el("circle", {
        cx: x, cy: y, r: slack.has(bus.index) ? 8 : 6,
        class: `bus${slack.has(bus.index) ? " slack" : ""}`,
        tabindex: "0", "data-bus": bus.index, fill: "#bbbbbb",
      });
      const t = el("title");
      t.textContent = bus.name;
      c.append(t);
      c.addEventListener("mouseenter", () => this.focus(bus.index));
      c.addEventListener("focus", () => this.focus(bus.index));
      this.circles.set(bus.index, c);
      svg.append(c);
    }
    this.host.replaceChildren(svg);
  }

  // values: Map bus -> number; lo/hi: the scale's domain; unit for the tooltip.
  colour(values, lo, hi, unit, parts) {
    this.values = values;
    this.unit = unit;
    this.parts = parts;
    for (const [bus, c] of this.circles) {
      const v = values.get(bus);
      c.setAttribute("fill", viridis(v === undefined ? NaN : (v - lo) / (hi - lo)));
      const name = this.byIndex.get(bus)?.name ?? bus;
      c.firstChild.textContent = `${name}: ${fmt(v, 3)} ${unit}`;
    }
    if (this.selected !== undefined) this.focus(this.selected);
  }

  focus(bus) {
    this.circles.get(this.selected)?.classList.remove("sel");
    this.selected = bus;
    this.circles.get(bus)?.classList.add("sel");
    const b = this.byIndex.get(bus);
    const v = this.values?.get(bus);
    const p = this.parts?.get(bus);
    let text = `${b.name} (bus ${bus}, ${fmt(b.vn_kv, 2)} kV, ${b.devices} device(s)): ${fmt(v, 3)} ${this.unit ?? ""}`;
    if (p && p.energy === undefined) text += " (its parts are loading…)";
    else if (p) text += ` = energy ${fmt(p.energy)} + loss ${fmt(p.loss)} + congestion ${fmt(p.congestion)} + voltage ${fmt(p.voltage)}`;
    this.info.textContent = text;
    this.onFocus?.(bus);
  }
}
