'use strict';
// Origin checks in Chromium: a page on http://localhost:P (not matched by the node's
// `allowed_origins: ["http://127.0.0.1:*"]`) is refused over WebSocket, HTTP-streaming and
// SSE (the SDK reports a transport error and never connects) and cannot read a
// uni_http_stream answer; the same page served as http://127.0.0.1:P (matched by the
// pattern) connects.

const c = require('../common');
const { withBrowser } = require('./harness');

// Resolves with the first transport error of a client connecting from `page`, or with
// `connected` if it connects.
function attempt(page, transport, endpoint, gyre) {
  return page.evaluate(async ({ transport, endpoint, token, emulation }) => {
    const t = window.gyreTest;
    const client = t.newClient([{ transport, endpoint }], { token, emulationEndpoint: emulation });
    const outcome = Promise.race([
      t.waitEvent(client, 'error', { predicate: (e) => e.type === 'transport' }).then(() => 'refused'),
      t.waitEvent(client, 'connected').then(() => 'connected'),
    ]);
    client.connect();
    try {
      return await outcome;
    } finally {
      client.disconnect();
    }
  }, { transport, endpoint, token: c.makeToken({ sub: '42' }), emulation: `${gyre}/emulation` });
}

c.main(() => withBrowser(async ({ open, otherOrigin, gyre }) => {
  const ws = `${gyre.replace(/^http/, 'ws')}/connection/websocket`;
  const foreign = await open('/', { origin: otherOrigin });
  for (const [transport, endpoint] of [
    ['websocket', ws],
    ['http_stream', `${gyre}/connection/http_stream`],
    ['sse', `${gyre}/connection/sse`],
  ]) {
    const outcome = await attempt(foreign, transport, endpoint, gyre);
    c.assert.equal(outcome, 'refused', `${transport} from ${otherOrigin}`);
  }
  const blocked = await foreign.evaluate(async (url) => {
    try {
      const resp = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' });
      return `answered ${resp.status}`;
    } catch (e) {
      return e.name;
    }
  }, `${gyre}/connection/uni_http_stream`);
  c.assert.equal(blocked, 'TypeError', 'a cross-origin fetch from a refused origin fails');

  const allowed = await open('/');
  c.assert.equal(await attempt(allowed, 'websocket', ws, gyre), 'connected', 'websocket from the pattern-matched origin');
  c.assert.equal(
    await attempt(allowed, 'http_stream', `${gyre}/connection/http_stream`, gyre),
    'connected',
    'http_stream from the pattern-matched origin',
  );
  return `refused from ${otherOrigin} over websocket, http_stream, sse and fetch; accepted from 127.0.0.1`;
}));
