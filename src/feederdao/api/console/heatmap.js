// The DLMP heat map on a canvas: one column per period, one row per bus; hover or arrow keys
// show a cell's price and its parts.
import { rgbOf, fmt } from "./scale.js";

// viridis at 256 steps, made once: a cell's colour is a look-up, not a string parsed
const STEPS = 256;
const LUT = new Uint8ClampedArray(3 * STEPS);
for (let j = 0; j < STEPS; j += 1) LUT.set(rgbOf(j / (STEPS - 1)), 3 * j);
const NO_VALUE = rgbOf(NaN)[0];

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

  // grid: {periods, buses: [index], names: Map, part(t, bus) -> {dlmp, energy, ...} or null,
  //        dlmp(t, row) -> the DLMP of the row-th bus in period t, or undefined}
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
    const data = img.data, lut = LUT, span = hi - lo;
    for (let i = 0; i < B; i += 1) {
      for (let t = 0; t < T; t += 1) {
        const v = grid.dlmp(t, i);
        const k = 4 * (i * T + t);
        if (v === undefined || !Number.isFinite(v)) {
          data[k] = data[k + 1] = data[k + 2] = NO_VALUE;
        } else {
          const j = 3 * Math.round(Math.min(1, Math.max(0, (v - lo) / span)) * (STEPS - 1));
          data[k] = lut[j]; data[k + 1] = lut[j + 1]; data[k + 2] = lut[j + 2];
        }
        data[k + 3] = 255;
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
    this.shown = true;
    const bus = this.grid.buses[i];
    const p = this.grid.part(t, bus);
    const name = this.grid.names.get(bus) ?? `bus ${bus}`;
    let text = `period ${t}, ${name}: no price`;
    if (p) {
      text = `period ${t}, ${name}: DLMP ${fmt(p.dlmp)} EUR/MWh`;
      text += p.energy === undefined ? " (its parts are loading…)" : ` = energy ${fmt(p.energy)} + loss ${fmt(p.loss)} + congestion ${fmt(p.congestion)} + voltage ${fmt(p.voltage)}`;
    }
    this.info.textContent = text;
  }

  // the cell shown, again (its parts have arrived)
  refresh() {
    if (this.shown && this.grid && this.grid.buses.length) this.show(...this.cursor);
  }
}
