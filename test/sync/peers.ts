// Two real `balupi serve` processes on loopback, a hub with a root folder and a pi pointed at it, plus what the tests
// need to look at them from outside: the pi's local API on its unix socket (the same routes the CLI uses), the hub's
// root folder, and a deadline-bounded poll for conditions that another process makes true.

import http from 'node:http';
import fs from 'node:fs/promises';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { Readable } from 'node:stream';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { CLI, startDaemonProcess, tempDir, type DaemonProcess } from '../helpers/daemon-process.ts';
import { VERSIONS_DIR } from '../../src/sync/versions.ts';
export { writeRandomFile } from '../helpers/random-file.ts';

export const SECRET = 'pairing-secret-for-tests';

export const FAST = {
  BALUPI_PEER_SECRET: SECRET,
  BALUPI_HUB_WATCH_DEBOUNCE_MS: '50',
  BALUPI_SYNC_RETRY_MIN_S: '0.2',
  BALUPI_SYNC_RETRY_MAX_S: '1',
};

/** `grpcPort`: restart a hub on the port its pi knows (default: any free port). */
export async function startHub(opts: { root: string; dataDir?: string; env?: Record<string, string>; grpcPort?: number }): Promise<DaemonProcess> {
  const port: Record<string, string> = opts.grpcPort ? { BALUPI_GRPC_PORT: String(opts.grpcPort) } : {};
  const d = await startDaemonProcess({ env: { ...FAST, ...port, ...opts.env }, args: ['--role', 'hub', '--root', opts.root], ...(opts.dataDir ? { dataDir: opts.dataDir } : {}) });
  await d.waitForLog((l) => l.msg === 'hub root scanned');
  return d;
}

export async function startPi(opts: { hubGrpcPort: number; dataDir?: string; env?: Record<string, string>; waitConnected?: boolean }): Promise<DaemonProcess> {
  const d = await startDaemonProcess({
    env: { ...FAST, BALUPI_HUB_URL: `http://127.0.0.1:${opts.hubGrpcPort}`, ...opts.env },
    args: ['--role', 'pi'],
    ...(opts.dataDir ? { dataDir: opts.dataDir } : {}),
  });
  if (opts.waitConnected !== false) await d.waitForLog((l) => l.msg === 'sync caught up with the hub');
  return d;
}

/** A request to a daemon's local API (unix socket); JSON in, JSON or bytes out. */
export function local(dataDir: string, method: string, url: string, body?: Buffer): Promise<{ status: number; body: Buffer; json: () => any }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { socketPath: path.join(dataDir, 'balupi.sock'), method, path: url, headers: body ? { 'content-type': 'application/octet-stream' } : {} },
      async (res) => {
        const parts: Buffer[] = [];
        for await (const p of res) parts.push(p as Buffer);
        const buf = Buffer.concat(parts);
        resolve({ status: res.statusCode ?? 0, body: buf, json: () => JSON.parse(buf.toString('utf8')) });
      },
    );
    req.on('error', reject);
    if (body) Readable.from([body]).pipe(req);
    else req.end();
  });
}

export async function piIngest(dataDir: string, name: string, data: Buffer, mtimeMs?: number): Promise<any> {
  const q = new URLSearchParams({ name, ...(mtimeMs !== undefined ? { mtimeMs: String(mtimeMs) } : {}) });
  const r = await local(dataDir, 'POST', `/local/store/ingest?${q}`, data);
  if (r.status !== 200) throw new Error(`ingest ${name}: ${r.status} ${r.body}`);
  return r.json();
}

/** Ingests a file on the pi, streamed from disk (for files too large to hold in the test's memory). */
export function piIngestFile(dataDir: string, name: string, file: string): Promise<any> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { socketPath: path.join(dataDir, 'balupi.sock'), method: 'POST', path: `/local/store/ingest?${new URLSearchParams({ name })}`, headers: { 'content-type': 'application/octet-stream' } },
      async (res) => {
        const parts: Buffer[] = [];
        for await (const p of res) parts.push(p as Buffer);
        const text = Buffer.concat(parts).toString('utf8');
        if (res.statusCode !== 200) reject(new Error(`ingest ${name}: ${res.statusCode} ${text}`));
        else resolve(JSON.parse(text));
      },
    );
    req.on('error', reject);
    createReadStream(file, { highWaterMark: 1024 * 1024 }).pipe(req);
  });
}

export async function fileSha(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const p of createReadStream(file, { highWaterMark: 1024 * 1024 })) h.update(p as Buffer);
  return h.digest('hex');
}

export async function piStat(dataDir: string, name: string): Promise<any | null> {
  const r = await local(dataDir, 'GET', `/local/store/stat?${new URLSearchParams({ name })}`);
  return r.status === 200 ? r.json() : null;
}

/** A file's bytes as the daemon's store reads them (its error body if it cannot). */
export async function piCat(dataDir: string, name: string): Promise<Buffer> {
  return (await local(dataDir, 'GET', `/local/store/cat?${new URLSearchParams({ name })}`)).body;
}

/** The bytes a pi logged as fetched for pinned or hot files, in all. */
export function fetchedBytes(pi: DaemonProcess): number {
  return pi.logs.filter((l) => l.msg === 'sync fetched pinned/hot files').reduce((n, l) => n + (l.bytes as number), 0);
}

export async function piFiles(dataDir: string, dir = ''): Promise<string[]> {
  const r = await local(dataDir, 'GET', `/local/store/ls?${new URLSearchParams({ dir })}`);
  if (r.status !== 200) return [];
  const out: string[] = [];
  for (const e of r.json().entries) {
    if (e.type === 'file') out.push(e.path);
    else out.push(...(await piFiles(dataDir, e.path)));
  }
  return out.sort();
}

export async function piStatus(dataDir: string): Promise<any> {
  return (await local(dataDir, 'GET', '/local/sync/status')).json();
}

/** The files of a hub's root folder, as root-relative paths; not the versions it keeps of replaced files (versions.ts). */
export async function hubFiles(root: string, dir = root): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fs.readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const abs = path.join(dir, e.name);
    if (dir === root && e.name === VERSIONS_DIR) continue;
    if (e.isDirectory()) out.push(...(await hubFiles(root, abs)));
    else out.push(path.relative(root, abs));
  }
  return out.sort();
}

export const blake = async (data: Buffer): Promise<string> => {
  const { blake3 } = await import('../../store/index.ts');
  return blake3('auto').hash(data).toString('hex');
};

export const sha = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

/** Polls `cond` until it returns a truthy value (another process is doing the work); fails after `timeoutMs`. */
export async function waitFor<T>(what: string, cond: () => Promise<T | undefined | null | false>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await cond();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Runs the real CLI against a data directory. */
export function cli(dataDir: string, args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH ?? '', BALUPI_DATA_DIR: dataDir, ...FAST, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

export { tempDir };
export type { DaemonProcess };
