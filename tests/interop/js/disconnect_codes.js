'use strict';
// Disconnect codes from the API: 4000 is in the reconnect range (4000-4499), so the
// client goes `connecting` with code 4000 and connects again by itself; 4500 is terminal
// (4500-4999), so the client is `disconnected` with code 4500 and does not reconnect.

const crypto = require('node:crypto');
const c = require('./common');

// Users of their own, so the API disconnects reach only these clients.
const USER_RECONNECT = `dc-${crypto.randomBytes(4).toString('hex')}`;
const USER_TERMINAL = `dc-${crypto.randomBytes(4).toString('hex')}`;

async function apiDisconnect(user, code, reason) {
  const reply = await c.api('disconnect', { user, disconnect: { code, reason } });
  c.assert.ok(!reply.error, `disconnect API reply ${JSON.stringify(reply)}`);
}

c.main(async (cleanup) => {
  // 4000: reconnect.
  const a = cleanup.add(c.newClient({ token: c.makeToken({ sub: USER_RECONNECT }) }));
  const aDisconnecteds = c.collect(a, 'disconnected');
  const first = await c.connect(a);
  const connecting = c.waitEvent(a, 'connecting');
  const reconnected = c.waitEvent(a, 'connected');
  await apiDisconnect(USER_RECONNECT, 4000, 'custom reconnect');
  const away = await connecting;
  c.assert.equal(away.code, 4000, `connecting ${JSON.stringify(away)}`);
  c.assert.equal(away.reason, 'custom reconnect', `connecting ${JSON.stringify(away)}`);
  const again = await reconnected;
  c.assert.notEqual(again.client, first.client, 'a reconnect gets a new client id');
  c.assert.deepEqual(aDisconnecteds.items, [], 'disconnected events of the reconnecting client');

  // 4500: terminal.
  const b = cleanup.add(c.newClient({ token: c.makeToken({ sub: USER_TERMINAL }) }));
  await c.connect(b);
  const bConnectings = c.collect(b, 'connecting');
  const bConnecteds = c.collect(b, 'connected');
  const disconnected = c.waitEvent(b, 'disconnected');
  await apiDisconnect(USER_TERMINAL, 4500, 'custom terminal');
  const gone = await disconnected;
  c.assert.equal(gone.code, 4500, `disconnected ${JSON.stringify(gone)}`);
  c.assert.equal(gone.reason, 'custom terminal', `disconnected ${JSON.stringify(gone)}`);
  await c.sleep(1500);
  c.assert.deepEqual(bConnectings.items, [], 'connecting events after the 4500 disconnect');
  c.assert.deepEqual(bConnecteds.items, [], 'connected events after the 4500 disconnect');
  c.assert.equal(b.state, 'disconnected');
  // The first client is unaffected by the second user's disconnect.
  c.assert.equal(a.state, 'connected');
  return 'API disconnect 4000: connecting (4000) then connected again; 4500: disconnected (4500), no reconnect within 1.5 s';
});
