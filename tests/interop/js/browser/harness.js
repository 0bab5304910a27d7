'use strict';
// The browser side of the interop tests: Debian's Chromium driven by playwright-core (never a
// downloaded browser), pages served from an origin other than Gyre's, loading the npm
// `centrifuge` browser bundle.
//
// Environment: those of ../common.js, and CHROMIUM (default /usr/bin/chromium, where Debian's
// `chromium` package puts it).

const http = require('node:http');
const fs = require('node:fs');
const path = require('node:path');

let playwright;
try {
  playwright = require('playwright-core');
} catch (e) {
  throw new Error('npm package `playwright-core` is missing: run the README\'s test command (./scripts/test)');
}

const { env } = require('../common');

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
// The SDK's browser bundles (its package exports do not list them, so by path).
const SDK_DIST = path.join(__dirname, '..', 'node_modules', 'centrifuge', 'dist');
const BUNDLES = {
  '/centrifuge.js': path.join(SDK_DIST, 'centrifuge.js'),
  '/centrifuge.protobuf.js': path.join(SDK_DIST, 'centrifuge.protobuf.js'),
  '/events.js': path.join(__dirname, '..', 'events.js'),
  '/helpers.js': path.join(__dirname, 'page_helpers.js'),
};

// The HTTP base of the Gyre node under test (from its WebSocket URL).
function gyreBase() {
  const url = new URL(env('GYRE_WS_URL'));
  url.protocol = url.protocol === 'wss:' ? 'https:' : 'http:';
  return url.origin;
}

// Serves the test pages on 127.0.0.1 at a free port: `/` loads the JSON SDK, `/protobuf` the
// Protobuf one, both with the in-page helpers. Resolves with the server and its origin.
function servePages() {
  const page = (bundle) => `<!doctype html><meta charset="utf-8"><title>gyre browser test</title><link rel="icon" href="data:,">
<script src="${bundle}"></script><script src="/events.js"></script><script src="/helpers.js"></script>`;
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://pages');
    const file = BUNDLES[url.pathname];
    if (file) {
      res.writeHead(200, { 'content-type': 'text/javascript', 'cache-control': 'no-store' });
      fs.createReadStream(file).pipe(res);
    } else if (url.pathname === '/' || url.pathname === '/protobuf') {
      const bundle = url.pathname === '/' ? '/centrifuge.js' : '/centrifuge.protobuf.js';
      res.writeHead(200, { 'content-type': 'text/html', 'cache-control': 'no-store' });
      res.end(page(bundle));
    } else {
      res.writeHead(404).end();
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve({ server, port: server.address().port }));
  });
}

// Launches Chromium headless with the flags these machines need.
async function launch() {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: install Debian's chromium (apt-get install chromium), or set CHROMIUM`);
  }
  return playwright.chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
}

// Runs `fn({ browser, context, open, pagesOrigin, otherOrigin, gyre })` with a browser and the
// page server, and closes both whatever happens. `open(path, { origin })` opens a new tab (in
// `context`, or a given one) on the page server, at `pagesOrigin` (http://127.0.0.1:P) unless
// another origin is asked for; `otherOrigin` is the same server as http://localhost:P.
// Console errors of every page are printed to stderr.
async function withBrowser(fn) {
  const { server, port } = await servePages();
  const browser = await launch();
  try {
    const context = await browser.newContext();
    const pagesOrigin = `http://127.0.0.1:${port}`;
    const otherOrigin = `http://localhost:${port}`;
    const open = async (pathname = '/', { origin = pagesOrigin, in: ctx = context } = {}) => {
      const page = await ctx.newPage();
      page.on('console', (m) => {
        if (m.type() === 'error' || process.env.GYRE_INTEROP_DEBUG) {
          console.error(`[page ${origin}${pathname}] ${m.text()}`);
        }
      });
      page.on('pageerror', (e) => console.error(`[page ${origin}${pathname}] uncaught: ${e.stack || e}`));
      await page.goto(`${origin}${pathname}`);
      await page.waitForFunction(() => typeof window.gyreTest === 'object');
      return page;
    };
    return await fn({ browser, context, open, pagesOrigin, otherOrigin, gyre: gyreBase() });
  } finally {
    await browser.close().catch(() => {});
    server.close();
  }
}

// In `page`: a client of user `user` on the node's WebSocket, subscribed to `channel` (see
// `join` in page_helpers.js for what it keeps).
async function join(page, user, channel, subOptions = {}) {
  const { makeToken } = require('../common');
  const endpoint = `${gyreBase().replace(/^http/, 'ws')}/connection/websocket`;
  await page.evaluate(
    ({ endpoint, token, channel, subOptions }) => window.gyreTest.join(endpoint, token, channel, subOptions),
    { endpoint, token: makeToken({ sub: user }), channel, subOptions },
  );
}

module.exports = { withBrowser, gyreBase, join };
