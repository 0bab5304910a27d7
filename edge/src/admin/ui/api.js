// Requests to the node's admin endpoints. The session token lives in sessionStorage (it goes
// with the tab, and nothing sends it but this code) and travels as `Authorization: token <T>`.

const KEY = 'gyre-admin-token';
const base = new URL('admin/', document.baseURI);

export const session = {
  get: () => sessionStorage.getItem(KEY),
  set: (token) => sessionStorage.setItem(KEY, token),
  clear: () => sessionStorage.removeItem(KEY),
};

function headers(extra = {}) {
  const h = { ...extra };
  const token = session.get();
  if (token) h.Authorization = `token ${token}`;
  return h;
}

// An error carrying the HTTP status, so callers can tell "signed out" from "failed".
export class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function json(resp) {
  const text = await resp.text();
  let body;
  try {
    body = text ? JSON.parse(text) : {};
  } catch (e) {
    throw new HttpError(resp.status, `not JSON (HTTP ${resp.status}): ${text.slice(0, 200)}`);
  }
  if (!resp.ok) throw new HttpError(resp.status, body.error || `HTTP ${resp.status}`);
  return body;
}

export async function init() {
  return json(await fetch(new URL('init', base), { headers: headers(), cache: 'no-store' }));
}

export async function signIn(password) {
  const body = new URLSearchParams({ password });
  const reply = await json(await fetch(new URL('auth', base), { method: 'POST', body }));
  session.set(reply.token);
}

// Runs one server API method; resolves with `{result}` or `{error}` as the node answered.
export async function call(method, params) {
  const resp = await fetch(new URL('api', base), {
    method: 'POST',
    headers: headers({ 'Content-Type': 'application/json' }),
    body: JSON.stringify({ method, params }),
  });
  return json(resp);
}

export async function namespaces() {
  return json(await fetch(new URL('namespaces', base), { headers: headers(), cache: 'no-store' }));
}

// Streams a channel's publications: calls `onEvent` with each line the node sends until
// `signal` aborts. Resolves when the stream ends.
export async function tail(channel, onEvent, signal) {
  const resp = await fetch(new URL('tail', base), {
    method: 'POST',
    headers: headers({ 'Content-Type': 'application/json' }),
    body: JSON.stringify({ channel }),
    signal,
  });
  if (!resp.ok) await json(resp);
  const reader = resp.body.getReader();
  const decoder = new TextDecoder();
  let buffered = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffered += decoder.decode(value, { stream: true });
    let nl;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl).trim();
      buffered = buffered.slice(nl + 1);
      if (line) onEvent(JSON.parse(line));
    }
  }
}
