// The hub's own gRPC CommitBatch handler (commit-batch-call.ts) over real HTTP/2 on loopback, with a real service and
// store in this process: a request's buffer is taken again for a later request only once its commit has answered. One
// call is held inside the service (a gate in front of the real commitBatch, which it then calls unchanged) while a
// second request of the same size arrives, is framed and committed; the held one then commits its own bytes, checked
// against their hashes and read back from the store. A buffer handed on too early shows as DATA_LOSS or wrong bytes.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { ServiceImpl } from '@connectrpc/connect';
import { SyncService } from '../../src/gen/balupi/sync/v1/sync_pb.js';
import { syncService } from '../../src/sync/service.ts';
import { createSyncClient } from '../../src/sync/client.ts';
import { commitBatchHandler } from '../../src/sync/commit-batch-call.ts';
import { hashToBytes } from '../../src/sync/wire.ts';
import { readAll } from '../store/temp-store.ts';
import { h2Servers, node, silent, type Node } from './in-process.ts';
import { blake } from './peers.ts';

const SECRET = 's';
let hub: Node;
const servers = h2Servers();
let url: string;
let held: { reached: () => void; open: Promise<void> } | undefined;

before(async () => {
  hub = await node('hub');
  const service = syncService({ store: hub.store, state: hub.state, role: 'hub', log: silent });
  const gated: ServiceImpl<typeof SyncService> = {
    ...service,
    async commitBatch(req, ctx) {
      const h = held;
      held = undefined;
      if (h) {
        h.reached();
        await h.open;
      }
      return service.commitBatch!(req, ctx);
    },
  };
  const handler = commitBatchHandler({ service: gated, peerSecret: SECRET, maxMessageBytes: 16 * 1024 * 1024 });
  url = await servers.listen((req, res) => void handler(req, res));
});
after(async () => {
  await servers.close();
  await hub?.close();
});

async function entriesOf(dir: string) {
  return Promise.all(
    Array.from({ length: 6 }, async (_, i) => {
      const data = randomBytes(40_000 + 1000 * i);
      const h = hashToBytes(await blake(data));
      const file = { path: `${dir}/f${i}.bin`, size: BigInt(data.length), mtimeMs: 1_700_000_000_000n, mode: 0o644, hash: h, chunks: [{ hash: h, size: data.length }], version: 0n, sequence: 0n, deleted: false };
      return { file, baseVersion: 0n, data };
    }),
  );
}

test('a request held in the service keeps its buffer while a later request of the same size is framed and committed', async () => {
  const client = createSyncClient({ baseUrl: url, peerSecret: SECRET });
  const a = await entriesOf('held');
  const b = await entriesOf('later');
  let open!: () => void;
  const reached = new Promise<void>((resolve) => (held = { reached: resolve, open: new Promise<void>((r) => (open = r)) }));
  const first = client.commitBatch({ peerId: 'TESTPER', entries: a });
  await reached;
  const second = await client.commitBatch({ peerId: 'TESTPER', entries: b });
  assert.deepEqual(second.results.map((r) => r.outcome.case), b.map(() => 'committed'));
  open();
  const res = await first;
  assert.deepEqual(
    res.results.map((r) => (r.outcome.case === 'error' ? `error ${r.outcome.value.code}: ${r.outcome.value.message}` : r.outcome.case)),
    a.map(() => 'committed'),
  );
  for (const e of [...a, ...b]) assert.ok((await readAll(await hub.store.read(e.file.path))).equals(e.data), `${e.file.path} byte for byte`);
});
