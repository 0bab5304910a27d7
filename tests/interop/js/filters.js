'use strict';
// centrifuge-js `tagsFilter` (JSON and Protobuf builds): only API publications whose tags
// pass the filter reach the subscription (namespace `tf`, see tests/tests/e2e/filters.rs).

const crypto = require('node:crypto');
const c = require('./common');

const FILTER = {
  op: 'and',
  nodes: [{ key: 'ticker', cmp: 'eq', val: 'AAPL' }, { key: 'price', cmp: 'gte', val: '100' }],
};

async function run(cleanup, protobuf) {
  const channel = `tf:js-${crypto.randomBytes(6).toString('hex')}`;
  const client = cleanup.add(c.newClient({ token: c.makeToken({ sub: '42' }) }, { protobuf }));
  await c.connect(client);
  const sub = c.newSubscription(client, channel, { tagsFilter: FILTER });
  const pubs = c.collect(sub, 'publication');
  await c.subscribe(sub);
  const quotes = [['AAPL', '150'], ['MSFT', '300'], ['AAPL', '50'], ['AAPL', '100.0']];
  for (const [n, [ticker, price]] of quotes.entries()) {
    await c.api('publish', { channel, data: { n: n + 1 }, tags: { ticker, price } });
  }
  await c.api('publish', { channel, data: { n: 'last' }, tags: { ticker: 'AAPL', price: '101' } });
  const got = await pubs.waitCount(3);
  const data = got.map((p) => (protobuf ? JSON.parse(new TextDecoder().decode(p.data)) : p.data).n);
  c.assert.deepEqual(data, [1, 4, 'last']);
  c.assert.deepEqual(client.errors, [], 'client error events');
  client.disconnect();
}

c.main(async (cleanup) => {
  await run(cleanup, false);
  await run(cleanup, true);
  return 'filters ok over JSON and Protobuf';
});
