'use strict';
// Connects with a token for user 42, subscribes chat:index and receives 20 publications
// made through the HTTP API, in order and with the data published.

const c = require('./common');

const COUNT = 20;
const CHANNEL = 'chat:index';

c.main(async (cleanup) => {
  const client = cleanup.add(c.newClient({ token: c.makeToken({ sub: '42' }) }));
  const connected = await c.connect(client);

  const sub = c.newSubscription(client, CHANNEL);
  const pubs = c.collect(sub, 'publication');
  const subscribed = await c.subscribe(sub);
  c.assert.equal(subscribed.channel, CHANNEL);

  for (let i = 0; i < COUNT; i++) {
    await c.apiPublish(CHANNEL, { n: i });
  }
  const got = await pubs.waitCount(COUNT);
  c.assert.equal(got.length, COUNT, `expected exactly ${COUNT} publications`);
  got.forEach((ctx, i) => {
    c.assert.equal(ctx.channel, CHANNEL);
    c.assert.deepEqual(ctx.data, { n: i }, `publication ${i} out of order or wrong data`);
  });
  c.assert.deepEqual(client.errors, [], 'client error events');
  c.assert.deepEqual(sub.errors, [], 'subscription error events');
  return `client ${connected.client} received ${COUNT} API publications on ${CHANNEL} in order`;
});
