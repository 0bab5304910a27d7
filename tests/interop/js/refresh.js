'use strict';
// Connection token refresh: the client connects with a token expiring in 3 s and a
// getToken that returns a fresh one (valid 10 min). The SDK refreshes the token before it
// expires, over the same connection: after 5 s the client is still connected with the same
// client id, was never disconnected nor reconnecting, and getToken was called.

const c = require('./common');

c.main(async (cleanup) => {
  let getTokenCalls = 0;
  const now = () => Math.floor(Date.now() / 1000);
  const client = cleanup.add(c.newClient({
    token: c.makeToken({ sub: '42', exp: now() + 3 }),
    getToken: async () => {
      getTokenCalls++;
      return c.makeToken({ sub: '42', exp: now() + 600 });
    },
  }));
  const disconnecteds = c.collect(client, 'disconnected');
  const connectings = c.collect(client, 'connecting');
  const connecteds = c.collect(client, 'connected');
  const first = await c.connect(client);
  const connectingsBefore = connectings.items.length;

  await c.sleep(5000);
  c.assert.ok(getTokenCalls >= 1, `getToken called ${getTokenCalls} times`);
  c.assert.deepEqual(disconnecteds.items, [], 'disconnected events');
  c.assert.deepEqual(connectings.items.slice(connectingsBefore), [], 'connecting events after the first connect');
  c.assert.equal(connecteds.items.length, 1, `connected events ${JSON.stringify(connecteds.items)}`);
  c.assert.equal(client.state, 'connected');
  c.assert.deepEqual(client.errors, [], 'client error events');

  // The connection still works after the refresh.
  const sub = c.newSubscription(client, 'chat:refresh');
  await c.subscribe(sub);
  c.assert.equal(connecteds.items[0].client, first.client);
  return `token expiring in 3 s refreshed (getToken called ${getTokenCalls} time(s)); still connected after 5 s without a reconnect`;
});
