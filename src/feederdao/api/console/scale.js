// Perceptually uniform, colour-blind-safe scales (viridis's published anchor colours,
// interpolated linearly in sRGB), and number formatting.
const VIRIDIS = ["#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89", "#35b779", "#6ece58", "#fde725"];
const RGB = VIRIDIS.map((h) => [1, 3, 5].map((i) => parseInt(h.slice(i, i + 2), 16)));

export function viridis(t) {
  if (!Number.isFinite(t)) return "#bbbbbb";
  const x = Math.min(1, Math.max(0, t)) * (RGB.length - 1);
  const i = Math.min(RGB.length - 2, Math.floor(x));
  const f = x - i;
  const c = RGB[i].map((v, k) => Math.round(v + (RGB[i + 1][k] - v) * f));
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}

export function rgbOf(t) {
  const m = viridis(t).match(/\d+/g);
  return m ? m.map(Number) : [187, 187, 187];
}

export function domain(values) {
  let lo = Infinity, hi = -Infinity;
  for (const v of values) if (Number.isFinite(v)) { if (v < lo) lo = v; if (v > hi) hi = v; }
  if (lo === Infinity) return [0, 1];
  if (hi - lo < 1e-9) return [lo - 0.5, hi + 0.5];
  return [lo, hi];
}

// The 2nd to 98th percentile: one price at the floor (-3000) must not wash every other bus
// into one colour; values beyond are drawn at the scale's ends (the legend says so).
export function robustDomain(values) {
  const v = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (v.length < 50) return [...domain(v), false];
  const at = (q) => v[Math.min(v.length - 1, Math.max(0, Math.round(q * (v.length - 1))))];
  const [lo, hi] = domain([at(0.02), at(0.98)]);
  return [lo, hi, v[0] < lo || v[v.length - 1] > hi];
}

export function gradientCss() {
  return `linear-gradient(to right, ${VIRIDIS.join(", ")})`;
}

export const fmt = (v, d = 2) => (v === null || v === undefined || !Number.isFinite(v) ? "–" : v.toFixed(d));
