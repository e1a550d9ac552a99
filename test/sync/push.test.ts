// Pushing from the pi (src/sync/push.ts) against a hub in this process: a push pushes the record its queue row was
// queued for, not a newer one. A newer change (a rename's deletion, say) is queued on its own and pushed by a later
// run; pushed at once, it could reach the hub before the change queued with it, the new name. New small files go
// inline (their bytes in the CommitBatch), bytes the hub already holds do not, and chunks of a path found in step with
// the hub (an acknowledgement lost with the connection) are made clean.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pushBatch, pushPath } from '../../src/sync/push.ts';
import { UploadQueue } from '../../src/sync/upload-queue.ts';
import { PathLocks } from '../../src/sync/locks.ts';
import type { SyncModel } from '../../src/sync/model.ts';
import { bytes, node, silent } from './in-process.ts';
import { toFileInfo } from '../../src/sync/wire.ts';

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

test('new small files go inline: bytes in the commit, no have/want and no upload; a copy of pushed bytes sends nothing; a lost acknowledgement is made good', async () => {
  const [pi, hub] = [await node('pi'), await node('hub')];
  try {
    const queue = await UploadQueue.open(pi.db, { minMs: 100, maxMs: 1000 });
    const m: SyncModel = { store: pi.store, state: pi.state, queue, locks: new PathLocks(), log: silent, hotThreshold: 0.5 };
    const calls = { missingChunks: 0, uploadChunks: 0 };
    const client = new Proxy(hub.client, {
      get: (t, k) => {
        if (k === 'missingChunks' || k === 'uploadChunks') calls[k] += 1;
        return (t as any)[k];
      },
    });
    const a = (await pi.store.ingest('a.txt', bytes('alpha '.repeat(500)))).file;
    const b = (await pi.store.ingest('dir/b.txt', bytes('beta'))).file;
    assert.ok((await pi.store.dirty(a.chunks.map((c) => c.hash))).every(Boolean), 'new bytes are dirty');
    const res = await pushBatch(m, client, ['a.txt', 'dir/b.txt'], undefined, undefined, { inline: true });
    assert.deepEqual([res.get('a.txt'), res.get('dir/b.txt')], ['synced', 'synced']);
    assert.deepEqual(calls, { missingChunks: 0, uploadChunks: 0 }, 'nothing but the commit went to the hub');
    for (const r of [a, b]) assert.equal((await hub.store.record(r.path))?.hash, r.hash);
    assert.equal((await hub.store.read('a.txt').then((s) => s.toArray())).map((x: Buffer) => x.toString()).join(''), 'alpha '.repeat(500));
    assert.equal(pi.store.stats().dirtyBytes, 0, 'acknowledged: clean');

    // The same bytes under a new name: the hub has them, so have/want is asked and nothing is uploaded.
    await pi.store.ingest('copy.txt', bytes('alpha '.repeat(500)));
    assert.equal((await pushBatch(m, client, ['copy.txt'], undefined, undefined, { inline: true })).get('copy.txt'), 'synced');
    assert.deepEqual(calls, { missingChunks: 1, uploadChunks: 0 });

    // The hub committed a push whose answer never arrived, and the pull then found that version: the path is in step,
    // and its chunks (still dirty) are cleaned by the next push run instead of staying dirty for ever.
    const d = (await pi.store.ingest('d.txt', bytes('delta, acknowledged but the answer was lost'))).file;
    const data = Buffer.from('delta, acknowledged but the answer was lost');
    const entry = { file: toFileInfo(d), baseVersion: 0n, data };
    const o = (await hub.client.commitBatch({ peerId: pi.state.peerId, entries: [entry] })).results[0]!.outcome;
    assert.equal(o.case, 'committed');
    await pi.state.setBase('d.txt', { version: 1, hash: d.hash, deleted: false });
    assert.ok(pi.store.stats().dirtyBytes > 0);
    assert.equal((await pushBatch(m, client, ['d.txt'], undefined, undefined, { inline: true })).get('d.txt'), 'nothing');
    assert.equal(pi.store.stats().dirtyBytes, 0);
  } finally {
    await pi.close();
    await hub.close();
  }
});

test('a conflict this pi loses under a pinned directory: the winning version is pinned and fetched, as a file the feed brings would be', async () => {
  const [pi, hub] = [await node('pi'), await node('hub')];
  try {
    const queue = await UploadQueue.open(pi.db, { minMs: 100, maxMs: 1000 });
    const m: SyncModel = { store: pi.store, state: pi.state, queue, locks: new PathLocks(), log: silent, hotThreshold: 1e9 };
    await pi.state.pinDir('', true); // `balupi pin /`
    await pi.store.ingest('doc.txt', bytes('the pi edit, older'), { mtimeMs: 1000 });
    await hub.store.ingest('doc.txt', bytes('the edit on the NAS, newer'), { mtimeMs: 9000 });
    const told: string[] = [];
    pi.state.events.on('wanted', (p: string) => told.push(p));
    assert.equal(await pushPath(m, hub.client, 'doc.txt'), 'conflict');
    // What wakes the pi's fetch loop (peer.ts): a feed page does too, but the feed may have brought this version
    // before the push was answered, and then nothing else came to wake it (bench/soak-sync.ts, seed 243).
    assert.deepEqual(told, ['doc.txt'], 'the want is told');
    const rec = (await pi.store.record('doc.txt'))!;
    assert.deepEqual([rec.state, rec.pinned], ['remote', true], 'the hub\'s version took the path here, pinned like everything under /');
    assert.deepEqual(await pi.state.wantedBytes('small'), ['doc.txt'], 'and its bytes are wanted');
  } finally {
    await pi.close();
    await hub.close();
  }
});
