// The DLMP heat map on a canvas: one column per period, one row per bus; hover or arrow keys
// show a cell's price and its parts.
import { rgbOf, fmt } from "./scale.js";

export class HeatMap {
  constructor(canvas, info, onPeriod) {
    this.canvas = canvas;
    this.info = info;
    this.onPeriod = onPeriod;
    this.cursor = [0, 0];
    canvas.addEventListener("mousemove", (e) => this.hover(e));
    canvas.addEventListener("click", (e) => { const c = this.cell(e); if (c) this.onPeriod?.(c[0]); });
    canvas.addEventListener("keydown", (e) => this.key(e));
  }

  // grid: {periods, buses: [index], names: Map, part(t, bus) -> {dlmp, energy, ...} or null}
  draw(grid, lo, hi) {
    this.grid = grid;
    const T = grid.periods, B = grid.buses.length;
    const c = this.canvas;
    if (!T || !B) {  // nothing to show yet
      c.width = 1;
      c.height = 1;
      c.getContext("2d").clearRect(0, 0, 1, 1);
      return;
    }
    c.width = T;
    c.height = B;
    c.style.aspectRatio = `${Math.max(T, 24)} / ${Math.min(Math.max(B, 8), Math.max(T, 24) * 1.2)}`;
    const ctx = c.getContext("2d");
    const img = ctx.createImageData(T, B);
    for (let i = 0; i < B; i += 1) {
      for (let t = 0; t < T; t += 1) {
        const row = grid.part(t, grid.buses[i]);
        const [r, g, b] = rgbOf(row ? (row.dlmp - lo) / (hi - lo) : NaN);
        const k = 4 * (i * T + t);
        img.data[k] = r; img.data[k + 1] = g; img.data[k + 2] = b; img.data[k + 3] = 255;
      }
    }
    ctx.putImageData(img, 0, 0);
  }

  cell(e) {
    if (!this.grid) return null;
    const r = this.canvas.getBoundingClientRect();
    const t = Math.floor(((e.clientX - r.left) / r.width) * this.grid.periods);
    const i = Math.floor(((e.clientY - r.top) / r.height) * this.grid.buses.length);
    if (t < 0 || i < 0 || t >= this.grid.periods || i >= this.grid.buses.length) return null;
    return [t, i];
  }

  hover(e) {
    const c = this.cell(e);
    if (c) this.show(c[0], c[1]);
  }

  key(e) {
    if (!this.grid) return;
    const moves = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
    const m = moves[e.key];
    if (m) {
      e.preventDefault();
      const t = Math.min(this.grid.periods - 1, Math.max(0, this.cursor[0] + m[0]));
      const i = Math.min(this.grid.buses.length - 1, Math.max(0, this.cursor[1] + m[1]));
      this.show(t, i);
    } else if (e.key === "Enter") {
      this.onPeriod?.(this.cursor[0]);
    }
  }

  show(t, i) {
    this.cursor = [t, i];
    const bus = this.grid.buses[i];
    const p = this.grid.part(t, bus);
    const name = this.grid.names.get(bus) ?? `bus ${bus}`;
    this.info.textContent = p
      ? `period ${t}, ${name}: DLMP ${fmt(p.dlmp)} EUR/MWh = energy ${fmt(p.energy)} + loss ${fmt(p.loss)} + congestion ${fmt(p.congestion)} + voltage ${fmt(p.voltage)}`
      : `period ${t}, ${name}: no price`;
  }
}
