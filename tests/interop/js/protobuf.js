'use strict';
// The SDK's Protobuf build (binary frames) next to its JSON build on one channel: user 42
// over Protobuf and user 43 over JSON subscribe chat:pb-<random>; an API publication reaches
// both (bytes of its JSON text for Protobuf, the value for JSON); a Protobuf client publication
// reaches the JSON client as JSON with the publisher's info; binary data (not JSON) reaches
// Protobuf clients byte for byte and JSON clients as base64; presence stats and history work
// over Protobuf.

const crypto = require('node:crypto');
const c = require('./common');

const CHANNEL = `chat:pb-${crypto.randomBytes(6).toString('hex')}`;
const decode = (bytes) => JSON.parse(new TextDecoder().decode(bytes));

c.main(async (cleanup) => {
  const pb = cleanup.add(c.newClient({ token: c.makeToken({ sub: '42' }) }, { protobuf: true }));
  const js = cleanup.add(c.newClient({ token: c.makeToken({ sub: '43' }) }));
  const pbCtx = await c.connect(pb);
  await c.connect(js);
  const pbSub = c.newSubscription(pb, CHANNEL);
  const jsSub = c.newSubscription(js, CHANNEL);
  const pbPubs = c.collect(pbSub, 'publication');
  const jsPubs = c.collect(jsSub, 'publication');
  await c.subscribe(pbSub);
  await c.subscribe(jsSub);

  await c.apiPublish(CHANNEL, { n: 1 });
  const [first] = await pbPubs.waitCount(1);
  c.assert.ok(first.data instanceof Uint8Array, `protobuf data should be bytes, got ${typeof first.data}`);
  c.assert.deepEqual(decode(first.data), { n: 1 });
  const [jsFirst] = await jsPubs.waitCount(1);
  c.assert.deepEqual(jsFirst.data, { n: 1 });

  await c.withTimeout(pbSub.publish(new TextEncoder().encode(JSON.stringify({ from: 'pb' }))), 'protobuf publish');
  const jsGot = await jsPubs.waitCount(2);
  c.assert.deepEqual(jsGot[1].data, { from: 'pb' });
  c.assert.equal(jsGot[1].info.user, '42');
  c.assert.equal(jsGot[1].info.client, pbCtx.client);
  const pbGot = await pbPubs.waitCount(2);
  c.assert.deepEqual(decode(pbGot[1].data), { from: 'pb' });

  await c.withTimeout(pbSub.publish(new Uint8Array([0xff, 0x00, 0x01])), 'binary publish');
  const binary = (await pbPubs.waitCount(3))[2];
  c.assert.deepEqual(Array.from(binary.data), [0xff, 0x00, 0x01], 'binary bytes intact');
  c.assert.equal((await jsPubs.waitCount(3))[2].data, '/wAB', 'JSON clients get binary data as base64');

  const stats = await c.withTimeout(pbSub.presenceStats(), 'presenceStats over protobuf');
  c.assert.deepEqual(stats, { numClients: 2, numUsers: 2 });
  const history = await c.withTimeout(pbSub.history({ limit: 10 }), 'history over protobuf');
  c.assert.deepEqual(history.publications.slice(0, 2).map((p) => decode(p.data)), [{ n: 1 }, { from: 'pb' }]);
  c.assert.deepEqual(Array.from(history.publications[2].data), [0xff, 0x00, 0x01]);
  c.assert.ok(history.offset > 0 && history.epoch.length > 0, `history position ${JSON.stringify(history)}`);

  c.assert.deepEqual(pb.errors, [], 'protobuf client error events');
  c.assert.deepEqual(pbSub.errors, [], 'protobuf subscription error events');
  return `protobuf client ${pbCtx.client} and a JSON client exchanged publications on ${CHANNEL}; presence stats and history over protobuf`;
});
