'use strict';
// Server-side subscriptions: a connection token with `channels` subscribes the client to
// chat:s-<random> at connect (a client-level `subscribed` event), publications there reach
// the client-level `publication` event, the API `unsubscribe` ends it (client-level
// `unsubscribed`), and the API `subscribe` adds chat:s2-<random> at runtime.

const crypto = require('node:crypto');
const c = require('./common');

const SUFFIX = crypto.randomBytes(6).toString('hex');
const CHANNEL = `chat:s-${SUFFIX}`;
const CHANNEL2 = `chat:s2-${SUFFIX}`;

c.main(async (cleanup) => {
  const client = cleanup.add(c.newClient({ token: c.makeToken({ sub: '42', channels: [CHANNEL] }) }));
  const subscribeds = c.collect(client, 'subscribed');
  const pubs = c.collect(client, 'publication');
  const unsubscribeds = c.collect(client, 'unsubscribed');
  const subscribedFirst = c.waitEvent(client, 'subscribed', { predicate: (ctx) => ctx.channel === CHANNEL });
  await c.connect(client);
  await subscribedFirst;

  await c.apiPublish(CHANNEL, { n: 1 });
  const [pub] = await pubs.waitCount(1);
  c.assert.equal(pub.channel, CHANNEL, `publication ${JSON.stringify(pub)}`);
  c.assert.deepEqual(pub.data, { n: 1 });

  const unsubscribed = c.waitEvent(client, 'unsubscribed', { predicate: (ctx) => ctx.channel === CHANNEL });
  const unsubReply = await c.api('unsubscribe', { user: '42', channel: CHANNEL });
  c.assert.ok(!unsubReply.error, `unsubscribe API reply ${JSON.stringify(unsubReply)}`);
  await unsubscribed;

  const subscribedSecond = c.waitEvent(client, 'subscribed', { predicate: (ctx) => ctx.channel === CHANNEL2 });
  const subReply = await c.api('subscribe', { user: '42', channel: CHANNEL2 });
  c.assert.ok(!subReply.error, `subscribe API reply ${JSON.stringify(subReply)}`);
  await subscribedSecond;

  await c.apiPublish(CHANNEL2, { n: 2 });
  // A publication to the channel it left must not arrive.
  await c.apiPublish(CHANNEL, { n: 3 });
  await pubs.waitCount(2);
  await c.sleep(300);
  const got = pubs.items.map((p) => ({ channel: p.channel, data: p.data }));
  c.assert.deepEqual(got, [{ channel: CHANNEL, data: { n: 1 } }, { channel: CHANNEL2, data: { n: 2 } }], 'client-level publications');
  c.assert.deepEqual(subscribeds.items.map((s) => s.channel), [CHANNEL, CHANNEL2], 'client-level subscribed events');
  c.assert.deepEqual(unsubscribeds.items.map((s) => s.channel), [CHANNEL], 'client-level unsubscribed events');
  c.assert.equal(client.state, 'connected');
  return `server-side subscription to ${CHANNEL} from the token, publication delivered, API unsubscribe and API subscribe to ${CHANNEL2} seen at client level`;
});
