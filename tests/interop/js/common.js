'use strict';
// Shared helpers for the interop scripts: environment, HS256 tokens, the HTTP API,
// clients of the real `centrifuge` SDK and waiting with timeouts.
//
// Environment: GYRE_WS_URL, GYRE_API_URL, GYRE_API_KEY, GYRE_SECRET.

const crypto = require('node:crypto');
const assert = require('node:assert/strict');
const { Centrifuge } = require('centrifuge');
const { Centrifuge: CentrifugeProtobuf } = require('centrifuge/build/protobuf');
const WebSocket = require('ws');

const { WAIT_MS, withTimeout, waitEvent, collect } = require('./events');

function env(name) {
  const value = process.env[name];
  if (!value) {
    throw new Error(`environment variable ${name} is not set`);
  }
  return value;
}

function base64url(input) {
  return Buffer.from(input).toString('base64url');
}

// An HS256 JWT for `claims` (exp defaults to an hour from now), signed with `secret`
// (GYRE_SECRET by default).
function makeToken(claims, secret) {
  const key = secret === undefined ? env('GYRE_SECRET') : secret;
  const payload = { exp: Math.floor(Date.now() / 1000) + 3600, ...claims };
  const signingInput = `${base64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))}.${base64url(JSON.stringify(payload))}`;
  const signature = crypto.createHmac('sha256', key).update(signingInput).digest('base64url');
  return `${signingInput}.${signature}`;
}

// Calls the HTTP API method `method` with JSON `body`; returns the parsed reply.
// Throws on a non-200 status or a body that is not JSON.
async function api(method, body) {
  const url = `${env('GYRE_API_URL')}/${method}`;
  const resp = await fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'X-API-Key': env('GYRE_API_KEY') },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(WAIT_MS),
  });
  const text = await resp.text();
  if (resp.status !== 200) {
    throw new Error(`POST /${method}: HTTP ${resp.status}: ${text}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`POST /${method}: reply is not JSON: ${text}`);
  }
}

// Publishes through the HTTP API and checks the reply carries `result` and no `error`.
async function apiPublish(channel, data) {
  const reply = await api('publish', { channel, data });
  if (reply.error || typeof reply.result !== 'object' || reply.result === null) {
    throw new Error(`publish to ${channel}: unexpected API reply ${JSON.stringify(reply)}`);
  }
  return reply;
}

// Debug output, on when GYRE_INTEROP_DEBUG is set.
function debug(...args) {
  if (process.env.GYRE_INTEROP_DEBUG) {
    console.error('[debug]', ...args);
  }
}

// A client of the real SDK over `ws` (its Protobuf build when `protobuf`; other `transports`
// when given). Its `error` events are recorded in `client.errors` (an EventEmitter without an
// `error` listener would throw).
function newClient(options, { protobuf = false, transports } = {}) {
  const Impl = protobuf ? CentrifugeProtobuf : Centrifuge;
  const client = new Impl(transports || env('GYRE_WS_URL'), {
    websocket: WebSocket,
    minReconnectDelay: 200,
    maxReconnectDelay: 1000,
    timeout: 5000,
    debug: !!process.env.GYRE_INTEROP_DEBUG,
    ...options,
  });
  client.errors = [];
  client.on('error', (ctx) => {
    client.errors.push(ctx);
    debug('client error', JSON.stringify(ctx));
  });
  return client;
}

// A subscription of `client` to `channel` whose `error` events are recorded in `sub.errors`.
function newSubscription(client, channel, options) {
  const sub = client.newSubscription(channel, options);
  sub.errors = [];
  sub.on('error', (ctx) => {
    sub.errors.push(ctx);
    debug(`subscription ${channel} error`, JSON.stringify(ctx));
  });
  return sub;
}

// Connects `client` and waits for its `connected` event; returns that context.
async function connect(client) {
  const connected = waitEvent(client, 'connected');
  client.connect();
  const ctx = await connected;
  assert.ok(typeof ctx.client === 'string' && ctx.client.length > 0, `connected without a client id: ${JSON.stringify(ctx)}`);
  return ctx;
}

// Subscribes `sub` and waits for its `subscribed` event; returns that context.
async function subscribe(sub) {
  const subscribed = waitEvent(sub, 'subscribed');
  sub.subscribe();
  return subscribed;
}

// Resolves with the rejection reason of `promise`; fails if it resolves.
async function expectReject(promise, what) {
  let value;
  try {
    value = await withTimeout(promise, what);
  } catch (err) {
    if (err instanceof Error && err.message.startsWith('timeout after')) {
      throw err;
    }
    return err;
  }
  throw new Error(`${what}: expected a rejection, got ${JSON.stringify(value)}`);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Runs `fn(cleanup)` with a 60 s watchdog; exits 0 after printing its returned summary,
// or 1 after printing the failure (an error thrown as a non-Error, e.g. an SDK error
// object, is printed as JSON). Clients passed to `cleanup.add` are disconnected either way.
function main(fn) {
  setTimeout(() => {
    console.error('timeout');
    process.exit(1);
  }, 60000).unref();
  const clients = [];
  const cleanup = { add: (c) => { clients.push(c); return c; } };
  const disconnectAll = () => {
    for (const c of clients) {
      try {
        c.disconnect();
      } catch (e) {
        // Ignore: exiting anyway.
      }
    }
  };
  fn(cleanup).then(
    (summary) => {
      disconnectAll();
      console.log(`ok: ${summary}`);
      // A moment for the close frames to go out, then exit whatever is still open.
      setTimeout(() => process.exit(0), 100);
    },
    (err) => {
      disconnectAll();
      console.error(`FAIL: ${err && err.stack ? err.stack : JSON.stringify(err)}`);
      setTimeout(() => process.exit(1), 100);
    },
  );
}

// A client of user `user` whose reconnects can be held back: getData runs before every connect
// attempt, so holding it while publications are made keeps the reconnect from overtaking them
// however short the reconnect delay.
function holdableClient(user) {
  let gate = null;
  const client = newClient({
    token: makeToken({ sub: user }),
    getData: async () => {
      if (gate) {
        await gate;
      }
      return null;
    },
  });
  client.hold = () => {
    let release;
    gate = new Promise((resolve) => { release = resolve; });
    return release;
  };
  return client;
}

// Disconnects `user` through the API with the reconnect code 3011, publishes {n} for n in
// `missed` to `channel` once the client knows it is away, then lets it reconnect. Returns the
// `connecting` and the new `connected` contexts.
async function missWhileAway(client, user, channel, missed) {
  const connecting = waitEvent(client, 'connecting');
  const reconnected = waitEvent(client, 'connected');
  const release = client.hold();
  const reply = await api('disconnect', { user, disconnect: { code: 3011, reason: 'force reconnect' } });
  assert.ok(!reply.error, `disconnect API reply ${JSON.stringify(reply)}`);
  const away = await connecting;
  assert.equal(away.code, 3011, `connecting ${JSON.stringify(away)}`);
  for (const n of missed) {
    await apiPublish(channel, { n });
  }
  release();
  return { away, again: await reconnected };
}

module.exports = {
  WAIT_MS,
  assert,
  env,
  makeToken,
  api,
  apiPublish,
  debug,
  newClient,
  newSubscription,
  holdableClient,
  missWhileAway,
  withTimeout,
  waitEvent,
  collect,
  connect,
  subscribe,
  expectReject,
  sleep,
  main,
};
