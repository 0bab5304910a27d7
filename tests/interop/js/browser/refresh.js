'use strict';
// Connection token refresh in Chromium: the page's client has only `getToken`, which asks the
// test for a token valid 3 seconds. The SDK refreshes it before it expires, twice and more,
// over the same connection (same client id, no reconnect), and the connection still receives
// publications after the first token's expiry.

const crypto = require('node:crypto');
const c = require('../common');
const { withBrowser } = require('./harness');

const CHANNEL = `chat:br-refresh-${crypto.randomBytes(4).toString('hex')}`;

c.main(() => withBrowser(async ({ open, gyre }) => {
  const page = await open('/');
  let issued = 0;
  await page.exposeFunction('freshToken', () => {
    issued += 1;
    return c.makeToken({ sub: '42', exp: Math.floor(Date.now() / 1000) + 3 });
  });
  const firstExpiry = Date.now() + 3000;
  const first = await page.evaluate(async ({ endpoint, ch }) => {
    const t = window.gyreTest;
    const client = t.newClient(endpoint, { getToken: () => window.freshToken() });
    t.state.client = client;
    const connected = await t.connect(client);
    t.state.reconnects = t.collect(client, 'connecting');
    const sub = client.newSubscription(ch);
    t.state.pubs = t.collect(sub, 'publication');
    await t.subscribe(sub);
    return connected.client;
  }, { endpoint: `${gyre.replace(/^http/, 'ws')}/connection/websocket`, ch: CHANNEL });
  // The first token, then two refreshes: the second is asked for only once the server took the
  // first (it answers a refresh with the new token's lifetime).
  const deadline = Date.now() + 20000;
  while (issued < 3) {
    c.assert.ok(Date.now() < deadline, `only ${issued} tokens asked for in 20 s`);
    await c.sleep(100);
  }
  c.assert.ok(Date.now() > firstExpiry, 'the first token has expired by now');
  await c.apiPublish(CHANNEL, { after: 'expiry' });
  const state = await page.evaluate(async () => {
    const t = window.gyreTest;
    const pubs = await t.state.pubs.waitCount(1);
    return { client: t.state.client.state, reconnects: t.state.reconnects.items.length, data: pubs[0].data, errors: t.state.client.errors };
  });
  c.assert.equal(state.client, 'connected');
  c.assert.equal(state.reconnects, 0, 'no reconnect while refreshing');
  c.assert.deepEqual(state.data, { after: 'expiry' });
  c.assert.deepEqual(state.errors, [], 'client errors');
  return `client ${first} refreshed its token ${issued - 1} times and still receives`;
}));
