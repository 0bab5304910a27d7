'use strict';
// The admin web UI in Chromium, as an operator uses it: a wrong password is refused; signing in
// shows every node of the fleet; a publication run from the console reaches a page subscribed
// on another node; the tail shows a channel's publications live; signing out returns to the
// sign-in form, also after a reload.
//
// Environment: GYRE_ADMIN_URL (the UI's address), GYRE_ADMIN_PASSWORD, GYRE_NODE_NAMES (comma
// separated), GYRE_WS_URL (a node the subscriber page connects to); GYRE_SCREENSHOTS, when set,
// is a directory the main views are saved to as PNG.

const crypto = require('node:crypto');
const path = require('node:path');
const c = require('../common');
const { withBrowser } = require('./harness');

const CHANNEL = `chat:admin-${crypto.randomBytes(4).toString('hex')}`;
const TIMEOUT = { timeout: 10000 };

async function screenshot(page, name) {
  const dir = process.env.GYRE_SCREENSHOTS;
  if (dir) await page.screenshot({ path: path.join(dir, `admin-${name}.png`) });
}

c.main(() => withBrowser(async ({ browser, open, gyre }) => {
  const adminUrl = c.env('GYRE_ADMIN_URL');
  const names = c.env('GYRE_NODE_NAMES').split(',');
  const context = await browser.newContext({ viewport: { width: 1200, height: 800 } });
  const admin = await context.newPage();
  const violations = [];
  admin.on('console', (m) => {
    if (m.type() === 'error') violations.push(m.text());
  });
  await admin.goto(adminUrl);
  await admin.locator('#view-signin').waitFor({ state: 'visible', ...TIMEOUT });

  await admin.fill('#password', 'not the password');
  await admin.click('#signin-form button[type=submit]');
  await admin.locator('#signin-error', { hasText: 'Wrong password' }).waitFor(TIMEOUT);
  await screenshot(admin, 'signin');

  await admin.fill('#password', c.env('GYRE_ADMIN_PASSWORD'));
  await admin.click('#signin-form button[type=submit]');
  for (const name of names) {
    await admin.locator(`#fleet-table tr[data-node="${name}"]`).waitFor(TIMEOUT);
  }

  // A page on another origin subscribes through the SDK.
  const subscriber = await open('/');
  await subscriber.evaluate(async ({ endpoint, token, ch }) => {
    const t = window.gyreTest;
    const client = t.newClient(endpoint, { token });
    await t.connect(client);
    const sub = client.newSubscription(ch);
    t.state.pubs = t.collect(sub, 'publication');
    await t.subscribe(sub);
  }, { endpoint: `${gyre.replace(/^http/, 'ws')}/connection/websocket`, token: c.makeToken({ sub: '42' }), ch: CHANNEL });
  // The fleet counts the subscriber once a poll has run.
  await admin.waitForFunction(() => /\b[1-9]\d* client/.test(document.getElementById('fleet-summary').textContent), undefined, TIMEOUT);
  await screenshot(admin, 'fleet');

  await admin.click('nav a[data-view=console]');
  await admin.selectOption('#console-method', 'publish');
  await admin.fill('#console-params', JSON.stringify({ channel: CHANNEL, data: { from: 'console' } }));
  await admin.click('#console-form button[type=submit]');
  await admin.locator('#console-reply', { hasText: '"result"' }).waitFor(TIMEOUT);
  await screenshot(admin, 'console');
  const got = await subscriber.evaluate(async () => (await window.gyreTest.state.pubs.waitCount(1))[0].data);
  c.assert.deepEqual(got, { from: 'console' }, 'the console publication reached the subscribed page');

  await admin.click('nav a[data-view=tail]');
  await admin.fill('#tail-channel', CHANNEL);
  await admin.click('#tail-start');
  await admin.locator('#tail-status', { hasText: 'live' }).waitFor(TIMEOUT);
  await c.apiPublish(CHANNEL, { tailed: 1 });
  await admin.locator('#tail-list li', { hasText: '{"tailed":1}' }).waitFor(TIMEOUT);
  await screenshot(admin, 'tail');
  await admin.click('#tail-stop');

  await admin.click('nav a[data-view=namespaces]');
  await admin.locator('#namespaces-list h3', { hasText: 'chat' }).first().waitFor(TIMEOUT);
  await screenshot(admin, 'namespaces');

  await admin.click('#sign-out');
  await admin.locator('#view-signin').waitFor({ state: 'visible', ...TIMEOUT });
  await admin.reload();
  await admin.locator('#view-signin').waitFor({ state: 'visible', ...TIMEOUT });
  c.assert.ok(await admin.locator('#nav').isHidden(), 'signed out after a reload');
  c.assert.deepEqual(violations.filter((v) => !v.includes('401')), [], 'console errors in the admin page (CSP violations among them)');
  return `admin UI: ${names.length} nodes, console publish delivered, tail live, signed out`;
}));
