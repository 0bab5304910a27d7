'use strict';
// centrifuge-js against a Gyre whose backend proxies decide: connect without a token (the
// SDK's `data` goes to the connect proxy), RPC, a subscribe and a publish the backend allows
// and rewrites (namespace `px`, see tests/tests/e2e/proxy.rs).

const crypto = require('node:crypto');
const c = require('./common');

const CHANNEL = `px:js-${crypto.randomBytes(6).toString('hex')}`;

c.main(async (cleanup) => {
  const client = cleanup.add(c.newClient({ data: { user: 'js-user' }, name: 'js' }));
  const ctx = await c.connect(client);
  c.assert.deepEqual(ctx.data, { welcome: true }, 'connect data from the proxy');

  const rpc = await c.withTimeout(client.rpc('echo', { x: 1 }), 'rpc echo');
  c.assert.deepEqual(rpc.data, { x: 1 });
  const err = await c.expectReject(client.rpc('missing', {}), 'rpc of an unknown method');
  c.assert.equal(err.code, 104);

  const sub = c.newSubscription(client, CHANNEL);
  const subscribed = c.waitEvent(sub, 'subscribed');
  const pubs = c.collect(sub, 'publication');
  sub.subscribe();
  const subCtx = await subscribed;
  c.assert.deepEqual(subCtx.data, { hello: CHANNEL }, 'subscribe data from the proxy');
  await c.withTimeout(sub.publish({ action: 'rewrite', n: 7 }), 'publish');
  const got = await pubs.waitCount(1);
  c.assert.deepEqual(got[0].data, { rewritten: 7 });
  c.assert.equal(got[0].info.user, 'js-user');
  c.assert.deepEqual(client.errors, [], 'client error events');
  return `proxy ok: client ${ctx.client} as js-user`;
});
