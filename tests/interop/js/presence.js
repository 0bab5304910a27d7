'use strict';
// Presence: users 42 and 43 subscribe chat:p-<random>; sub.presence() lists both client
// ids with their users and sub.presenceStats() counts 2 clients of 2 users; after user 43
// unsubscribes both show 1.

const crypto = require('node:crypto');
const c = require('./common');

const CHANNEL = `chat:p-${crypto.randomBytes(6).toString('hex')}`;

// Polls `check` (an async function returning true when done) every 100 ms for up to 5 s.
async function eventually(check, what) {
  const deadline = Date.now() + 5000;
  let last;
  for (;;) {
    last = await check();
    if (last === true) {
      return;
    }
    if (Date.now() > deadline) {
      throw new Error(`${what}: last seen ${JSON.stringify(last)}`);
    }
    await c.sleep(100);
  }
}

c.main(async (cleanup) => {
  const a = cleanup.add(c.newClient({ token: c.makeToken({ sub: '42' }) }));
  const b = cleanup.add(c.newClient({ token: c.makeToken({ sub: '43' }) }));
  const aCtx = await c.connect(a);
  const bCtx = await c.connect(b);
  const subA = c.newSubscription(a, CHANNEL);
  const subB = c.newSubscription(b, CHANNEL);
  await c.subscribe(subA);
  await c.subscribe(subB);

  const presence = await c.withTimeout(subA.presence(), 'sub.presence()');
  const clients = presence.clients;
  c.assert.deepEqual(Object.keys(clients).sort(), [aCtx.client, bCtx.client].sort(), `presence ${JSON.stringify(presence)}`);
  c.assert.equal(clients[aCtx.client].client, aCtx.client, `presence ${JSON.stringify(presence)}`);
  c.assert.equal(clients[aCtx.client].user, '42', `presence ${JSON.stringify(presence)}`);
  c.assert.equal(clients[bCtx.client].client, bCtx.client, `presence ${JSON.stringify(presence)}`);
  c.assert.equal(clients[bCtx.client].user, '43', `presence ${JSON.stringify(presence)}`);

  const stats = await c.withTimeout(subA.presenceStats(), 'sub.presenceStats()');
  c.assert.deepEqual(stats, { numClients: 2, numUsers: 2 }, 'presence stats with both subscribed');

  const unsubscribed = c.waitEvent(subB, 'unsubscribed');
  subB.unsubscribe();
  await unsubscribed;
  // The unsubscribe command has no reply to wait for: poll until the server has applied it.
  await eventually(async () => {
    const s = await c.withTimeout(subA.presenceStats(), 'sub.presenceStats()');
    return (s.numClients === 1 && s.numUsers === 1) || s;
  }, 'presence stats after user 43 unsubscribed');
  const after = await c.withTimeout(subA.presence(), 'sub.presence()');
  c.assert.deepEqual(Object.keys(after.clients), [aCtx.client], `presence after unsubscribe ${JSON.stringify(after)}`);
  c.assert.equal(after.clients[aCtx.client].user, '42');
  return `presence on ${CHANNEL} listed users 42 and 43 (2 clients, 2 users), then 1/1 after 43 unsubscribed`;
});
