// The console's only way to the server: same-origin JSON with the signed-in API key.
const KEY = "feederdao.apikey";

export class ApiError extends Error {
  constructor(status, message, field) {
    super(message);
    this.status = status;
    this.field = field;
  }
  // What the API said, as it said it: "field: message".
  get text() {
    return this.field && this.field !== "body" ? `${this.field}: ${this.message}` : this.message;
  }
}

export const auth = {
  get key() { return sessionStorage.getItem(KEY); },
  set key(value) {
    if (value) sessionStorage.setItem(KEY, value); else sessionStorage.removeItem(KEY);
  },
  // when a wallet sign-in's session key ends (null for an API key typed in)
  get until() { return sessionStorage.getItem(`${KEY}.until`); },
  set until(value) {
    if (value) sessionStorage.setItem(`${KEY}.until`, value); else sessionStorage.removeItem(`${KEY}.until`);
  },
};

export async function api(path, { method = "GET", body, headers = {}, anonymous = false } = {}) {
  const h = { Accept: "application/json", ...headers };
  if (auth.key && !anonymous) h.Authorization = `Bearer ${auth.key}`;
  if (body !== undefined) h["Content-Type"] = "application/json";
  const r = await fetch(path, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = { error: text }; }
  }
  if (!r.ok) {
    const msg = data && typeof data.error === "string" ? data.error : `${r.status} ${r.statusText}`;
    // the key was revoked, rotated or has expired: the page signs out (main.js)
    if (r.status === 401 && h.Authorization) document.dispatchEvent(new CustomEvent("keyrefused", { detail: msg }));
    throw new ApiError(r.status, msg, data ? data.field : null);
  }
  return data;
}

export function newKey() {
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}
