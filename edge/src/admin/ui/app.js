// The admin UI: sign-in, the fleet with live charts, a console for every server API method, a
// live tail of one channel and the namespaces in effect. Everything is built with DOM calls
// and textContent (no HTML from data), so what the node returns cannot inject markup.

import * as api from './api.js';
import { LineChart } from './chart.js';

const $ = (id) => document.getElementById(id);
const VIEWS = ['signin', 'fleet', 'console', 'tail', 'namespaces'];
const POLL_MS = 2000;

const EXAMPLES = {
  publish: { channel: 'chat:index', data: { text: 'hello' } },
  broadcast: { channels: ['chat:a', 'chat:b'], data: { text: 'hello' } },
  subscribe: { user: '42', channel: 'chat:index' },
  unsubscribe: { user: '42', channel: 'chat:index' },
  disconnect: { user: '42' },
  refresh: { user: '42', expire_at: 0 },
  presence: { channel: 'chat:index' },
  presence_stats: { channel: 'chat:index' },
  history: { channel: 'chat:index', limit: 10, reverse: true },
  history_remove: { channel: 'chat:index' },
  channels: { pattern: '*' },
  info: {},
  batch: { commands: [{ publish: { channel: 'chat:index', data: {} } }] },
};

let poll = null;
let tailAbort = null;
const charts = {};

function show(view) {
  for (const v of VIEWS) $(`view-${v}`).hidden = v !== view;
  for (const a of document.querySelectorAll('nav a')) a.classList.toggle('active', a.dataset.view === view);
  clearInterval(poll);
  poll = null;
  if (view === 'fleet') {
    refreshFleet();
    poll = setInterval(refreshFleet, POLL_MS);
  } else if (view === 'namespaces') {
    showNamespaces();
  }
}

function route() {
  const view = location.hash.slice(1) || 'fleet';
  show(VIEWS.includes(view) && view !== 'signin' ? view : 'fleet');
}

// Signed out (or the session expired): back to the sign-in form.
function signedOut() {
  api.session.clear();
  stopTail();
  $('nav').hidden = true;
  show('signin');
}

async function guarded(fn) {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof api.HttpError && e.status === 401) {
      signedOut();
      return undefined;
    }
    throw e;
  }
}

function uptime(seconds) {
  const d = Math.floor(seconds / 86400);
  const h = Math.floor((seconds % 86400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  return d ? `${d}d ${h}h` : h ? `${h}h ${m}m` : `${m}m ${seconds % 60}s`;
}

function cell(row, text, cls) {
  const td = row.insertCell();
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
}

let lastDeliveries = null;

async function refreshFleet() {
  try {
    const reply = await guarded(() => api.call('info', {}));
    if (!reply) return;
    if (reply.error) throw new Error(reply.error.message);
    const nodes = [...reply.result.nodes].sort((a, b) => a.name.localeCompare(b.name));
    const body = $('fleet-table').tBodies[0];
    body.replaceChildren();
    let clients = 0;
    let deliveries = 0;
    for (const n of nodes) {
      const row = body.insertRow();
      row.dataset.node = n.name;
      cell(row, n.name);
      cell(row, n.version);
      cell(row, uptime(n.uptime || 0));
      cell(row, n.num_clients || 0, 'num');
      cell(row, n.num_users || 0, 'num');
      cell(row, n.num_subs || 0, 'num');
      cell(row, n.num_channels || 0, 'num');
      // Every node listed reported through the engine: it reaches it.
      cell(row, `${n.engine || 'unknown'}: reachable`, 'ok');
      clients += n.num_clients || 0;
      deliveries += n.num_deliveries || 0;
    }
    $('fleet-summary').textContent = `${nodes.length} node(s), ${clients} client(s)`;
    charts.connections.push(clients);
    const now = Date.now();
    if (lastDeliveries) {
      const seconds = (now - lastDeliveries.at) / 1000;
      charts.deliveries.push(Math.max(0, deliveries - lastDeliveries.total) / seconds);
    }
    lastDeliveries = { at: now, total: deliveries };
    $('fleet-error').textContent = '';
  } catch (e) {
    $('fleet-error').textContent = `cannot read the fleet: ${e.message}`;
  }
}

async function showNamespaces() {
  const list = $('namespaces-list');
  try {
    const reply = await guarded(() => api.namespaces());
    if (!reply) return;
    list.replaceChildren();
    for (const ns of reply.namespaces) {
      const box = document.createElement('div');
      box.className = 'ns';
      const title = document.createElement('h3');
      title.textContent = ns.name === '' ? '(channels without a namespace)' : ns.name;
      const pre = document.createElement('pre');
      pre.textContent = JSON.stringify(ns.options, null, 2);
      box.append(title, pre);
      list.append(box);
    }
  } catch (e) {
    list.textContent = `cannot read the namespaces: ${e.message}`;
  }
}

function setUpConsole() {
  const select = $('console-method');
  for (const m of Object.keys(EXAMPLES)) select.add(new Option(m, m));
  const example = () => { $('console-params').value = JSON.stringify(EXAMPLES[select.value], null, 2); };
  select.addEventListener('change', example);
  example();
  $('console-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const out = $('console-reply');
    let params;
    try {
      params = JSON.parse($('console-params').value || '{}');
    } catch (e) {
      out.textContent = `params are not JSON: ${e.message}`;
      return;
    }
    out.textContent = '…';
    try {
      const reply = await guarded(() => api.call(select.value, params));
      if (reply) out.textContent = JSON.stringify(reply, null, 2);
    } catch (e) {
      out.textContent = `request failed: ${e.message}`;
    }
  });
}

function stopTail() {
  if (tailAbort) tailAbort.abort();
  tailAbort = null;
  $('tail-start').disabled = false;
  $('tail-stop').disabled = true;
}

function setUpTail() {
  $('tail-stop').addEventListener('click', () => {
    stopTail();
    $('tail-status').textContent = 'stopped';
  });
  $('tail-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    stopTail();
    const channel = $('tail-channel').value.trim();
    const list = $('tail-list');
    list.replaceChildren();
    tailAbort = new AbortController();
    $('tail-start').disabled = true;
    $('tail-stop').disabled = false;
    $('tail-status').textContent = `tailing ${channel}`;
    try {
      await guarded(() => api.tail(channel, (event) => {
        if (event.connect) {
          $('tail-status').textContent = `tailing ${channel}: live`;
          return;
        }
        if (event.disconnect) {
          $('tail-status').textContent = `${channel}: closed (${event.disconnect.code} ${event.disconnect.reason})`;
          return;
        }
        const kind = event.pub ? 'publication' : event.join ? 'join' : event.leave ? 'leave' : null;
        if (!kind) return;
        const body = event.pub || event.join || event.leave;
        const item = document.createElement('li');
        item.className = `tail-${kind}`;
        const offset = event.pub && event.pub.offset ? `#${event.pub.offset} ` : '';
        item.textContent = `${new Date().toLocaleTimeString()} ${kind} ${offset}${JSON.stringify(event.pub ? body.data : body.info)}`;
        list.prepend(item);
        while (list.children.length > 500) list.lastChild.remove();
      }, tailAbort.signal));
      $('tail-status').textContent = `${channel}: the stream ended`;
    } catch (e) {
      if (e.name !== 'AbortError') $('tail-status').textContent = `tail failed: ${e.message}`;
    } finally {
      $('tail-start').disabled = false;
      $('tail-stop').disabled = true;
    }
  });
}

async function start() {
  charts.connections = new LineChart($('chart-connections'));
  charts.deliveries = new LineChart($('chart-deliveries'));
  setUpConsole();
  setUpTail();
  $('sign-out').addEventListener('click', () => {
    signedOut();
    location.hash = '';
  });
  $('signin-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    $('signin-error').textContent = '';
    try {
      await api.signIn($('password').value);
      $('password').value = '';
      $('nav').hidden = false;
      route();
    } catch (e) {
      $('signin-error').textContent = e.status === 401 ? 'Wrong password' : e.message;
    }
  });
  window.addEventListener('hashchange', () => {
    if (!$('nav').hidden) route();
  });
  const state = await api.init();
  if (state.authenticated || state.insecure) {
    $('nav').hidden = false;
    $('sign-out').hidden = state.insecure;
    route();
  } else {
    signedOut();
  }
}

start();
