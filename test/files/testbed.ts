// The file facade on a real store and a real LevelDB in a temp directory, served by the real Fastify app (inject()),
// with BaluHost-style tokens for an admin and two ordinary users.

import { SignJWT } from 'jose';
import { ClassicLevel } from 'classic-level';
import path from 'node:path';
import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/http/app.ts';
import { TokenVerifier } from '../../src/auth/tokens.ts';
import { createLogger } from '../../src/log.ts';
import { openStore, type Store } from '../../store/index.ts';
import { openFileServices, type FileServices } from '../../src/files/services.ts';
import { filesRoutes } from '../../src/routes/files.ts';
import { filesWriteRoutes } from '../../src/routes/files-write.ts';
import { filesUploadRoutes } from '../../src/routes/files-upload.ts';
import { cacheRoutes } from '../../src/routes/cache.ts';
import { tempDir } from '../helpers/daemon-process.ts';
import type { NasWaker, RemoteSource } from '../../src/files/cache-miss.ts';

export const SECRET = 'a-baluhost-secret-key-of-32-chars!!';
const key = new TextEncoder().encode(SECRET);

export async function token(claims: Record<string, unknown> = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ sub: '1', username: 'admin', role: 'admin', type: 'access', iat: now, exp: now + 900, ...claims })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .sign(key);
}

export interface Testbed {
  app: FastifyInstance;
  store: Store;
  files: FileServices;
  dataDir: string;
  /** Authorization headers. */
  admin: Record<string, string>;
  alice: Record<string, string>;
  bob: Record<string, string>;
  /** Resolves with the first JSON log line matching `pred` (needs `logLines: true`). */
  waitForLog(pred: (line: Record<string, any>) => boolean): Promise<Record<string, any>>;
  /** Ingests bytes directly into the store (as a sync from the hub would leave them). */
  put(name: string, data: string | Buffer): Promise<void>;
  close(): Promise<void>;
}

export async function testbed(opts: { cacheMaxBytes?: number; remote?: RemoteSource | null; nas?: NasWaker | null; wakeWaitS?: number; logLines?: boolean; workers?: number } = {}): Promise<Testbed> {
  const dir = await tempDir('balupi-files-');
  const db = new ClassicLevel<string, string>(path.join(dir.path, 'db'), { valueEncoding: 'utf8' });
  await db.open();
  const store = await openStore({
    dir: path.join(dir.path, 'store'),
    cacheMaxBytes: opts.cacheMaxBytes ?? 1024 ** 3,
    ...(opts.workers !== undefined ? { workers: opts.workers } : {}),
    chunkParams: { minSize: 4096, avgSize: 16384, maxSize: 65536 },
  });
  // Log lines are how a test learns that a request ended (a client that vanished gets no answer to wait for).
  const lines: Record<string, any>[] = [];
  const waiters: { pred: (l: Record<string, any>) => boolean; resolve: (l: Record<string, any>) => void }[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      for (const text of String(chunk).split('\n').filter(Boolean)) {
        const line = JSON.parse(text);
        lines.push(line);
        for (const w of [...waiters]) if (w.pred(line)) (waiters.splice(waiters.indexOf(w), 1), w.resolve(line));
      }
      cb();
    },
  });
  const log = createLogger({ logLevel: opts.logLines ? 'info' : 'silent', logFormat: 'json' }, sink);
  const files = await openFileServices({ db, store, dataDir: dir.path, log, sync: (opts.remote ?? null) as never, nas: opts.nas ?? null, wakeWaitS: opts.wakeWaitS ?? 2 });
  const app = await buildApp({
    logger: log,
    verifier: new TokenVerifier(SECRET),
    plugins: [
      (a) => a.register(filesRoutes, { files }),
      (a) => a.register(filesWriteRoutes, { files }),
      (a) => a.register(filesUploadRoutes, { files }),
      (a) => a.register(cacheRoutes, { files }),
    ],
  });
  const bearer = async (claims: Record<string, unknown>) => ({ authorization: `Bearer ${await token(claims)}` });
  return {
    app,
    store,
    files,
    dataDir: dir.path,
    admin: await bearer({}),
    alice: await bearer({ sub: '5', username: 'alice', role: 'user' }),
    bob: await bearer({ sub: '6', username: 'bob', role: 'user' }),
    waitForLog(pred) {
      const seen = lines.find(pred);
      return seen ? Promise.resolve(seen) : new Promise((resolve) => waiters.push({ pred, resolve }));
    },
    async put(name, data) {
      await store.ingest(name, (async function* () {
        yield Buffer.from(data);
      })());
    },
    async close() {
      await app.close();
      await files.close();
      await store.close();
      await db.close();
      await dir.remove();
    },
  };
}

export type Part = { name: string; value: string } | { name: string; filename: string; data: Buffer | string; type?: string };

/** A multipart/form-data body with the parts in exactly this order (the clients differ in the order). */
export function multipart(parts: Part[]): { payload: Buffer; headers: Record<string, string> } {
  const boundary = '----balupi' + Math.random().toString(16).slice(2);
  const chunks: Buffer[] = [];
  for (const p of parts) {
    chunks.push(Buffer.from(`--${boundary}\r\n`));
    if ('filename' in p) {
      chunks.push(Buffer.from(`Content-Disposition: form-data; name="${p.name}"; filename="${p.filename}"\r\nContent-Type: ${p.type ?? 'application/octet-stream'}\r\n\r\n`));
      chunks.push(Buffer.from(p.data));
    } else {
      chunks.push(Buffer.from(`Content-Disposition: form-data; name="${p.name}"\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n${p.value}`));
    }
    chunks.push(Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { payload: Buffer.concat(chunks), headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } };
}
