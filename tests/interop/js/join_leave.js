'use strict';
// Join and leave: A subscribes chat:j-<random> asking for join/leave messages
// (joinLeave: true) and C subscribes without asking. When B (user 43) subscribes A gets a
// `join` with B's client id and user, and when B unsubscribes a `leave`; C gets neither.

const crypto = require('node:crypto');
const c = require('./common');

const CHANNEL = `chat:j-${crypto.randomBytes(6).toString('hex')}`;

c.main(async (cleanup) => {
  const a = cleanup.add(c.newClient({ token: c.makeToken({ sub: '42' }) }));
  const b = cleanup.add(c.newClient({ token: c.makeToken({ sub: '43' }) }));
  const cl = cleanup.add(c.newClient({ token: c.makeToken({ sub: '44' }) }));
  await c.connect(a);
  const bCtx = await c.connect(b);
  await c.connect(cl);

  const subA = c.newSubscription(a, CHANNEL, { joinLeave: true });
  const subC = c.newSubscription(cl, CHANNEL);
  const subB = c.newSubscription(b, CHANNEL);
  const joinsA = c.collect(subA, 'join');
  const leavesA = c.collect(subA, 'leave');
  const joinsC = c.collect(subC, 'join');
  const leavesC = c.collect(subC, 'leave');
  const clientJoinsC = c.collect(cl, 'join');
  const clientLeavesC = c.collect(cl, 'leave');
  await c.subscribe(subA);
  await c.subscribe(subC);

  const isB = (ctx) => ctx.info && ctx.info.client === bCtx.client;
  const joined = c.waitEvent(subA, 'join', { predicate: isB });
  await c.subscribe(subB);
  const join = await joined;
  c.assert.equal(join.channel, CHANNEL, `join ${JSON.stringify(join)}`);
  c.assert.equal(join.info.user, '43', `join ${JSON.stringify(join)}`);

  const left = c.waitEvent(subA, 'leave', { predicate: isB });
  subB.unsubscribe();
  const leave = await left;
  c.assert.equal(leave.channel, CHANNEL, `leave ${JSON.stringify(leave)}`);
  c.assert.equal(leave.info.user, '43', `leave ${JSON.stringify(leave)}`);

  // A join or leave for C would have been sent along with A's: give it a moment anyway.
  await c.sleep(500);
  c.assert.equal(joinsA.items.filter(isB).length, 1, `joins of B seen by A ${JSON.stringify(joinsA.items)}`);
  c.assert.equal(leavesA.items.filter(isB).length, 1, `leaves of B seen by A ${JSON.stringify(leavesA.items)}`);
  c.assert.deepEqual(joinsC.items, [], 'join events on the subscription without joinLeave');
  c.assert.deepEqual(leavesC.items, [], 'leave events on the subscription without joinLeave');
  c.assert.deepEqual(clientJoinsC.items, [], 'client-level join events of the client without joinLeave');
  c.assert.deepEqual(clientLeavesC.items, [], 'client-level leave events of the client without joinLeave');
  return `on ${CHANNEL} the joinLeave subscriber saw B join and leave (client ${bCtx.client}, user 43); the other subscriber saw none`;
});
