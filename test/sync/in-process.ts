// A store, a LevelDB and the SyncService in this process, for tests of one module at a time (the two-process tests
// cover the daemon around them).
import fs from 'node:fs/promises';
import path from 'node:path';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { pino } from 'pino';
import { ClassicLevel } from 'classic-level';
import { createClient, createRouterTransport, type Client } from '@connectrpc/connect';
import { openStore, type Store } from '../../store/index.ts';
import { SyncService } from '../../src/gen/balupi/sync/v1/sync_pb.js';
import { syncService } from '../../src/sync/service.ts';
import { SyncState } from '../../src/sync/state.ts';
import { peerAuthInterceptor } from '../../src/rpc/peer-auth.ts';
import { tempDir } from './peers.ts';

export const SMALL_CHUNKS = { minSize: 4096, avgSize: 16384, maxSize: 65536 };
export const silent = pino({ level: 'silent' });

export interface Node {
  dir: string;
  store: Store;
  db: ClassicLevel<string, string>;
  state: SyncState;
  client: Client<typeof SyncService>;
  close(): Promise<void>;
}

/** `root`: a hub whose store keeps the bytes of that folder's files there (created if missing), as the daemon's does. */
export async function node(role: 'pi' | 'hub' = 'hub', opts: { root?: string } = {}): Promise<Node> {
  const dir = await tempDir('balupi-node-');
  const store = await openStore({ dir: path.join(dir.path, 'store'), chunkParams: SMALL_CHUNKS, ...(opts.root ? { backingDir: opts.root } : {}) });
  const db = new ClassicLevel<string, string>(path.join(dir.path, 'db'), { valueEncoding: 'utf8' });
  await db.open();
  const state = await SyncState.open(db);
  const transport = createRouterTransport(({ service }) => service(SyncService, syncService({ store, state, role, log: silent })), {
    router: { interceptors: [peerAuthInterceptor('s')] },
  });
  const client = createClient(SyncService, transport);
  const authed = new Proxy(client, {
    get: (t, k) =>
      typeof (t as any)[k] !== 'function'
        ? (t as any)[k]
        : (req: unknown, opts: { headers?: Record<string, string> } = {}) => (t as any)[k](req, { ...opts, headers: { authorization: 'Bearer s', ...opts.headers } }),
  }) as Client<typeof SyncService>;
  return {
    dir: dir.path,
    store,
    db,
    state,
    client: authed,
    async close() {
      await store.close();
      await db.close();
      await dir.remove();
    },
  };
}

export const bytes = (s: string | Buffer): AsyncIterable<Uint8Array> => Readable.from([Buffer.from(s)]);

/** Runs `fn` while `hash`'s chunk file in `n`'s store has rotted (right size, one byte flipped), then restores it. */
export async function withRottedChunk(n: Node, hash: string, fn: () => Promise<void>): Promise<void> {
  const file = path.join(n.dir, 'store', 'chunks', hash.slice(0, 2), hash);
  const original = await fs.readFile(file);
  try {
    const rotted = Buffer.from(original);
    rotted[10] = rotted[10]! ^ 0xff;
    await fs.writeFile(file, rotted);
    await fn();
  } finally {
    await fs.writeFile(file, original);
  }
}

/**
 * Plain HTTP/2 servers on loopback for the chunk fast-path tests: listen() returns a base URL; close() ends the
 * sessions clients keep open (idle connections last a minute) and closes the servers.
 */
export function h2Servers(): { listen(handler: (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void): Promise<string>; close(): Promise<void> } {
  const servers: http2.Http2Server[] = [];
  const sessions = new Set<http2.ServerHttp2Session>();
  return {
    async listen(handler) {
      const s = http2.createServer(handler);
      s.on('session', (session) => sessions.add(session));
      servers.push(s);
      await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
      return `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
    },
    async close() {
      for (const s of sessions) s.destroy();
      for (const s of servers) await new Promise((r) => s.close(r));
    },
  };
}
