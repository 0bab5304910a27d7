'use strict';
// centrifuge-js with `delta: 'fossil'` (JSON and Protobuf builds): ten similar large
// documents published through the API reach the application exactly, rebuilt by the SDK's
// own fossil decoder from the deltas Gyre sends after the first full payload.

const crypto = require('node:crypto');
const c = require('./common');

function docs(n) {
  const doc = { title: 'board', cells: Array.from({ length: 200 }, (_, i) => `cell-${i}`), note: 'naïve café ✓' };
  return Array.from({ length: n }, (_, i) => {
    doc.cells[(i * 13) % 200] = `changed-${i}`;
    doc.version = i;
    return JSON.parse(JSON.stringify(doc));
  });
}

async function run(cleanup, protobuf) {
  const channel = `delta:js-${crypto.randomBytes(6).toString('hex')}`;
  const client = cleanup.add(c.newClient({ token: c.makeToken({ sub: '42' }) }, { protobuf }));
  await c.connect(client);
  const sub = c.newSubscription(client, channel, { delta: 'fossil' });
  const pubs = c.collect(sub, 'publication');
  await c.subscribe(sub);
  const sent = docs(10);
  for (const doc of sent) {
    await c.apiPublish(channel, doc);
  }
  const got = await pubs.waitCount(10);
  const data = got.map((p) => (protobuf ? JSON.parse(new TextDecoder().decode(p.data)) : p.data));
  c.assert.deepEqual(data, sent);
  c.assert.deepEqual(client.errors, [], 'client error events');
  client.disconnect();
}

c.main(async (cleanup) => {
  await run(cleanup, false);
  await run(cleanup, true);
  return 'delta ok: 10 documents rebuilt over JSON and Protobuf';
});
