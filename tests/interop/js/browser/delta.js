'use strict';
// Fossil delta compression in Chromium: ten similar large documents published through the API
// reach the page exactly, rebuilt by the SDK from the deltas Gyre sends over the WebSocket
// after the first full payload (the frames the page received are checked for them).

const crypto = require('node:crypto');
const c = require('../common');
const { withBrowser, join } = require('./harness');

const CHANNEL = `delta:br-${crypto.randomBytes(4).toString('hex')}`;

function docs(n) {
  const doc = { title: 'board', cells: Array.from({ length: 200 }, (_, i) => `cell-${i}`), note: 'naïve café ✓' };
  return Array.from({ length: n }, (_, i) => {
    doc.cells[(i * 13) % 200] = `changed-${i}`;
    doc.version = i;
    return JSON.parse(JSON.stringify(doc));
  });
}

c.main(() => withBrowser(async ({ open }) => {
  const page = await open('/');
  const frames = [];
  page.on('websocket', (ws) => ws.on('framereceived', (f) => frames.push(String(f.payload))));
  await join(page, '42', CHANNEL, { delta: 'fossil' });
  const sent = docs(10);
  for (const doc of sent) {
    await c.apiPublish(CHANNEL, doc);
  }
  const got = await page.evaluate(async () => {
    const t = window.gyreTest;
    const pubs = await t.state.pubs.waitCount(10);
    return { data: pubs.map((p) => p.data), errors: t.state.client.errors };
  });
  c.assert.deepEqual(got.data, sent);
  c.assert.deepEqual(got.errors, [], 'client errors');
  const deltas = frames.filter((f) => f.includes('"delta":true')).length;
  c.assert.ok(deltas >= 9, `only ${deltas} delta publications among the frames received`);
  return `10 documents rebuilt in the browser, ${deltas} sent as deltas`;
}));
