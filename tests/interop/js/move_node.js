'use strict';
// A client moves to another node (NATS engine): user 42 subscribes on node 1
// (GYRE_WS_URL), receives 2 publications and leaves; 3 are published while it is away; it
// connects to node 2 (GYRE_WS_URL_2) and resubscribes from its last position with `since`:
// the subscription recovers exactly the 3 missed publications, once and in order.

const crypto = require('node:crypto');
const { Centrifuge } = require('centrifuge');
const WebSocket = require('ws');
const c = require('./common');

const CHANNEL = `chat:move-${crypto.randomBytes(6).toString('hex')}`;

c.main(async (cleanup) => {
  const first = cleanup.add(c.newClient({ token: c.makeToken({ sub: '42' }) }));
  await c.connect(first);
  const sub = c.newSubscription(first, CHANNEL);
  const pubs = c.collect(sub, 'publication');
  const initial = await c.subscribe(sub);
  c.assert.equal(initial.recoverable, true, `subscribed ${JSON.stringify(initial)}`);
  for (let i = 1; i <= 2; i++) {
    await c.apiPublish(CHANNEL, { n: i });
  }
  const got = await pubs.waitCount(2);
  const position = { offset: got[1].offset, epoch: initial.streamPosition.epoch };
  first.disconnect();

  for (let i = 3; i <= 5; i++) {
    await c.apiPublish(CHANNEL, { n: i });
  }

  const second = cleanup.add(new Centrifuge(c.env('GYRE_WS_URL_2'), {
    websocket: WebSocket,
    token: c.makeToken({ sub: '42' }),
    timeout: 5000,
  }));
  second.on('error', () => {});
  await c.connect(second);
  const moved = c.newSubscription(second, CHANNEL, { since: position });
  const recovered = c.collect(moved, 'publication');
  const ctx = await c.subscribe(moved);
  c.assert.equal(ctx.wasRecovering, true, `subscribed ${JSON.stringify(ctx)}`);
  c.assert.equal(ctx.recovered, true, `subscribed ${JSON.stringify(ctx)}`);
  const items = await recovered.waitCount(3);
  await c.sleep(300);
  c.assert.deepEqual(recovered.items.map((p) => p.data.n), [3, 4, 5], 'recovered publications');
  c.assert.ok(items.every((p, i) => i === 0 || p.offset > items[i - 1].offset), 'offsets increase');
  return `moved from node 1 to node 2 and recovered the 3 missed publications on ${CHANNEL}`;
});
