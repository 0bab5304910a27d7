'use strict';
// In-page helpers of the browser tests (loaded after the SDK bundle and ../events.js): clients,
// connecting and subscribing with deadlines, so each test's page code stays short.
(() => {
  const { withTimeout, waitEvent, collect } = window.gyreEvents;

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
