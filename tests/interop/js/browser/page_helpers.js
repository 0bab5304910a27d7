'use strict';
// In-page helpers of the browser tests (loaded after the SDK bundle): waiting for SDK events
// with deadlines and recording what arrived, so each test's page code stays short.
(() => {
  const WAIT_MS = 10000;

  function withTimeout(promise, what, ms = WAIT_MS) {
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timeout after ${ms} ms: ${what}`)), ms);
    });
    return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
  }

  // The next `event` of `emitter` whose context satisfies `predicate`.
  function waitEvent(emitter, event, { timeout = WAIT_MS, predicate = () => true } = {}) {
    let handler;
    const p = new Promise((resolve) => {
      handler = (ctx) => {
        if (predicate(ctx)) resolve(ctx);
      };
      emitter.on(event, handler);
    });
    return withTimeout(p, `waiting for '${event}'`, timeout).finally(() => emitter.removeListener(event, handler));
  }

  // Records every `event` of `emitter`; `waitCount(n)` resolves once n arrived.
  function collect(emitter, event) {
    const items = [];
    const waiters = [];
    emitter.on(event, (ctx) => {
      items.push(ctx);
      for (const w of waiters.slice()) {
        if (items.length >= w.n) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(items);
        }
      }
    });
    return {
      items,
      waitCount(n, timeout = WAIT_MS) {
        if (items.length >= n) return Promise.resolve(items);
        const p = new Promise((resolve) => waiters.push({ n, resolve }));
        return withTimeout(p, `waiting for ${n} '${event}' events (got ${items.length})`, timeout);
      },
    };
  }

  // A client with short reconnect delays whose errors are kept in `client.errors`.
  function newClient(endpoint, options = {}) {
    const client = new Centrifuge(endpoint, { minReconnectDelay: 200, maxReconnectDelay: 1000, timeout: 5000, ...options });
    client.errors = [];
    client.on('error', (ctx) => client.errors.push(ctx.error ? ctx.error.message : String(ctx)));
    return client;
  }

  async function connect(client) {
    const connected = waitEvent(client, 'connected');
    client.connect();
    return connected;
  }

  async function subscribe(sub) {
    const subscribed = waitEvent(sub, 'subscribed');
    sub.subscribe();
    return subscribed;
  }

  // State kept across page.evaluate calls of one test.
  window.gyreTest = { withTimeout, waitEvent, collect, newClient, connect, subscribe, state: {} };
})();
