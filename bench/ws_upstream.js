// WebSocket upstream for the benchmark (npm `ws`), behind the upstream nginx's /ws/ location.
//
//   node ws_upstream.js --port P --block FILE
//
//   GET /             200 "ok" (readiness)
//   WS  /ws/echo      sends every message back as it came (binary or text)
//   WS  /ws/stream?messages=N
//                     sends N binary messages of 1 MiB, then closes with 1000. Message i is the
//                     block from FILE with its first 8 bytes replaced by i (big-endian), as
//                     bench/payload.py builds it, so the client's SHA-1 can be checked.
//
// Listens on 127.0.0.1 only. The `ws` package is found through NODE_PATH.
'use strict';

const fs = require('fs');
const http = require('http');
const { WebSocketServer } = require('ws');

const STAMP_SIZE = 8;
// Messages handed to the socket before waiting for a write callback. Straight to the upstream,
// a window of 4 gave 0.9-1.2 GB/s here and 16 gave 1.0-1.8 GB/s (a noisy machine): keep the
// sender from being what limits the stream.
const STREAM_WINDOW = 16;

function parseArgs(argv) {
  const args = {};
  for (let i = 0; i < argv.length; i += 2) args[argv[i].replace(/^--/, '')] = argv[i + 1];
  if (!args.port || !args.block) throw new Error('usage: ws_upstream.js --port P --block FILE');
  return { port: Number(args.port), block: fs.readFileSync(args.block) };
}

function echo(ws) {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
}

function stream(ws, block, messages) {
  let sent = 0;
  let inFlight = 0;
  const pump = () => {
    while (inFlight < STREAM_WINDOW && sent < messages && ws.readyState === ws.OPEN) {
      const msg = Buffer.from(block);
      msg.writeBigUInt64BE(BigInt(sent), 0);
      sent += 1;
      inFlight += 1;
      ws.send(msg, { binary: true }, (err) => {
        inFlight -= 1;
        if (err) return;
        if (sent === messages && inFlight === 0) ws.close(1000, 'done');
        else pump();
      });
    }
  };
  pump();
}

function main() {
  const { port, block } = parseArgs(process.argv.slice(2));
  if (block.length < STAMP_SIZE) throw new Error('block too small');
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('ok\n');
  });
  const wss = new WebSocketServer({ server, perMessageDeflate: false, maxPayload: 64 << 20 });
  wss.on('connection', (ws, req) => {
    const url = new URL(req.url, 'http://upstream');
    ws.on('error', () => ws.terminate());
    if (url.pathname === '/ws/echo') {
      echo(ws);
    } else if (url.pathname === '/ws/stream') {
      stream(ws, block, Number(url.searchParams.get('messages') || 64));
    } else {
      ws.close(1008, 'unknown path');
    }
  });
  server.listen(port, '127.0.0.1');
  const stop = () => { wss.close(); server.close(); process.exit(0); };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main();
