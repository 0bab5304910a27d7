'use strict';
// Subscribing to locked:x (a namespace that allows nothing) is refused with code 103:
// centrifuge-js 5 reports a non-temporary subscribe error as `unsubscribed` with the
// error's code and message, without resubscribing.

const c = require('./common');

const CHANNEL = 'locked:x';

c.main(async (cleanup) => {
  const client = cleanup.add(c.newClient({ token: c.makeToken({ sub: '42' }) }));
  await c.connect(client);

  const sub = c.newSubscription(client, CHANNEL);
  const subscribeds = c.collect(sub, 'subscribed');
  const subscribings = c.collect(sub, 'subscribing');
  const unsubscribed = c.waitEvent(sub, 'unsubscribed');
  sub.subscribe();
  const ctx = await unsubscribed;
  c.assert.equal(ctx.channel, CHANNEL);
  c.assert.equal(ctx.code, 103, `unsubscribed ${JSON.stringify(ctx)}; error events ${JSON.stringify(sub.errors)}`);
  c.assert.equal(ctx.reason, 'permission denied', `unsubscribed ${JSON.stringify(ctx)}`);
  c.assert.equal(sub.state, 'unsubscribed');

  // No resubscribe, and the connection stays up.
  const attempts = subscribings.items.length;
  await c.sleep(1000);
  c.assert.equal(subscribings.items.length, attempts, 'subscription retried');
  c.assert.equal(subscribeds.items.length, 0, 'subscribed to locked:x');
  c.assert.equal(client.state, 'connected');
  return 'subscribe to locked:x refused: unsubscribed with 103 "permission denied", no retry, connection kept';
});
