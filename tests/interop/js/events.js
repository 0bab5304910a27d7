'use strict';
// Waiting for SDK events with deadlines, shared by the Node scripts (require) and the browser
// pages (a plain script setting `gyreEvents`): the SDK's emitters have the same API in both.
(function (root, factory) {
  if (typeof module === 'object' && module.exports) {
    module.exports = factory();
  } else {
    root.gyreEvents = factory();
  }
})(typeof self !== 'undefined' ? self : this, () => {
  // Upper bound of any single wait.
  const WAIT_MS = 10000;

  // Rejects with "timeout: <what>" unless `promise` settles within `ms`.
  function withTimeout(promise, what, ms = WAIT_MS) {
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timeout after ${ms} ms: ${what}`)), ms);
    });
    return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
  }

  // Resolves with the context of the next `event` of `emitter` that satisfies `predicate`.
  function waitEvent(emitter, event, { timeout = WAIT_MS, predicate = () => true } = {}) {
    let handler;
    const p = new Promise((resolve) => {
      handler = (ctx) => {
        if (predicate(ctx)) {
          resolve(ctx);
        }
      };
      emitter.on(event, handler);
    });
    return withTimeout(p, `waiting for '${event}'`, timeout).finally(() => emitter.removeListener(event, handler));
  }

  // Records every `event` of `emitter` from now on; `waitCount(n)` waits for n of them.
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
        if (items.length >= n) {
          return Promise.resolve(items);
        }
        const p = new Promise((resolve) => waiters.push({ n, resolve }));
        return withTimeout(p, `waiting for ${n} '${event}' events (got ${items.length})`, timeout);
      },
    };
  }

  return { WAIT_MS, withTimeout, waitEvent, collect };
});
