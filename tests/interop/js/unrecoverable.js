'use strict';
// Failed recovery: like recovery.js but on small:u-<random>, whose history keeps only 2
// publications. 5 publications are made while the client is away, so offsets 3-5 are gone:
// the resubscribe reports wasRecovering true, recovered false, delivers no publication and
// positions the subscription at the top of the stream (offset 7).

const crypto = require('node:crypto');
const c = require('./common');

const CHANNEL = `small:u-${crypto.randomBytes(6).toString('hex')}`;

c.main(async (cleanup) => {
  const client = cleanup.add(c.holdableClient('42'));
  await c.connect(client);

  const sub = c.newSubscription(client, CHANNEL);
  const pubs = c.collect(sub, 'publication');
  const subscribeds = c.collect(sub, 'subscribed');
  await c.subscribe(sub);

  for (let i = 1; i <= 2; i++) {
    await c.apiPublish(CHANNEL, { n: i });
  }
  await pubs.waitCount(2);

  await c.missWhileAway(client, '42', CHANNEL, [3, 4, 5, 6, 7]);
  const [, resubscribed] = await subscribeds.waitCount(2);
  c.assert.equal(resubscribed.wasRecovering, true, `resubscribed ${JSON.stringify(resubscribed)}`);
  c.assert.equal(resubscribed.recovered, false, `resubscribed ${JSON.stringify(resubscribed)}`);
  c.assert.equal(resubscribed.hasRecoveredPublications, false, `resubscribed ${JSON.stringify(resubscribed)}`);
  c.assert.ok(resubscribed.streamPosition, `resubscribed without a stream position ${JSON.stringify(resubscribed)}`);
  c.assert.equal(resubscribed.streamPosition.offset, 7, `resubscribed ${JSON.stringify(resubscribed)}`);

  // No publication beyond the 2 received before the disconnect.
  await c.sleep(500);
  const got = pubs.items.map((p) => ({ n: p.data.n, offset: p.offset }));
  c.assert.deepEqual(got, [{ n: 1, offset: 1 }, { n: 2, offset: 2 }], `publications received ${JSON.stringify(got)}`);

  // The position is the top: the next publication is offset 8 and arrives live.
  await c.apiPublish(CHANNEL, { n: 8 });
  const [, , next] = await pubs.waitCount(3);
  c.assert.deepEqual({ n: next.data.n, offset: next.offset }, { n: 8, offset: 8 }, 'publication after the failed recovery');
  c.assert.deepEqual(sub.errors, [], 'subscription error events');
  return `missed 5 publications with history size 2 on ${CHANNEL}: wasRecovering, not recovered, nothing delivered, positioned at offset 7`;
});
