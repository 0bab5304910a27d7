'use strict';
// Client-side publish: a publication by user 42 on pub:room reaches user 43 with the
// publisher's info; publishing where it is not allowed rejects with code 103.

const c = require('./common');

const CHANNEL = 'pub:room';

c.main(async (cleanup) => {
  const a = cleanup.add(c.newClient({ token: c.makeToken({ sub: '42' }) }));
  const b = cleanup.add(c.newClient({ token: c.makeToken({ sub: '43' }) }));
  const aCtx = await c.connect(a);
  const bCtx = await c.connect(b);
  c.assert.notEqual(aCtx.client, bCtx.client);

  const subA = c.newSubscription(a, CHANNEL);
  const subB = c.newSubscription(b, CHANNEL);
  await c.subscribe(subA);
  await c.subscribe(subB);

  const received = c.waitEvent(subB, 'publication');
  await c.withTimeout(subA.publish({ text: 'hi' }), 'sub.publish on pub:room');
  const pub = await received;
  c.assert.deepEqual(pub.data, { text: 'hi' });
  c.assert.ok(pub.info, `publication without info: ${JSON.stringify(pub)}`);
  c.assert.equal(pub.info.user, '42');
  c.assert.equal(pub.info.client, aCtx.client);

  // Namespace `locked` allows no publishing.
  const lockedErr = await c.expectReject(a.publish('locked:x', { a: 1 }), "client.publish('locked:x')");
  c.assert.equal(lockedErr.code, 103, `locked:x publish error ${JSON.stringify(lockedErr)}`);

  // Namespace `chat` allows publishing for subscribers only, and `a` is not subscribed.
  const chatErr = await c.expectReject(a.publish('chat:x', { a: 1 }), "client.publish('chat:x')");
  c.assert.equal(chatErr.code, 103, `chat:x publish error ${JSON.stringify(chatErr)}`);

  // Both refusals leave the connection up.
  c.assert.equal(a.state, 'connected');
  return 'client publication on pub:room delivered with publisher info; publish to locked:x and to unsubscribed chat:x rejected with 103';
});
