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

  // Connects a client to the WebSocket `endpoint` with `token`, subscribes `channel` and keeps
  // both, with the publications and subscribed events, in `state` for later evaluate calls.
  async function join(endpoint, token, channel, subOptions = {}) {
    const client = newClient(endpoint, { token });
    state.client = client;
    await connect(client);
    const sub = client.newSubscription(channel, subOptions);
    state.sub = sub;
    state.pubs = collect(sub, 'publication');
    state.subscribed = collect(sub, 'subscribed');
    await subscribe(sub);
  }

  // State kept across page.evaluate calls of one test.
  const state = {};
  window.gyreTest = { withTimeout, waitEvent, collect, newClient, connect, subscribe, join, state };
})();
