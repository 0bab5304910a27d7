'use strict';
// Many tabs on one channel: six tabs (one browser context, so one origin's shared network
// state) each connect their own client and subscribe; presence counts six clients, and one API
// publication and one publication from a tab reach every tab once.

const crypto = require('node:crypto');
const c = require('../common');
const { withBrowser, join } = require('./harness');

const CHANNEL = `chat:br-tabs-${crypto.randomBytes(4).toString('hex')}`;
const TABS = 6;

c.main(() => withBrowser(async ({ open }) => {
  const tabs = [];
  for (let i = 0; i < TABS; i++) {
    const page = await open('/');
    await join(page, `tab-${i}`, CHANNEL);
    tabs.push(page);
  }
  const stats = await c.api('presence_stats', { channel: CHANNEL });
  c.assert.deepEqual(stats.result, { num_clients: TABS, num_users: TABS }, `presence_stats ${JSON.stringify(stats)}`);
  await c.apiPublish(CHANNEL, { from: 'api' });
  await tabs[0].evaluate(() => window.gyreTest.withTimeout(window.gyreTest.state.sub.publish({ from: 'tab-0' }), 'publish'));
  // A last marker: a duplicate of either publication would arrive before it.
  await c.apiPublish(CHANNEL, { end: true });
  for (const [i, page] of tabs.entries()) {
    const data = await page.evaluate(async () => {
      const pubs = await window.gyreTest.state.pubs.waitCount(3);
      return pubs.map((p) => p.data);
    });
    c.assert.deepEqual(data, [{ from: 'api' }, { from: 'tab-0' }, { end: true }], `tab ${i}`);
  }
  return `${TABS} tabs on ${CHANNEL}: presence ${TABS}, every publication in every tab`;
}));
