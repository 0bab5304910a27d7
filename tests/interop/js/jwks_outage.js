'use strict';
// The JWKS endpoint is down when the client connects (GYRE_JWKS_TOKEN names a key only the
// endpoint knows): the connect is refused with the temporary error 100, so the SDK keeps
// reconnecting on its own and is connected as soon as the test brings the endpoint back.

const c = require('./common');

c.main(async (cleanup) => {
  const token = c.env('GYRE_JWKS_TOKEN');
  const client = cleanup.add(c.newClient({ token, minReconnectDelay: 100, maxReconnectDelay: 500 }));
  const disconnects = c.collect(client, 'disconnected');
  const connected = c.waitEvent(client, 'connected', { timeout: 45000 });
  client.connect();
  const ctx = await connected;

  const refusals = client.errors.filter((e) => e.type === 'connect');
  c.assert.ok(refusals.length >= 1, `connected without being refused first: ${JSON.stringify(client.errors)}`);
  for (const e of refusals) {
    c.assert.equal(e.error.code, 100, `refused with ${JSON.stringify(e)}`);
    c.assert.equal(e.error.temporary, true, `refused with ${JSON.stringify(e)}`);
  }
  c.assert.equal(disconnects.items.length, 0, `gave up: ${JSON.stringify(disconnects.items)}`);
  c.assert.equal(client.state, 'connected');
  return `refused ${refusals.length} time(s) with temporary error 100 while the JWKS endpoint was down; connected on its own as ${ctx.client} once it was back`;
});
