'use strict';
// Every client transport in Chromium, from a page on another origin (127.0.0.1 at another
// port, allowed by the pattern `http://127.0.0.1:*`): WebSocket with the JSON and the Protobuf
// SDK builds; HTTP-streaming and SSE with bidirectional emulation (a cross-origin streamed
// fetch or EventSource plus cross-origin POSTs to /emulation); unidirectional SSE through
// EventSource and uni_http_stream through fetch. Each one connects, subscribes, receives an
// API publication and (when bidirectional) publishes from the page.

const crypto = require('node:crypto');
const c = require('../common');
const { withBrowser } = require('./harness');

const channel = (kind) => `chat:br-${kind}-${crypto.randomBytes(4).toString('hex')}`;

// Connects in the page over `transport`, subscribes, and publishes from the page; resolves
// once the page holds the API publication and its own.
async function bidirectional(page, gyre, transport, ch, binary = false) {
  const endpoints = {
    websocket: `${gyre.replace(/^http/, 'ws')}/connection/websocket`,
    http_stream: `${gyre}/connection/http_stream`,
    sse: `${gyre}/connection/sse`,
  };
  const ready = await page.evaluate(async ({ endpoint, transport, token, ch, emulation }) => {
    const t = window.gyreTest;
    const client = t.newClient([{ transport, endpoint }], { token, emulationEndpoint: emulation });
    const connected = await t.connect(client);
    const sub = client.newSubscription(ch);
    t.state.pubs = t.collect(sub, 'publication');
    await t.subscribe(sub);
    t.state.client = client;
    t.state.sub = sub;
    return { transport: connected.transport, client: connected.client };
  }, { endpoint: endpoints[transport], transport, token: c.makeToken({ sub: '42' }), ch, emulation: `${gyre}/emulation` });
  c.assert.equal(ready.transport, transport, `connected over ${ready.transport}`);
  await c.apiPublish(ch, { from: 'api' });
  // The Protobuf build carries bytes: JSON text encoded by the page, decoded on receipt.
  const got = await page.evaluate(async (binary) => {
    const t = window.gyreTest;
    const mine = { from: 'page' };
    const out = binary ? new TextEncoder().encode(JSON.stringify(mine)) : mine;
    await t.withTimeout(t.state.sub.publish(out), 'publish from the page');
    const pubs = await t.state.pubs.waitCount(2);
    const errors = t.state.client.errors;
    t.state.client.disconnect();
    const decode = (d) => (d instanceof Uint8Array ? JSON.parse(new TextDecoder().decode(d)) : d);
    return { data: pubs.map((p) => decode(p.data)), errors };
  }, binary);
  c.assert.deepEqual(got.data, [{ from: 'api' }, { from: 'page' }], `${transport}: publications`);
  c.assert.deepEqual(got.errors, [], `${transport}: client errors`);
  return `${transport} ok`;
}

// Unidirectional SSE: EventSource with the connect request in `cf_connect`.
async function uniSse(page, gyre, ch) {
  const url = new URL(`${gyre}/connection/uni_sse`);
  url.searchParams.set('cf_connect', JSON.stringify({ token: c.makeToken({ sub: '42', channels: [ch] }) }));
  await page.evaluate((href) => {
    const t = window.gyreTest;
    t.state.events = [];
    t.state.es = new EventSource(href);
    t.state.es.onmessage = (e) => t.state.events.push(JSON.parse(e.data));
  }, url.toString());
  // The connect push lists the server-side subscription.
  await page.waitForFunction((ch) => window.gyreTest.state.events.some((e) => e.connect && e.connect.subs && e.connect.subs[ch]), ch, { timeout: 10000 });
  await c.apiPublish(ch, { over: 'uni_sse' });
  const pub = await page.waitForFunction(
    () => window.gyreTest.state.events.find((e) => e.pub),
    undefined,
    { timeout: 10000 },
  );
  const event = await pub.jsonValue();
  await page.evaluate(() => window.gyreTest.state.es.close());
  c.assert.deepEqual(event.pub.data, { over: 'uni_sse' }, `uni_sse event ${JSON.stringify(event)}`);
  return 'uni_sse ok';
}

// Unidirectional HTTP-streaming: a cross-origin fetch POST read as newline-delimited JSON.
async function uniHttpStream(page, gyre, ch) {
  const token = c.makeToken({ sub: '42', channels: [ch] });
  await page.evaluate(({ url, token }) => {
    const t = window.gyreTest;
    t.state.lines = [];
    t.state.abort = new AbortController();
    t.state.read = (async () => {
      const resp = await fetch(url, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ token }),
        signal: t.state.abort.signal,
      });
      const reader = resp.body.getReader();
      const decoder = new TextDecoder();
      let buffered = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buffered += decoder.decode(value, { stream: true });
        let nl;
        while ((nl = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, nl).trim();
          buffered = buffered.slice(nl + 1);
          if (line) t.state.lines.push(JSON.parse(line));
        }
      }
    })().catch((e) => { t.state.failure = String(e); });
  }, { url: `${gyre}/connection/uni_http_stream`, token });
  await page.waitForFunction(
    (ch) => window.gyreTest.state.failure || window.gyreTest.state.lines.some((e) => e.connect && e.connect.subs && e.connect.subs[ch]),
    ch,
    { timeout: 10000 },
  );
  await c.apiPublish(ch, { over: 'uni_http_stream' });
  const found = await page.waitForFunction(
    () => window.gyreTest.state.failure || window.gyreTest.state.lines.find((e) => e.pub),
    undefined,
    { timeout: 10000 },
  );
  const event = await found.jsonValue();
  await page.evaluate(() => window.gyreTest.state.abort.abort());
  c.assert.ok(typeof event === 'object', `uni_http_stream failed in the page: ${event}`);
  c.assert.deepEqual(event.pub.data, { over: 'uni_http_stream' }, `uni_http_stream event ${JSON.stringify(event)}`);
  return 'uni_http_stream ok';
}

c.main(() => withBrowser(async ({ open, gyre }) => {
  const done = [];
  const page = await open('/');
  for (const transport of ['websocket', 'http_stream', 'sse']) {
    done.push(await bidirectional(page, gyre, transport, channel(transport)));
  }
  done.push(await uniSse(page, gyre, channel('uni-sse')));
  done.push(await uniHttpStream(page, gyre, channel('uni-hs')));
  const protobuf = await open('/protobuf');
  done.push(`protobuf ${await bidirectional(protobuf, gyre, 'websocket', channel('pb'), true)}`);
  return done.join(', ');
}));
