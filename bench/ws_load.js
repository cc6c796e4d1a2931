// WebSocket echo load for the benchmark (npm `ws`): Python clients would be the bottleneck here.
//
//   node ws_load.js echo --url WS_URL --clients N --duration-s S --message-bytes B --timeout-s T
//
// N clients connect, then each sends one binary message and waits for its echo, again and again
// until S seconds have passed; every echo is compared byte for byte with what was sent.
// (The 64 MiB stream is read by bench/ws_stream.py, which is faster at bulk bytes.)
//
// Prints one JSON line: {ok, seconds, bytes, errors, error}. `ok` counts verified round trips;
// failures are counted in `errors`, never in `ok`.
'use strict';

const crypto = require('crypto');
const WebSocket = require('ws');

const CLOSE_WAIT_MS = 2000;
const WS_OPTIONS = { perMessageDeflate: false, skipUTF8Validation: true, maxPayload: 256 << 20 };

function parseArgs(argv) {
  const args = { mode: argv[0] };
  for (let i = 1; i < argv.length; i += 2) args[argv[i].replace(/^--/, '')] = argv[i + 1];
  return args;
}

function result(fields) {
  const out = { ok: 0, seconds: 0, bytes: 0, errors: 0, error: null, ...fields };
  process.stdout.write(JSON.stringify(out) + '\n');
}

function open(url, timeoutMs) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, WS_OPTIONS);
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error('connect timeout'));
    }, timeoutMs);
    ws.once('open', () => { clearTimeout(timer); resolve(ws); });
    ws.once('unexpected-response', (req, res) => {
      clearTimeout(timer);
      reject(new Error(`handshake answered HTTP ${res.statusCode}`));
      ws.terminate();
    });
    ws.once('error', (err) => { clearTimeout(timer); reject(err); });
  });
}

// One echo client: ping-pong until the deadline. Resolves with its count of verified round trips.
function echoClient(ws, id, messageBytes, deadline, stats) {
  return new Promise((resolve) => {
    const seed = crypto.createHash('sha256').update(`client-${id}`).digest();
    const pattern = Buffer.alloc(messageBytes);
    for (let off = 0; off < messageBytes; off += seed.length) seed.copy(pattern, off);
    let sent = null;
    let seq = 0;
    let done = false;
    const finish = (err) => {
      if (done) return;
      done = true;
      ws.removeAllListeners('message');
      if (err) {
        stats.errors += 1;
        stats.error = stats.error || err;
        ws.terminate();
        resolve();
        return;
      }
      // A clean close, so the proxy under test sees a normal end rather than a reset; the
      // clock already stopped at this client's last verified echo.
      stats.end = Math.max(stats.end, performance.now());
      const timer = setTimeout(() => { ws.terminate(); resolve(); }, CLOSE_WAIT_MS);
      ws.once('close', () => { clearTimeout(timer); resolve(); });
      ws.close(1000, 'done');
    };
    const sendNext = () => {
      sent = Buffer.from(pattern);
      sent.writeUInt32BE(seq >>> 0, 0);
      seq += 1;
      ws.send(sent, { binary: true });
    };
    ws.on('message', (data) => {
      if (!Buffer.isBuffer(data) || !data.equals(sent)) {
        finish(`echo mismatch on client ${id}`);
        return;
      }
      stats.ok += 1;
      stats.bytes += data.length;
      if (performance.now() >= deadline) finish(null);
      else sendNext();
    });
    ws.once('close', (code) => finish(`closed with ${code} during echo`));
    ws.on('error', (err) => finish(String(err.message || err)));
    sendNext();
  });
}

async function runEcho(args) {
  const clients = Number(args.clients);
  const timeoutMs = Number(args['timeout-s']) * 1000;
  const stats = { ok: 0, bytes: 0, errors: 0, error: null, end: 0 };
  const sockets = await Promise.all(
    Array.from({ length: clients }, () => open(args.url, timeoutMs)));
  const start = performance.now();
  const deadline = start + Number(args['duration-s']) * 1000;
  const hard = setTimeout(() => {
    stats.errors += 1;
    stats.error = stats.error || 'timeout';
    const seconds = (performance.now() - start) / 1000;
    delete stats.end;
    result({ ...stats, seconds });
    process.exit(0);
  }, timeoutMs);
  await Promise.all(sockets.map((ws, i) =>
    echoClient(ws, i, Number(args['message-bytes']), deadline, stats)));
  clearTimeout(hard);
  const end = stats.end || performance.now();
  delete stats.end;
  result({ ...stats, seconds: (end - start) / 1000 });
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  if (args.mode === 'echo') await runEcho(args);
  else throw new Error('usage: ws_load.js echo --url ... (see the header)');
}

main().catch((err) => {
  result({ errors: 1, error: String(err.message || err) });
  process.exit(0);
});
