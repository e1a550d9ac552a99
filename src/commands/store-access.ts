// How the store commands reach the store: directly (open <dataDir>/store) or, when a running daemon holds its LevelDB
// lock, through the daemon's local API on <dataDir>/balupi.sock (src/routes/local-store.ts). Both sides offer the
// same operations, so the commands do not care which one they got.

import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { Readable } from 'node:stream';
import { fileSource, openStore, StoreError, isStoreError } from '../../store/index.ts';
import type { DirEntry, FileRecord, FsckReport, GcReport, IngestResult, Store, StoreErrorCode, StoreStats } from '../../store/index.ts';

export interface StoreAccess {
  readonly via: 'direct' | 'daemon';
  /** Ingests the local file `file` as `name`. */
  ingest(name: string, file: string, meta: { mtimeMs: number; mode: number }): Promise<IngestResult>;
  /** The file's bytes; the stream errors if the transfer fails part-way (e.g. a chunk failed verification). */
  cat(name: string): Promise<Readable>;
  list(dir?: string): Promise<DirEntry[]>;
  remove(name: string): Promise<FileRecord>;
  fsck(): Promise<FsckReport>;
  gc(): Promise<GcReport>;
  stats(): Promise<StoreStats>;
  close(): Promise<void>;
}

/** Neither the store nor a daemon could be reached; the message says why and what to do. */
export class StoreUnavailable extends Error {
  override name = 'StoreUnavailable';
}

export function socketPath(dataDir: string): string {
  return path.join(dataDir, 'balupi.sock');
}

export async function openStoreAccess(dataDir: string, cacheMaxBytes: number | null): Promise<StoreAccess> {
  try {
    return directAccess(await openStore({ dir: path.join(dataDir, 'store'), cacheMaxBytes }));
  } catch (err) {
    if (!isStoreError(err, 'locked')) throw err;
  }
  const sock = socketPath(dataDir);
  const daemon = daemonAccess(sock);
  try {
    await daemon.stats();
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new StoreUnavailable(
      `the store in ${dataDir} is locked by another process, and no balupi daemon answers on ${sock} (${why}). ` +
        'Stop the other process, or start the daemon (balupi serve) and retry.',
    );
  }
  return daemon;
}

function directAccess(store: Store): StoreAccess {
  return {
    via: 'direct',
    ingest: (name, file, meta) => store.ingest(name, fileSource(file), meta),
    cat: (name) => store.read(name),
    list: (dir) => store.list(dir),
    remove: (name) => store.delete(name),
    fsck: () => store.fsck(),
    gc: () => store.gc(),
    stats: async () => store.stats(),
    close: () => store.close(),
  };
}

const STORE_CODES = new Set<string>([
  'invalid_name', 'not_found', 'not_local', 'hash_mismatch', 'corrupt_chunk', 'missing_chunks', 'conflict', 'path_conflict',
  'cache_full', 'no_space', 'invalid_argument', 'locked', 'closed',
]);

function query(params: Record<string, string | number | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined) q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}

function request(sock: string, method: string, url: string, body?: Readable): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = body ? { 'content-type': 'application/octet-stream', 'transfer-encoding': 'chunked' } : {};
    const req = http.request({ socketPath: sock, method, path: url, headers }, resolve);
    req.on('error', reject);
    if (body) {
      body.on('error', (err) => req.destroy(err));
      body.pipe(req);
    } else {
      req.end();
    }
  });
}

async function readJson<T>(res: http.IncomingMessage): Promise<T> {
  const parts: Buffer[] = [];
  for await (const p of res) parts.push(p as Buffer);
  const text = Buffer.concat(parts).toString('utf8');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new Error(`daemon answered ${res.statusCode} with a non-JSON body: ${text.slice(0, 200)}`);
  }
  if ((res.statusCode ?? 500) >= 400) throw errorFrom(res.statusCode ?? 500, parsed);
  return parsed as T;
}

function errorFrom(status: number, body: unknown): Error {
  const e = (body as { error?: { code?: string; message?: string; details?: Record<string, unknown> } } | null)?.error;
  const message = e?.message ?? `daemon answered HTTP ${status}`;
  if (e?.code && STORE_CODES.has(e.code)) return new StoreError(e.code as StoreErrorCode, message, e.details ? { details: e.details } : undefined);
  return new Error(message);
}

function daemonAccess(sock: string): StoreAccess {
  const call = async <T>(method: string, url: string, body?: Readable): Promise<T> => readJson<T>(await request(sock, method, url, body));
  return {
    via: 'daemon',
    ingest: (name, file, meta) =>
      call('POST', `/local/store/ingest${query({ name, mtimeMs: meta.mtimeMs, mode: meta.mode })}`, fs.createReadStream(file, { highWaterMark: 1024 * 1024 })),
    async cat(name) {
      const res = await request(sock, 'GET', `/local/store/cat${query({ name })}`);
      if ((res.statusCode ?? 500) >= 400) return readJson<never>(res);
      return Readable.from(relay(res, Number(res.headers['content-length'])), { objectMode: false });
    },
    list: async (dir) => (await call<{ entries: DirEntry[] }>('GET', `/local/store/ls${query({ dir })}`)).entries,
    remove: (name) => call('POST', `/local/store/rm${query({ name })}`),
    fsck: () => call('POST', '/local/store/fsck'),
    gc: () => call('POST', '/local/store/gc'),
    stats: () => call('GET', '/local/store/stats'),
    close: async () => {},
  };
}

/**
 * If a chunk fails verification mid-stream the daemon cuts the connection short of Content-Length: the bytes passed
 * on so far are correct, and the failure becomes an error that says what happened.
 */
async function* relay(res: http.IncomingMessage, expected: number): AsyncGenerator<Buffer> {
  let got = 0;
  const stopped = (why: string): Error =>
    new Error(`the daemon stopped the transfer after ${got} of ${expected} bytes (${why}); a chunk may have failed verification: see the daemon log or run balupi fsck`);
  try {
    for await (const d of res) {
      got += (d as Buffer).length;
      yield d as Buffer;
    }
  } catch (err) {
    throw stopped((err as Error).message);
  }
  if (Number.isFinite(expected) && got !== expected) throw stopped('connection closed early');
}
