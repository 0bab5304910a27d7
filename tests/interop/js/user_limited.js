'use strict';
// User-limited channels: in namespace `personal` (allow_user_limited_channels) user 42 may
// subscribe personal:user#42, whose user part is its own id, but not personal:user#43,
// which is refused with 103 (reported by the SDK as `unsubscribed`).

const c = require('./common');

const OWN = 'personal:user#42';
const FOREIGN = 'personal:user#43';

c.main(async (cleanup) => {
  const client = cleanup.add(c.newClient({ token: c.makeToken({ sub: '42' }) }));
  await c.connect(client);

  const own = c.newSubscription(client, OWN);
  const subscribed = await c.subscribe(own);
  c.assert.equal(subscribed.channel, OWN);

  const foreign = c.newSubscription(client, FOREIGN);
  const foreignSubscribeds = c.collect(foreign, 'subscribed');
  const refused = c.waitEvent(foreign, 'unsubscribed');
  foreign.subscribe();
  const ctx = await refused;
  c.assert.equal(ctx.channel, FOREIGN);
  c.assert.equal(ctx.code, 103, `unsubscribed ${JSON.stringify(ctx)}; error events ${JSON.stringify(foreign.errors)}`);
  c.assert.equal(ctx.reason, 'permission denied', `unsubscribed ${JSON.stringify(ctx)}`);
  c.assert.equal(foreignSubscribeds.items.length, 0, `subscribed to ${FOREIGN}`);

  // The refusal leaves the connection and the own subscription in place.
  c.assert.equal(client.state, 'connected');
  c.assert.equal(own.state, 'subscribed');
  c.assert.deepEqual(own.errors, [], 'own subscription error events');
  return `user 42 subscribed ${OWN}; ${FOREIGN} refused with 103 "permission denied"`;
});
