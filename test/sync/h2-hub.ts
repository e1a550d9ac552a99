// A hub for tests that need a real pi process against hub code they can step: this project's store, HubRoot, peer
// acknowledgements and SyncService, wired as the daemon wires them (runtime.ts), run in the test's process and served
// over HTTP/2 on loopback. The test decides when the root writer runs (followStore), which in the daemon follows
// every commit within milliseconds.
import fs from 'node:fs/promises';
import path from 'node:path';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { ClassicLevel } from 'classic-level';
import { connectNodeAdapter } from '@connectrpc/connect-node';
import type { ServiceImpl } from '@connectrpc/connect';
import { openStore, type Store } from '../../store/index.ts';
import { SyncService } from '../../src/gen/balupi/sync/v1/sync_pb.js';
import { syncService } from '../../src/sync/service.ts';
import { SyncState } from '../../src/sync/state.ts';
import { HubRoot } from '../../src/sync/hub-root.ts';
import { DiskIndex } from '../../src/sync/disk-index.ts';
import { PathLocks } from '../../src/sync/locks.ts';
import { PeerAcks } from '../../src/sync/peer-acks.ts';
import { peerAuthInterceptor } from '../../src/rpc/peer-auth.ts';
import { silent } from './in-process.ts';
import { SECRET, tempDir } from './peers.ts';

export interface H2Hub {
  root: string;
  store: Store;
  state: SyncState;
  hub: HubRoot;
  acks: PeerAcks;
  /** The gRPC port on 127.0.0.1 (for startPi). */
  port: number;
  /** Runs the root writer until close(). */
  followStore(): void;
}

/** `override`: methods of the service to serve instead (e.g. an upload refused as by a full disk), given the real one. */
export async function withH2Hub(prefix: string, fn: (h: H2Hub) => Promise<void>, opts: { override?: (real: ServiceImpl<typeof SyncService>) => Partial<ServiceImpl<typeof SyncService>> } = {}): Promise<void> {
  const dir = await tempDir(prefix);
  const root = path.join(dir.path, 'root');
  await fs.mkdir(root);
  // The daemon's chunking (no chunk parameters), so that a pi's chunks and the hub's are the same.
  const store = await openStore({ dir: path.join(dir.path, 'hub-store'), backingDir: root });
  const db = new ClassicLevel<string, string>(path.join(dir.path, 'hub-db'), { valueEncoding: 'utf8' });
  await db.open();
  const state = await SyncState.open(db);
  const acks = await PeerAcks.open(db);
  const hub = new HubRoot({ store, state, disk: new DiskIndex(db), locks: new PathLocks(), root, log: silent });
  await hub.lost.start();
  const real = syncService({
    store,
    state,
    role: 'hub',
    log: silent,
    beforeCommit: (p) => hub.refresh(p),
    commitNew: (items) => hub.commitNew(items),
    ...(hub.staging ? { staging: hub.staging } : {}),
    chunksStored: () => hub.lost.complete(),
    acks,
    acknowledged: () => hub.lost.dropUnreachable(acks.floor(store.indexId)).then(() => {}),
  });
  const service = { ...real, ...opts.override?.(real) };
  const h2 = http2.createServer(connectNodeAdapter({ routes: (r) => r.service(SyncService, service), interceptors: [peerAuthInterceptor(SECRET)], acceptCompression: [] }));
  const sessions = new Set<http2.ServerHttp2Session>();
  h2.on('session', (s) => sessions.add(s));
  await new Promise<void>((r) => h2.listen(0, '127.0.0.1', () => r()));
  const writer = new AbortController();
  let writing: Promise<void> | undefined;
  try {
    await fn({ root, store, state, hub, acks, port: (h2.address() as AddressInfo).port, followStore: () => void (writing ??= hub.followStore(writer.signal)) });
  } finally {
    writer.abort();
    await writing?.catch(() => {});
    for (const s of sessions) s.destroy();
    await new Promise((r) => h2.close(r));
    hub.lost.stop();
    await hub.strays.stop();
    await store.close();
    await db.close();
    await dir.remove();
  }
}
