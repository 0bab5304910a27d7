'use strict';
// The network goes away (DevTools offline emulation) and comes back: the page's client notices,
// reconnects by itself once online, and recovers exactly the 3 publications made while it was
// offline, once and in order, reported as recovered.

const crypto = require('node:crypto');
const c = require('../common');
const { withBrowser, join } = require('./harness');

const CHANNEL = `chat:br-offline-${crypto.randomBytes(4).toString('hex')}`;

c.main(() => withBrowser(async ({ context, open }) => {
  const page = await open('/');
  await join(page, '42', CHANNEL);
  await c.apiPublish(CHANNEL, { n: 1 });
  await page.evaluate(() => window.gyreTest.state.pubs.waitCount(1));

  await context.setOffline(true);
  await page.waitForFunction(() => window.gyreTest.state.client.state !== 'connected', undefined, { timeout: 10000 });
  for (const n of [2, 3, 4]) {
    await c.apiPublish(CHANNEL, { n });
  }
  await context.setOffline(false);
  const result = await page.evaluate(async () => {
    const t = window.gyreTest;
    const subscribed = await t.state.subscribed.waitCount(2, 20000);
    const pubs = await t.state.pubs.waitCount(4);
    const again = subscribed[1];
    return { wasRecovering: again.wasRecovering, recovered: again.recovered, data: pubs.map((p) => p.data), offsets: pubs.map((p) => p.offset) };
  });
  c.assert.equal(result.wasRecovering, true, `resubscribe ${JSON.stringify(result)}`);
  c.assert.equal(result.recovered, true, `resubscribe ${JSON.stringify(result)}`);
  c.assert.deepEqual(result.data, [{ n: 1 }, { n: 2 }, { n: 3 }, { n: 4 }]);
  c.assert.deepEqual(result.offsets, [1, 2, 3, 4]);
  return 'offline, then online: 3 missed publications recovered in order';
}));
