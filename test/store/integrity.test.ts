import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import fsSync from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { blake3, isStoreError } from '../../store/index.ts';
import type { Store } from '../../store/index.ts';
import { SMALL_CHUNKS, readAll, source, withStore } from './temp-store.ts';
import { openFd } from '../../store/fd-calls.ts';

const chunkPath = (dir: string, hash: string): string => path.join(dir, 'chunks', hash.slice(0, 2), hash);

async function chunkFileCount(dir: string): Promise<number> {
  let n = 0;
  for (const fan of await fs.readdir(path.join(dir, 'chunks'))) n += (await fs.readdir(path.join(dir, 'chunks', fan))).length;
  return n;
}

/** Reads until the stream fails; returns the bytes delivered before the failure and the error. */
async function readUntilError(store: Store, name: string): Promise<{ got: Buffer; err: unknown }> {
  const parts: Buffer[] = [];
  try {
    for await (const p of await store.read(name)) parts.push(p as Buffer);
  } catch (err) {
    return { got: Buffer.concat(parts), err };
  }
  return { got: Buffer.concat(parts), err: undefined };
}

describe('corruption on disk', () => {
  for (const workers of [2, 0]) {
    test(`a flipped bit in a chunk file: fsck names it, reads fail at that chunk and never return wrong bytes (${workers ? 'worker' : 'main-thread'} reads)`, async () => {
      await withStore({ chunkParams: SMALL_CHUNKS, workers }, async (store, dir) => {
        const data = randomBytes(400_000);
        const { file } = await store.ingest('victim', source(data));
        const k = 3;
        const bad = file.chunks[k]!;
        const p = chunkPath(dir, bad.hash);
        const bytes = await fs.readFile(p);
        bytes[100]! ^= 0x01;
        await fs.writeFile(p, bytes);

        const report = await store.fsck();
        assert.equal(report.ok, false);
        assert.deepEqual(report.problems.map((x) => [x.kind, x.hash]), [['corrupt_chunk', bad.hash]]);

        const { got, err } = await readUntilError(store, 'victim');
        assert.ok(isStoreError(err, 'corrupt_chunk'), `expected corrupt_chunk, got ${String(err)}`);
        const before = file.chunks.slice(0, k).reduce((a, c) => a + c.size, 0);
        assert.ok(got.length <= before, 'no byte of the corrupt chunk (or after it) was delivered');
        assert.ok(got.equals(data.subarray(0, got.length)), 'what was delivered is correct');
        await assert.rejects(store.getChunk(bad.hash), (e: unknown) => isStoreError(e, 'corrupt_chunk'));
        // Ranges that do not touch the damaged chunk still read.
        const ok = await readAll(await store.read('victim', { offset: 0, length: before }));
        assert.ok(ok.equals(data.subarray(0, before)));
      });
    });
  }

  test('a truncated, vanished or overlong chunk file is reported by fsck; reads fail at the damaged chunk', async () => {
    await withStore({ chunkParams: SMALL_CHUNKS }, async (store, dir) => {
      const { file } = await store.ingest('v', source(randomBytes(200_000)));
      const [c0, c1, c2] = file.chunks as { hash: string; size: number }[] as [{ hash: string; size: number }, { hash: string; size: number }, { hash: string; size: number }];
      await fs.truncate(chunkPath(dir, c0.hash), c0.size - 1);
      await fs.rm(chunkPath(dir, c1.hash));
      await fs.appendFile(chunkPath(dir, c2.hash), 'trailing garbage');
      const report = await store.fsck();
      assert.deepEqual(
        report.problems.map((x) => [x.kind, x.hash]).sort(),
        [['corrupt_chunk', c0.hash], ['corrupt_chunk', c1.hash], ['corrupt_chunk', c2.hash]].sort(),
      );
      const { got, err } = await readUntilError(store, 'v');
      assert.ok(isStoreError(err, 'corrupt_chunk'));
      assert.equal(got.length, 0);
    });
  });

  test('stray temp files and unreferenced chunk files: fsck reports them, gc removes them, referenced data stays', async () => {
    await withStore({ chunkParams: SMALL_CHUNKS }, async (store, dir) => {
      const data = randomBytes(100_000);
      await store.ingest('keep', source(data));
      const fake = blake3().hash(Buffer.from('nobody references me')).toString('hex');
      await fs.mkdir(path.dirname(chunkPath(dir, fake)), { recursive: true });
      await fs.writeFile(chunkPath(dir, fake), 'nobody references me');
      await fs.writeFile(path.join(dir, 'chunks', fake.slice(0, 2), 'not-a-hash'), 'junk');
      await fs.writeFile(path.join(dir, 'tmp', 'leftover.tmp'), 'half a chunk');
      const report = await store.fsck();
      assert.deepEqual(report.problems.map((x) => x.kind).sort(), ['orphan_chunk_file', 'stray_file', 'temp_leftover']);
      const g = await store.gc();
      assert.equal(g.tempFiles, 1);
      assert.equal(g.orphanFiles, 2);
      assert.deepEqual((await store.fsck()).problems, []);
      assert.ok((await readAll(await store.read('keep'))).equals(data));
    });
  });

  test('staged chunks (putChunk without a commit) are kept for the grace period, then gc removes them', async () => {
    let t = 1_000_000;
    await withStore({ now: () => t, stagedGraceMs: 60_000 }, async (store) => {
      const bytes = randomBytes(5000);
      const h = blake3().hash(bytes).toString('hex');
      await store.putChunk(h, bytes);
      assert.equal((await store.gc()).stagedChunks, 0);
      assert.deepEqual(await store.hasChunks([h]), [h]);
      t += 61_000;
      const g = await store.gc();
      assert.equal(g.stagedChunks, 1);
      assert.equal(g.stagedBytes, 5000);
      assert.deepEqual(await store.hasChunks([h]), []);
      assert.equal(store.stats().storedBytes, 0);
      assert.equal(store.stats().dirtyBytes, 0);
      assert.deepEqual((await store.fsck()).problems, []);
    });
  });

  test('gc racing commits that claim staged chunks: no chunk a committed file references is dropped', async () => {
    // gc scans the chunk rows outside the write lock and drops candidates in batches. Input: 1,200 staged chunks past
    // their grace period, and commits claiming every other one while gc runs. Whatever gc dropped must be a chunk no
    // committed file references: every commit that went through reads back, and fsck finds nothing wrong.
    let t = 1_000_000;
    await withStore({ now: () => t, stagedGraceMs: 60_000 }, async (store) => {
      const chunks = Array.from({ length: 1200 }, () => {
        const data = randomBytes(64 + Math.floor(Math.random() * 512));
        return { hash: blake3().hash(data).toString('hex'), data };
      });
      await store.putChunks(chunks);
      t += 61_000;
      const gcing = store.gc();
      const committed: number[] = [];
      await Promise.all(
        chunks.map(async (c, i) => {
          if (i % 2 === 1) return;
          const meta = { size: c.data.length, mtimeMs: 1_700_000_000_000, mode: 0o644, chunks: [{ hash: c.hash, size: c.data.length }], hash: c.hash };
          try {
            await store.commitFile(`f${i}`, meta, { baseVersion: 0 });
            committed.push(i);
          } catch (err) {
            if (!isStoreError(err, 'missing_chunks')) throw err; // gc dropped it first: the commit is refused
          }
        }),
      );
      const g = await gcing;
      assert.ok(committed.length > 0, 'some commits went through');
      for (const i of committed) assert.ok((await readAll(await store.read(`f${i}`))).equals(chunks[i]!.data), `f${i} reads back`);
      assert.ok(g.stagedChunks >= 600, `gc dropped at least the unclaimed half (${g.stagedChunks})`);
      assert.equal(g.stagedChunks + committed.length, 1200, 'each chunk was either dropped or committed');
      assert.deepEqual((await store.fsck()).problems, []);
    });
  });
});

describe('disk full (ENOSPC)', () => {
  // A real ENOSPC without root: the injected temp-file opener hands the writer /dev/full, whose write(2) fails with
  // ENOSPC from the kernel. Everything else (rename, fsync, LevelDB) runs on the real filesystem.
  test('the very first chunk write hits ENOSPC: clear no_space error, previous version intact, nothing left behind', async () => {
    let full = false;
    const chunkIo = { openTemp: (p: string) => (full ? openFd('/dev/full', fsSync.constants.O_WRONLY) : openFd(p, fsSync.constants.O_WRONLY | fsSync.constants.O_CREAT | fsSync.constants.O_EXCL)) };
    await withStore({ chunkParams: SMALL_CHUNKS, chunkIo }, async (store, dir) => {
      const v1 = randomBytes(150_000);
      await store.ingest('f', source(v1));
      const before = store.stats();
      full = true;
      await assert.rejects(store.ingest('f', source(randomBytes(300_000))), (err: unknown) => {
        assert.ok(isStoreError(err, 'no_space'), String(err));
        assert.match(err.message, /no space left/);
        assert.equal((err.cause as NodeJS.ErrnoException).code, 'ENOSPC');
        return true;
      });
      full = false;
      assert.deepEqual(store.stats(), before);
      assert.ok((await readAll(await store.read('f'))).equals(v1));
      assert.deepEqual((await store.fsck()).problems, []);
      assert.equal(await chunkFileCount(dir), before.chunks);
      assert.deepEqual(await fs.readdir(path.join(dir, 'tmp')), []);
    });
  });

  for (const ingestInWorker of [false, true]) {
    test(`ENOSPC after several chunks were written: the written ones are removed again and the store stays consistent (hashing ${ingestInWorker ? 'in a worker' : 'on the main thread'})`, async () => {
      let opens = 0;
      let failAfter = Infinity;
      const chunkIo = { openTemp: (p: string) => (++opens > failAfter ? openFd('/dev/full', fsSync.constants.O_WRONLY) : openFd(p, fsSync.constants.O_WRONLY | fsSync.constants.O_CREAT | fsSync.constants.O_EXCL)) };
      await withStore({ chunkParams: SMALL_CHUNKS, chunkIo, writeConcurrency: 2, ingestInWorker }, async (store, dir) => {
        await store.ingest('a', Readable.from([randomBytes(100_000)]));
        const before = store.stats();
        opens = 0;
        failAfter = 5;
        await assert.rejects(store.ingest('b', source(randomBytes(600_000))), (e: unknown) => isStoreError(e, 'no_space'));
        assert.ok(opens > 5, 'some chunks were written before the disk filled up');
        failAfter = Infinity;
        assert.deepEqual(store.stats(), before);
        assert.equal(await chunkFileCount(dir), before.chunks, 'the chunks written for the failed ingest are gone');
        assert.deepEqual((await store.fsck()).problems, []);
        const data = randomBytes(300_000);
        await store.ingest('b', source(data));
        assert.ok((await readAll(await store.read('b'))).equals(data));
      });
    });
  }
});
