// Chunk transfer: have/want first so acknowledged chunks are never re-sent, downloads verified chunk by chunk (a
// lying peer's chunk is never stored), bytes in flight bounded by batches.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { batches, downloadInto, sendChunks, uploadMissing, type ChunkClient } from '../../src/sync/transfer.ts';
import { blake3 } from '../../store/index.ts';
import { bytesToHash } from '../../src/sync/wire.ts';
import { bytes, node } from './in-process.ts';

test('uploads send only the chunks the other side lacks; a second upload sends nothing', async () => {
  const [pi, hub] = [await node('pi'), await node('hub')];
  try {
    const data = randomBytes(400_000);
    const { file } = await pi.store.ingest('x.bin', bytes(data));
    // The hub already has a third of the chunks (as after an interrupted upload).
    const third = file.chunks.slice(0, Math.floor(file.chunks.length / 3));
    for (const c of third) await hub.store.putChunk(c.hash, await pi.store.getChunk(c.hash));
    const first = await uploadMissing(hub.client, pi.store, file.chunks);
    const distinct = new Set(file.chunks.map((c) => c.hash)).size;
    assert.equal(first.chunks, distinct - new Set(third.map((c) => c.hash)).size);
    assert.deepEqual(await uploadMissing(hub.client, pi.store, file.chunks), { chunks: 0, bytes: 0 });
    assert.equal((await hub.store.hasChunks(file.chunks.map((c) => c.hash))).length, file.chunks.length);
  } finally {
    await pi.close();
    await hub.close();
  }
});

test('downloads verify every chunk: a wrong one fails the download and is not stored, the ones before it are', async () => {
  const [pi, hub] = [await node('pi'), await node('hub')];
  try {
    const { file } = await hub.store.ingest('y.bin', bytes(randomBytes(200_000)));
    const refs = file.chunks;
    assert.ok(refs.length >= 3);
    const liar: ChunkClient = {
      ...hub.client,
      async *downloadChunks(req) {
        let i = 0;
        for await (const m of hub.client.downloadChunks(req)) {
          const data = i++ === 2 ? Buffer.from(m.data).fill(7, 0, 10) : m.data;
          yield { ...m, data } as typeof m;
        }
      },
    } as ChunkClient;
    await assert.rejects(downloadInto(liar, pi.store, refs, { batchChunks: 1 }), (err: { code?: string }) => err.code === 'data_loss');
    const have = await pi.store.hasChunks(refs.map((c) => c.hash));
    assert.deepEqual(have, refs.slice(0, 2).map((c) => c.hash), 'the two good chunks before the bad one landed, nothing else');
    const ok = await downloadInto(hub.client, pi.store, refs.slice(2));
    assert.equal(ok.chunks, refs.length - 2, 'the honest peer completes the rest');
    const wrongOrder: ChunkClient = {
      ...hub.client,
      async *downloadChunks(req) {
        const all = [];
        for await (const m of hub.client.downloadChunks(req)) all.push(m);
        yield* all.reverse();
      },
    } as ChunkClient;
    const fresh = await node('pi');
    try {
      await assert.rejects(downloadInto(wrongOrder, fresh.store, refs), /expected/);
    } finally {
      await fresh.close();
    }
  } finally {
    await pi.close();
    await hub.close();
  }
});

test('batches bound the bytes asked for per call', () => {
  const refs = Array.from({ length: 10 }, (_, i) => ({ hash: String(i).padStart(64, '0'), size: 3 }));
  assert.deepEqual(batches(refs, 7).map((b) => b.length), [2, 2, 2, 2, 2]);
  assert.deepEqual(batches([{ hash: 'a'.repeat(64), size: 100 }], 7).map((b) => b.length), [1], 'one chunk larger than the bound still goes, alone');
  assert.equal(bytesToHash(new Uint8Array(32)), '0'.repeat(64));
});

test('a sender reads ahead at most 8 MiB of chunks whose sizes it knows (always one), and 8 chunks of unknown size', async () => {
  const n = await node('pi');
  try {
    // Ten chunks of 3 MiB, put directly (the chunker's sizes do not matter here).
    const h = blake3();
    const chunks = Array.from({ length: 10 }, () => randomBytes(3 * 1024 * 1024));
    const hashes = chunks.map((c) => Buffer.from(h.hash(c)).toString('hex'));
    for (let i = 0; i < chunks.length; i++) await n.store.putChunk(hashes[i]!, chunks[i]!);
    // Count reads the sender started and has not handed out yet, through the store it reads from.
    const ahead = async (sizes?: number[]) => {
      let started = 0;
      let yielded = 0;
      let most = 0;
      const counting = new Proxy(n.store, {
        get: (t, k) => (k === 'leaseChunk' ? (hash: string) => ((most = Math.max(most, ++started - yielded)), t.leaseChunk(hash)) : Reflect.get(t, k)),
      });
      for await (const c of sendChunks(counting, hashes.map((hash, i) => ({ hash, ...(sizes ? { size: sizes[i]! } : {}) })), { lease: true })) {
        yielded += 1;
        c.release();
      }
      assert.equal(yielded, hashes.length);
      return most;
    };
    assert.equal(await ahead(chunks.map((c) => c.length)), 2, '3 MiB + 3 MiB fit in 8 MiB, a third does not');
    assert.equal(await ahead(), 8);
  } finally {
    await n.close();
  }
});
