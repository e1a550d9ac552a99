// A full disk while chunks stream in, on either side: the hub storing an upload (receiveChunks) and the Pi storing a
// download (downloadInto). Both store in batches while the next messages arrive, so a batch fails while nobody is
// waiting for it. That failure must become the call's clear `no_space` error, never an unhandled rejection: that is
// what ended a hub process whose disk filled up during a push. A real ENOSPC without root: the injected temp-file
// opener hands the chunk writer /dev/full, whose write(2) fails with ENOSPC from the kernel.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import fsSync from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { create } from '@bufbuild/protobuf';
import { blake3, isStoreError, openStore, type Store } from '../../store/index.ts';
import { openFd } from '../../store/fd-calls.ts';
import { downloadInto, receiveChunks, type ChunkClient } from '../../src/sync/transfer.ts';
import { hashToBytes } from '../../src/sync/wire.ts';
import { UploadChunksRequestSchema } from '../../src/gen/balupi/sync/v1/sync_pb.js';
import { tempDir } from '../helpers/daemon-process.ts';
import { node, SMALL_CHUNKS } from './in-process.ts';

const { O_WRONLY, O_CREAT, O_EXCL } = fsSync.constants;

/** A store whose disk can be made "full"; `hitFull` resolves when a chunk write first met the full disk. */
async function fullableStore(dir: string) {
  let full = false;
  let hit!: () => void;
  const hitFull = new Promise<void>((resolve) => (hit = resolve));
  const openTemp = (p: string) => {
    if (!full) return openFd(p, O_WRONLY | O_CREAT | O_EXCL);
    hit();
    return openFd('/dev/full', O_WRONLY);
  };
  const store = await openStore({ dir: path.join(dir, 'store'), chunkParams: SMALL_CHUNKS, chunkIo: { openTemp } });
  return { store, hitFull, setFull: (v: boolean) => void (full = v) };
}

/**
 * Waits until the batch that met the full disk has failed completely (putChunks released its chunk holds, and the
 * rejection has run through its promise chain in the same turn), then one more turn, in which Node reports unhandled
 * rejections.
 */
async function afterFailedBatch(store: Store, hitFull: Promise<void>): Promise<void> {
  await hitFull;
  while (store.stats().heldChunks > 0) await new Promise((r) => setImmediate(r));
  await new Promise((r) => setImmediate(r));
}

async function consistent(store: Store, dir: string): Promise<void> {
  assert.deepEqual((await store.fsck()).problems, []);
  assert.deepEqual(await fs.readdir(path.join(dir, 'store', 'tmp')), [], 'no temp files left behind');
}

function watchUnhandled(): { reasons: unknown[]; stop: () => void } {
  const reasons: unknown[] = [];
  const on = (r: unknown) => reasons.push(r);
  process.on('unhandledRejection', on);
  return { reasons, stop: () => process.off('unhandledRejection', on) };
}

test('hub side: an upload meets a full disk after its first batch; no_space for the call, no unhandled rejection, and the same upload succeeds once there is room', async () => {
  const dir = await tempDir('balupi-disk-full-');
  const { store, hitFull, setFull } = await fullableStore(dir.path);
  const unhandled = watchUnhandled();
  try {
    const hasher = blake3('auto');
    // 600 chunks: the receiver stores its first batch after 512 (STORE_BATCH_CHUNKS), while the peer is still sending.
    const chunks = Array.from({ length: 600 }, () => randomBytes(200)).map((data) =>
      create(UploadChunksRequestSchema, { hash: hashToBytes(Buffer.from(hasher.hash(data)).toString('hex')), data }),
    );
    async function* slowPeer() {
      for (let i = 0; i < chunks.length; i++) {
        if (i === 513) await afterFailedBatch(store, hitFull); // the peer's next message comes after the failure
        yield chunks[i]!;
      }
    }
    setFull(true);
    await assert.rejects(receiveChunks(store, slowPeer()), (err: unknown) => {
      assert.ok(isStoreError(err, 'no_space'), String(err));
      return true;
    });
    assert.deepEqual(unhandled.reasons, [], 'the failed batch was not an unhandled rejection');
    assert.equal(store.stats().chunks, 0, 'nothing of the failed batch is in the index');
    await consistent(store, dir.path);

    setFull(false);
    const again = await receiveChunks(store, (async function* () { yield* chunks; })());
    assert.equal(again.stored, 600);
    assert.equal(store.stats().chunks, 600);
    await consistent(store, dir.path);
  } finally {
    unhandled.stop();
    await store.close();
    await dir.remove();
  }
});

test('pi side: a fetch meets a full disk; no_space for the download, no unhandled rejection, and the fetch completes once there is room', async () => {
  const hub = await node('hub');
  const dir = await tempDir('balupi-disk-full-');
  const { store, hitFull, setFull } = await fullableStore(dir.path);
  const unhandled = watchUnhandled();
  try {
    const { file } = await hub.store.ingest('v.bin', (async function* () { yield randomBytes(400_000); })());
    assert.ok(file.chunks.length >= 6);
    const slowHub: ChunkClient = {
      ...hub.client,
      async *downloadChunks(req) {
        let i = 0;
        for await (const m of hub.client.downloadChunks(req)) {
          if (i++ === 3) await afterFailedBatch(store, hitFull); // batches of 2: the first one failed meanwhile
          yield m;
        }
      },
    } as ChunkClient;
    setFull(true);
    await assert.rejects(downloadInto(slowHub, store, file.chunks, { batchChunks: 2 }), (err: unknown) => {
      assert.ok(isStoreError(err, 'no_space'), String(err));
      return true;
    });
    assert.deepEqual(unhandled.reasons, [], 'the failed batch was not an unhandled rejection');
    assert.equal(store.stats().chunks, 0);
    await consistent(store, dir.path);

    setFull(false);
    const ok = await downloadInto(hub.client, store, file.chunks, { batchChunks: 2 });
    assert.equal(ok.chunks, new Set(file.chunks.map((c) => c.hash)).size);
    await consistent(store, dir.path);
  } finally {
    unhandled.stop();
    await store.close();
    await dir.remove();
    await hub.close();
  }
});
