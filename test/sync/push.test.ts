// Pushing from the pi (src/sync/push.ts) against a hub in this process: a push pushes the record its queue row was
// queued for, not a newer one. A newer change (a rename's deletion, say) is queued on its own and pushed by a later
// run; pushed at once, it could reach the hub before the change queued with it, the new name.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pushBatch, pushPath } from '../../src/sync/push.ts';
import { UploadQueue } from '../../src/sync/upload-queue.ts';
import { PathLocks } from '../../src/sync/locks.ts';
import type { SyncModel } from '../../src/sync/model.ts';
import { bytes, node, silent } from './in-process.ts';

test('a push leaves alone a path whose record moved on since its queue row was queued, and pushes the newer record when asked for that one', async () => {
  const [pi, hub] = [await node('pi'), await node('hub')];
  try {
    const queue = await UploadQueue.open(pi.db, { minMs: 100, maxMs: 1000 });
    const m: SyncModel = { store: pi.store, state: pi.state, queue, locks: new PathLocks(), log: silent, hotThreshold: 0.5 };
    const v1 = (await pi.store.ingest('a.txt', bytes('first'))).file;
    assert.equal((await pushBatch(m, hub.client, ['a.txt'], undefined, new Map([['a.txt', v1.seq]]))).get('a.txt'), 'synced');
    assert.equal((await hub.store.record('a.txt'))?.deleted, false);

    await pi.store.delete('a.txt', { baseVersion: v1.version });
    const gone = await pi.store.record('a.txt');
    assert.ok(gone?.deleted && gone.seq !== v1.seq);
    // Queued for v1, which is no longer the record: nothing is pushed, the hub keeps the file.
    assert.equal((await pushBatch(m, hub.client, ['a.txt'], undefined, new Map([['a.txt', v1.seq]]))).get('a.txt'), 'nothing');
    assert.equal(await pushPath(m, hub.client, 'a.txt', undefined, v1.seq), 'nothing');
    assert.equal((await hub.store.record('a.txt'))?.deleted, false, 'the deletion did not reach the hub');
    // Queued for the deletion itself: pushed.
    assert.equal(await pushPath(m, hub.client, 'a.txt', undefined, gone.seq), 'synced');
    assert.equal((await hub.store.record('a.txt'))?.deleted, true);
  } finally {
    await pi.close();
    await hub.close();
  }
});
