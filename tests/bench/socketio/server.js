'use strict';
// Socket.IO 4 peer for gyre-bench (BENCHMARKS.md): a client joins the room named by its
// `channel` query parameter; POST /api/publish {"channel","data"} emits `pub` with the data to
// that room. WebSocket transport only, as the load tool speaks it.
const http = require('node:http');
const { Server } = require('socket.io');

const [host, port] = (process.argv[2] || '127.0.0.1:8200').split(':');
const server = http.createServer((req, res) => {
  if (req.method !== 'POST' || req.url !== '/api/publish') {
    res.writeHead(404).end();
    return;
  }
  let body = '';
  req.on('data', (chunk) => { body += chunk; });
  req.on('end', () => {
    try {
      const { channel, data } = JSON.parse(body);
      io.to(channel).emit('pub', data);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"result":{}}');
    } catch (e) {
      res.writeHead(400).end();
    }
  });
});
const io = new Server(server, { transports: ['websocket'], serveClient: false, perMessageDeflate: false });
io.on('connection', (socket) => socket.join(String(socket.handshake.query.channel || '')));
server.listen(Number(port), host, () => console.error(`socket.io peer on ${host}:${port}`));
