'use strict';
// A token signed with the wrong secret: the client is disconnected with code 3500
// ("invalid token") and does not reconnect.

const c = require('./common');

c.main(async (cleanup) => {
  const client = cleanup.add(c.newClient({ token: c.makeToken({ sub: '42' }, 'not-the-secret') }));
  const connectings = c.collect(client, 'connecting');
  const connecteds = c.collect(client, 'connected');

  const disconnected = c.waitEvent(client, 'disconnected');
  client.connect();
  const ctx = await disconnected;
  c.assert.equal(ctx.code, 3500, `disconnected ${JSON.stringify(ctx)}`);
  c.assert.equal(ctx.reason, 'invalid token', `disconnected ${JSON.stringify(ctx)}`);
  c.assert.equal(client.state, 'disconnected');

  // connect() itself moved the client to `connecting` once; no reconnect after that.
  const before = connectings.items.length;
  await c.sleep(1500);
  c.assert.equal(connectings.items.length, before, `reconnected: ${JSON.stringify(connectings.items.slice(before))}`);
  c.assert.equal(connecteds.items.length, 0, 'connected with an invalid token');
  c.assert.equal(client.state, 'disconnected');
  return 'token with a wrong signature: disconnected with 3500 "invalid token", no reconnect within 1.5 s';
});
