'use strict';
// Subscription tokens on private:<random>, a namespace clients may not subscribe to by
// themselves: with a getToken minting {sub: "42", channel} the subscription succeeds and an
// API publication arrives; a subscription without token nor getToken is refused with 103;
// a subscription token expiring in 3 s is refreshed over the same subscription (sub_refresh)
// with a token from getToken, so after 5 s it is still subscribed.

const crypto = require('node:crypto');
const c = require('./common');

const CHANNEL = `private:${crypto.randomBytes(6).toString('hex')}`;
const CHANNEL2 = `private:${crypto.randomBytes(6).toString('hex')}`;
const now = () => Math.floor(Date.now() / 1000);

c.main(async (cleanup) => {
  const client = cleanup.add(c.newClient({ token: c.makeToken({ sub: '42' }) }));
  await c.connect(client);

  // 1. getToken mints a subscription token for the channel it is asked about.
  const asked = [];
  const sub = c.newSubscription(client, CHANNEL, {
    getToken: async (ctx) => {
      asked.push(ctx.channel);
      return c.makeToken({ sub: '42', channel: ctx.channel });
    },
  });
  const pubs = c.collect(sub, 'publication');
  const subscribed = await c.subscribe(sub);
  c.assert.equal(subscribed.channel, CHANNEL);
  c.assert.deepEqual(asked, [CHANNEL], 'channels getToken was asked for');
  await c.apiPublish(CHANNEL, { text: 'private' });
  const [pub] = await pubs.waitCount(1);
  c.assert.deepEqual(pub.data, { text: 'private' });

  // 2. No token, no getToken: refused with 103 (the SDK reports it as `unsubscribed`).
  const other = cleanup.add(c.newClient({ token: c.makeToken({ sub: '42' }) }));
  await c.connect(other);
  const bare = c.newSubscription(other, CHANNEL);
  const bareSubscribeds = c.collect(bare, 'subscribed');
  const refused = c.waitEvent(bare, 'unsubscribed');
  bare.subscribe();
  const refusal = await refused;
  c.assert.equal(refusal.code, 103, `unsubscribed ${JSON.stringify(refusal)}; error events ${JSON.stringify(bare.errors)}`);
  c.assert.equal(bareSubscribeds.items.length, 0, 'subscribed without a token');
  c.assert.equal(other.state, 'connected');

  // 3. A token expiring in 3 s: the SDK refreshes it before it expires.
  let calls = 0;
  const short = c.newSubscription(client, CHANNEL2, {
    getToken: async (ctx) => {
      calls++;
      const exp = calls === 1 ? now() + 3 : now() + 600;
      return c.makeToken({ sub: '42', channel: ctx.channel, exp });
    },
  });
  const shortSubscribeds = c.collect(short, 'subscribed');
  const shortSubscribings = c.collect(short, 'subscribing');
  const shortUnsubscribeds = c.collect(short, 'unsubscribed');
  const shortPubs = c.collect(short, 'publication');
  await c.subscribe(short);
  const subscribingsBefore = shortSubscribings.items.length;
  await c.sleep(5000);
  c.assert.ok(calls >= 2, `getToken called ${calls} times`);
  c.assert.equal(short.state, 'subscribed');
  c.assert.equal(shortSubscribeds.items.length, 1, `subscribed events ${JSON.stringify(shortSubscribeds.items)}`);
  c.assert.deepEqual(shortSubscribings.items.slice(subscribingsBefore), [], 'resubscribes after the first subscribe');
  c.assert.deepEqual(shortUnsubscribeds.items, [], 'unsubscribed events');
  await c.apiPublish(CHANNEL2, { text: 'after refresh' });
  const [late] = await shortPubs.waitCount(1);
  c.assert.deepEqual(late.data, { text: 'after refresh' });
  c.assert.deepEqual(sub.errors, [], 'subscription error events');
  c.assert.deepEqual(short.errors, [], 'refreshed subscription error events');
  return `subscription token from getToken accepted on ${CHANNEL}; no token refused with 103; token expiring in 3 s refreshed (getToken called ${calls} times), still subscribed after 5 s`;
});
