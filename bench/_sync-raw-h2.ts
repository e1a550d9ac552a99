// Helper of bench/sync.ts, not a benchmark (bench/run.ts skips names starting with "_"): a plain HTTP/2 cleartext
// server that streams one file in 1 MiB writes, the baseline for chunk streaming.
// Usage: node bench/_sync-raw-h2.ts FILE  (prints its port, serves until killed)
import http2 from 'node:http2';
import { createReadStream } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { H2_CONNECTION_WINDOW, H2_SETTINGS } from '../src/sync/client.ts';

const file = process.argv[2]!;
// Same HTTP/2 settings and windows as the daemon and the sync client (src/sync/client.ts), so only the RPC layer differs.
const server = http2.createServer({ settings: H2_SETTINGS }, (req, res) => {
  res.writeHead(200, { 'content-type': 'application/octet-stream' });
  createReadStream(file, { highWaterMark: 1024 * 1024 }).pipe(res);
});
server.on('session', (s) => s.once('localSettings', () => s.setLocalWindowSize(H2_CONNECTION_WINDOW)));
server.listen(0, '127.0.0.1', () => console.log((server.address() as AddressInfo).port));
