// File facade benchmark, one run, everything on loopback against a real daemon process (pi role, token checked on
// every request) and baselines in a process of their own (bench/_files-baseline.ts):
//   1. GET /api/files/list of a 100-entry folder, req/s at 50 concurrent keep-alive clients, against a bare Fastify
//      route returning the same JSON (goal >= 70 %); p50/p99 latency of both at that concurrency;
//   2. upload of a 256 MiB file (multipart, streamed into the store) against a multipart sink that reads and drops it;
//   3. cache-hit download of that file against streaming the same bytes from a plain file (goal >= 80 %).
// Run: npx node bench/files.ts [--seconds 5] [--mib 256] [--rounds 3]

import fs from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { PassThrough } from 'node:stream';
import http from 'node:http';
import os from 'node:os';
import { NODE_FLAGS } from '../src/node-flags.ts';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { SignJWT } from 'jose';
import { CLI } from '../test/helpers/daemon-process.ts';
import { writeRandomFile } from '../test/helpers/random-file.ts';

const { values: opt } = parseArgs({ options: { seconds: { type: 'string', default: '5' }, mib: { type: 'string', default: '256' }, rounds: { type: 'string', default: '3' } } });
const SECONDS = Number(opt.seconds);
const MiB = 1024 * 1024;
const FILE_BYTES = Number(opt.mib) * MiB;
const ROUNDS = Number(opt.rounds);
const CONCURRENCY = 50;
const JWT_SECRET = 'bench-secret-of-at-least-32-characters!!';

const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'balupi-bench-files-'));
const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
const now = Math.floor(Date.now() / 1000);
const token = await new SignJWT({ sub: '1', username: 'admin', role: 'admin', type: 'access', iat: now, exp: now + 3600 }).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).sign(new TextEncoder().encode(JWT_SECRET));
const auth = { authorization: `Bearer ${token}` };

function request(port: number, method: string, url: string, headers: Record<string, string | number> = {}, body?: () => NodeJS.ReadableStream): Promise<{ status: number; bytes: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: url, headers, agent }, (res) => {
      let bytes = 0;
      const keep: Buffer[] = [];
      res.on('data', (c: Buffer) => {
        bytes += c.length;
        if (keep.length < 4 && bytes < 1 * MiB) keep.push(c);
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes, text: Buffer.concat(keep).toString() }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (body) body().pipe(req);
    else req.end();
  });
}

/** Requests per second and latency percentiles of GETs of `url` by CONCURRENCY clients for SECONDS. */
async function load(port: number, url: string, headers: Record<string, string>): Promise<{ rps: number; p50: number; p99: number }> {
  const lat: number[] = [];
  const end = performance.now() + SECONDS * 1000;
  const worker = async () => {
    while (performance.now() < end) {
      const t = performance.now();
      const r = await request(port, 'GET', url, headers);
      if (r.status !== 200) throw new Error(`${url}: ${r.status} ${r.text}`);
      lat.push(performance.now() - t);
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const secs = (performance.now() - t0) / 1000;
  lat.sort((a, b) => a - b);
  return { rps: lat.length / secs, p50: lat[Math.floor(lat.length * 0.5)]!, p99: lat[Math.floor(lat.length * 0.99)]! };
}

/** Streams `file` as a multipart upload (part `file`, then `path`), Content-Length known as OkHttp sends it. */
async function uploadMBps(port: number, url: string, headers: Record<string, string>, file: string, target: string): Promise<number> {
  const boundary = '----bench' + Date.now();
  const head = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${path.basename(target)}"\r\nContent-Type: application/octet-stream\r\n\r\n`);
  const tail = Buffer.from(`\r\n--${boundary}\r\nContent-Disposition: form-data; name="path"\r\n\r\n${target}\r\n--${boundary}--\r\n`);
  const size = (await fs.stat(file)).size;
  const body = () => {
    const out = new PassThrough();
    out.write(head);
    createReadStream(file, { highWaterMark: MiB }).on('end', () => out.end(tail)).pipe(out, { end: false });
    return out;
  };
  const t = performance.now();
  const r = await request(port, 'POST', url, { ...headers, 'content-type': `multipart/form-data; boundary=${boundary}`, 'content-length': head.length + size + tail.length }, body);
  if (r.status !== 200) throw new Error(`upload ${url}: ${r.status} ${r.text}`);
  return size / MiB / ((performance.now() - t) / 1000);
}

async function downloadMBps(port: number, url: string, headers: Record<string, string>): Promise<number> {
  const t = performance.now();
  const r = await request(port, 'GET', url, headers);
  if (r.status !== 200 || r.bytes !== FILE_BYTES) throw new Error(`download ${url}: ${r.status}, ${r.bytes} bytes`);
  return r.bytes / MiB / ((performance.now() - t) / 1000);
}

const best = (xs: number[]) => Math.max(...xs);

/**
 * The daemon at its default log level (one line per request, as in production), its log drained unread once it
 * listens: parsing it here would take CPU from the load generator on a small machine.
 */
async function startDaemon(dataDir: string) {
  const proc = spawn(process.execPath, [...NODE_FLAGS, CLI, 'serve'], {
    env: { PATH: process.env.PATH ?? '', BALUPI_DATA_DIR: dataDir, BALUPI_HOST: '127.0.0.1', BALUPI_PORT: '0', BALUPI_GRPC_PORT: '0', BALUPI_LOG_FORMAT: 'json', BALUPI_MDNS: 'off', BALUPI_JWT_SECRET: JWT_SECRET, BALUPI_CACHE_MAX_BYTES: '4G' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const rl = createInterface({ input: proc.stdout! });
  const http: number = await new Promise((resolve, reject) => {
    rl.on('line', (l) => {
      const j = JSON.parse(l);
      if (j.msg === 'balupi listening') resolve(j.http);
    });
    proc.once('exit', (code) => reject(new Error(`daemon exited ${code}`)));
  });
  rl.close();
  proc.stdout!.resume();
  return {
    ports: { http },
    stop: () => new Promise<void>((resolve) => (proc.once('exit', () => resolve()), proc.kill('SIGTERM'))),
  };
}

const daemon = await startDaemon(path.join(tmp, 'pi'));
let baseline: ReturnType<typeof spawn> | null = null;
try {
  const port = daemon.ports.http;
  // A folder of 100 files (uploaded through the API, as clients do) and the big file.
  for (let i = 0; i < 100; i++) {
    const f = path.join(tmp, `small-${i}.bin`);
    await fs.writeFile(f, randomBytes(1000 + i * 100));
    await uploadMBps(port, '/api/files/upload', auth, f, `Shared/bench/doc-${String(i).padStart(3, '0')}.bin`);
  }
  console.log('100 files uploaded');
  const big = path.join(tmp, 'big.bin');
  await writeRandomFile(big, FILE_BYTES);

  const listUrl = '/api/files/list?path=Shared%2Fbench';
  const listing = await request(port, 'GET', listUrl, auth);
  const jsonFile = path.join(tmp, 'listing.json');
  const full = await new Promise<string>((resolve) => http.get({ host: '127.0.0.1', port, path: listUrl, headers: auth, agent }, (res) => {
    let s = '';
    res.on('data', (c) => (s += c));
    res.on('end', () => resolve(s));
  }));
  if (listing.status !== 200 || JSON.parse(full).files.length !== 100) throw new Error(`listing: ${listing.status}`);
  await fs.writeFile(jsonFile, full);

  baseline = spawn(process.execPath, [new URL('./_files-baseline.ts', import.meta.url).pathname, jsonFile, big, JWT_SECRET], { stdio: ['ignore', 'pipe', 'inherit'] });
  const basePort: number = await new Promise((resolve, reject) => {
    createInterface({ input: baseline!.stdout! }).once('line', (l) => resolve(JSON.parse(l).port));
    baseline!.once('exit', (code) => reject(new Error(`baseline exited ${code}`)));
  });

  console.log(`list: ${SECONDS} s at ${CONCURRENCY} concurrent clients, 100-entry folder (${full.length} bytes of JSON)`);
  await load(port, listUrl, auth); // warm-up (JIT, caches)
  await load(basePort, '/list', {});
  await load(basePort, '/list-auth', auth);
  const ours = await load(port, listUrl, auth);
  const bare = await load(basePort, '/list', {});
  const bareAuth = await load(basePort, '/list-auth', auth);
  const line = (what: string, r: typeof ours) => console.log(`  ${what.padEnd(12)} ${r.rps.toFixed(0)} req/s  p50 ${r.p50.toFixed(1)} ms  p99 ${r.p99.toFixed(1)} ms`);
  line('balupi', ours);
  line('bare', bare);
  line('bare + JWT', bareAuth);
  console.log(`  ratio ${(ours.rps / bare.rps).toFixed(2)} of bare (goal >= 0.70), ${(ours.rps / bareAuth.rps).toFixed(2)} of bare + token check`);

  const up: number[] = [];
  const sink: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    up.push(await uploadMBps(port, '/api/files/upload', auth, big, `Shared/bench/big-${i}.bin`));
    sink.push(await uploadMBps(basePort, '/upload', {}, big, 'big.bin'));
  }
  console.log(`upload ${opt.mib} MiB (best of ${ROUNDS}): balupi ${best(up).toFixed(0)} MB/s, multipart sink ${best(sink).toFixed(0)} MB/s, ratio ${(best(up) / best(sink)).toFixed(2)}`);
  console.log(`  (the store chunks, hashes twice (BLAKE3 + SHA-256) and fsyncs; the second and later rounds find every chunk stored already)`);

  const down: number[] = [];
  const plain: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    down.push(await downloadMBps(port, '/api/files/download/Shared/bench/big-0.bin', auth));
    plain.push(await downloadMBps(basePort, '/file', {}));
  }
  console.log(`download ${opt.mib} MiB, cache hit (best of ${ROUNDS}): balupi ${best(down).toFixed(0)} MB/s, plain file ${best(plain).toFixed(0)} MB/s, ratio ${(best(down) / best(plain)).toFixed(2)} (goal >= 0.80)`);
  const stats = JSON.parse((await request(port, 'GET', '/api/cache/stats', auth)).text);
  console.log(`cache: hits ${stats.hits}, misses ${stats.misses}, dedup ${stats.dedup_ratio.toFixed(2)}`);
} finally {
  baseline?.kill('SIGTERM');
  await daemon.stop();
  agent.destroy();
  await fs.rm(tmp, { recursive: true, force: true });
}
