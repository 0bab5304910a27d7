'use strict';
// Recovery after a reconnect: user 42 subscribes chat:r-<random> (force_recovery, history
// 100), receives 2 API publications, is disconnected by the API with the reconnect code
// 3011; 3 publications are made while it is away. The SDK reconnects by itself and the
// resubscribe recovers exactly the 3 missed publications (offsets 3, 4, 5), once and in
// order, reported as `subscribed` with wasRecovering and recovered.

const crypto = require('node:crypto');
const c = require('./common');

const CHANNEL = `chat:r-${crypto.randomBytes(6).toString('hex')}`;

c.main(async (cleanup) => {
  const client = cleanup.add(c.holdableClient('42'));
  const first = await c.connect(client);

  const sub = c.newSubscription(client, CHANNEL);
  const pubs = c.collect(sub, 'publication');
  const subscribeds = c.collect(sub, 'subscribed');
  const initial = await c.subscribe(sub);
  c.assert.equal(initial.wasRecovering, false, `first subscribed ${JSON.stringify(initial)}`);
  c.assert.equal(initial.recoverable, true, `first subscribed ${JSON.stringify(initial)}`);
  c.assert.ok(initial.streamPosition && initial.streamPosition.epoch, `first subscribed without an epoch ${JSON.stringify(initial)}`);

  for (let i = 1; i <= 2; i++) {
    await c.apiPublish(CHANNEL, { n: i });
  }
  await pubs.waitCount(2);

  // Disconnect with a reconnect code; publish only once the client knows it is away.
  const { away, again } = await c.missWhileAway(client, '42', CHANNEL, [3, 4, 5]);
  c.assert.equal(away.reason, 'force reconnect', `connecting ${JSON.stringify(away)}`);
  c.assert.notEqual(again.client, first.client, 'a reconnect gets a new client id');
  const [, resubscribed] = await subscribeds.waitCount(2);
  c.assert.equal(resubscribed.wasRecovering, true, `resubscribed ${JSON.stringify(resubscribed)}`);
  c.assert.equal(resubscribed.recovered, true, `resubscribed ${JSON.stringify(resubscribed)}`);
  c.assert.equal(resubscribed.hasRecoveredPublications, true, `resubscribed ${JSON.stringify(resubscribed)}`);
  // After a successful recovery the reply carries the position the client recovered from
  // (offset 2), in the same epoch; the recovered publications then move it to the top.
  c.assert.ok(resubscribed.streamPosition, `resubscribed without a stream position ${JSON.stringify(resubscribed)}`);
  c.assert.equal(resubscribed.streamPosition.offset, 2, `resubscribed ${JSON.stringify(resubscribed)}`);
  c.assert.equal(resubscribed.streamPosition.epoch, initial.streamPosition.epoch, `epoch changed: ${JSON.stringify(initial)} then ${JSON.stringify(resubscribed)}`);

  await pubs.waitCount(5);
  // Nothing more may arrive (a duplicate would come right after the recovered ones).
  await c.sleep(500);
  const got = pubs.items.map((p) => ({ n: p.data.n, offset: p.offset }));
  c.assert.deepEqual(got, [1, 2, 3, 4, 5].map((n) => ({ n, offset: n })), `publications received ${JSON.stringify(got)}`);
  c.assert.equal(subscribeds.items.length, 2, `subscribed events ${JSON.stringify(subscribeds.items)}`);

  // Live publications continue after the recovered ones.
  await c.apiPublish(CHANNEL, { n: 6 });
  const all = await pubs.waitCount(6);
  c.assert.deepEqual({ n: all[5].data.n, offset: all[5].offset }, { n: 6, offset: 6 }, 'publication after the recovery');
  c.assert.deepEqual(sub.errors, [], 'subscription error events');
  return `disconnected with 3011, reconnected and recovered the 3 missed publications (offsets 3-5) on ${CHANNEL} once, in order`;
});
