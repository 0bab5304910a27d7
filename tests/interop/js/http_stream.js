'use strict';
// The SDK's HTTP-streaming transport (bidirectional emulation: a streamed POST for replies,
// POST /emulation for commands), the fallback when WebSocket is blocked: connect, subscribe,
// receive API publications, publish from the client, presence.

const crypto = require('node:crypto');
const c = require('./common');

const CHANNEL = `chat:hs-${crypto.randomBytes(6).toString('hex')}`;

c.main(async (cleanup) => {
  const base = c.env('GYRE_WS_URL').replace(/^ws/, 'http').replace(/\/connection\/websocket$/, '');
  const client = cleanup.add(c.newClient({
    token: c.makeToken({ sub: '42' }),
    emulationEndpoint: `${base}/emulation`,
  }, { transports: [{ transport: 'http_stream', endpoint: `${base}/connection/http_stream` }] }));
  const ctx = await c.connect(client);
  c.assert.equal(ctx.transport, 'http_stream', `connected over ${ctx.transport}`);
  const sub = c.newSubscription(client, CHANNEL);
  const pubs = c.collect(sub, 'publication');
  await c.subscribe(sub);

  await c.apiPublish(CHANNEL, { n: 1 });
  await c.withTimeout(sub.publish({ from: 'client' }), 'publish over emulation');
  const got = await pubs.waitCount(2);
  c.assert.deepEqual(got.map((p) => p.data), [{ n: 1 }, { from: 'client' }]);
  c.assert.equal(got[1].info.user, '42');
  const stats = await c.withTimeout(sub.presenceStats(), 'presenceStats over emulation');
  c.assert.deepEqual(stats, { numClients: 1, numUsers: 1 });
  c.assert.deepEqual(client.errors, [], 'client error events');
  return `client ${ctx.client} over http_stream received 2 publications on ${CHANNEL}`;
});
