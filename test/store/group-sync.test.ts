// A batch of received chunks (putChunks) is made durable with one syncfs for its small chunks instead of a flush per
// chunk file. These tests count the flushes through the injectable ChunkIo and make them fail: nothing may be
// acknowledged as stored before its flush returned, and a machine without `sync -f` still gets durable chunks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import fsSync from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { blake3, isStoreError, SyncFsUnavailable, type ChunkIo } from '../../store/index.ts';
import { prngBytes, withStore, withTempDir } from './temp-store.ts';
import { ChunkFiles } from '../../store/chunk-files.ts';
import { ChunkWorkers } from '../../store/chunk-workers.ts';

const b3 = blake3();
const chunk = (size: number, seed: number) => {
  const data = prngBytes(size, seed);
  return { hash: b3.hash(data).toString('hex'), data };
};

function countingIo(fail?: () => Error | undefined): { io: Partial<ChunkIo>; calls: string[] } {
  const calls: string[] = [];
  const io: Partial<ChunkIo> = {
    syncFs: async (dir) => {
      calls.push(dir);
      const err = fail?.();
      if (err) throw err;
    },
  };
  return { io, calls };
}

test('a batch of small chunks is flushed by one syncfs; a batch of large ones needs none', async () => {
  const { io, calls } = countingIo();
  await withStore({ chunkIo: io }, async (store, dir) => {
    const small = Array.from({ length: 40 }, (_, i) => chunk(2_000 + i * 100, i));
    assert.deepEqual(new Set(await store.putChunks(small)), new Set(['stored']));
    assert.deepEqual(calls, [path.join(dir, 'chunks')]);
    const large = [chunk(300_000, 100), chunk(400_000, 101)];
    assert.deepEqual(await store.putChunks(large), ['stored', 'stored']);
    assert.equal(calls.length, 1, 'large chunks are written with O_DSYNC, not flushed by the batch');
    for (const c of [...small, ...large]) assert.deepEqual(await store.getChunk(c.hash), Buffer.from(c.data));
    assert.deepEqual((await store.fsck()).problems, []);
  });
});

test('a flush that fails (EIO, then ENOSPC): the batch fails, none of its chunks counts as stored, and a retry stores them', async () => {
  let failure: Error | undefined = Object.assign(new Error('flushing the file system failed: Input/output error'), { code: 'EIO' });
  const { io, calls } = countingIo(() => failure);
  await withStore({ chunkIo: io }, async (store) => {
    const batch = Array.from({ length: 10 }, (_, i) => chunk(5_000, 200 + i));
    const hashes = batch.map((c) => c.hash);
    await assert.rejects(store.putChunks(batch), /Input\/output error/);
    assert.deepEqual(await store.hasChunks(hashes), [], 'nothing acknowledged before its flush returned');
    failure = Object.assign(new Error('flushing the file system failed: No space left on device'), { code: 'ENOSPC' });
    await assert.rejects(store.putChunks(batch), (err) => isStoreError(err, 'no_space'));
    assert.deepEqual(await store.hasChunks(hashes), []);
    failure = undefined;
    assert.deepEqual(new Set(await store.putChunks(batch)), new Set(['stored']));
    assert.deepEqual(await store.hasChunks(hashes), hashes);
    assert.equal(calls.length, 3);
    assert.deepEqual((await store.fsck()).problems, []);
  });
});

test('without a `sync` program: the first batch is flushed chunk by chunk, later ones are written with O_DSYNC', async () => {
  const { io, calls } = countingIo(() => new SyncFsUnavailable('cannot run sync -f: spawn sync ENOENT'));
  await withStore({ chunkIo: io }, async (store) => {
    const first = Array.from({ length: 5 }, (_, i) => chunk(3_000, 300 + i));
    const second = Array.from({ length: 5 }, (_, i) => chunk(3_000, 400 + i));
    assert.deepEqual(new Set(await store.putChunks(first)), new Set(['stored']));
    assert.deepEqual(new Set(await store.putChunks(second)), new Set(['stored']));
    assert.equal(calls.length, 1, 'tried once, then not again');
    for (const c of [...first, ...second]) assert.deepEqual(await store.getChunk(c.hash), Buffer.from(c.data));
  });
});

test('the default ChunkIo runs the real `sync -f` on the store\'s file system', async () => {
  // A `sync` ahead of the real one on PATH records its arguments and runs the real program (coreutils).
  const real = ['/usr/bin/sync', '/bin/sync'].find((p) => fsSync.existsSync(p));
  assert.ok(real, 'coreutils sync is installed');
  const bin = await fs.mkdtemp(path.join(os.tmpdir(), 'balupi-sync-bin-'));
  const log = path.join(bin, 'calls');
  await fs.writeFile(path.join(bin, 'sync'), `#!/bin/sh\necho "$@" >> '${log}'\nexec ${real} "$@"\n`, { mode: 0o755 });
  const savedPath = process.env.PATH;
  process.env.PATH = `${bin}:${savedPath ?? ''}`;
  try {
    await withStore({}, async (store, dir) => {
      const batch = Array.from({ length: 20 }, (_, i) => chunk(4_000, 500 + i));
      assert.deepEqual(new Set(await store.putChunks(batch)), new Set(['stored']));
      assert.deepEqual((await fs.readFile(log, 'utf8')).trim().split('\n'), [`-f -- ${path.join(dir, 'chunks')}`]);
      assert.deepEqual(await fs.readdir(path.join(dir, 'tmp')), []);
      for (const c of batch) assert.deepEqual(await store.getChunk(c.hash), Buffer.from(c.data));
    });
  } finally {
    process.env.PATH = savedPath;
    await fs.rm(bin, { recursive: true, force: true });
  }
});

for (const workers of [1, 0]) {
  test(`a chunk file that cannot be written fails its batch cleanly (small chunks written by ${workers ? 'a chunk worker' : 'this thread'})`, async () => {
    await withStore({ workers }, async (store, dir) => {
      const batch = Array.from({ length: 30 }, (_, i) => chunk(3_000, 600 + i));
      // Input tried: a regular file where one chunk's fan-out directory must go (as a damaged disk could leave).
      const blocked = batch[17]!.hash.slice(0, 2);
      await fs.mkdir(path.join(dir, 'chunks'), { recursive: true });
      await fs.writeFile(path.join(dir, 'chunks', blocked), 'in the way');
      await assert.rejects(store.putChunks(batch), (err: NodeJS.ErrnoException) => ['EEXIST', 'ENOTDIR'].includes(String(err.code)));
      assert.deepEqual(await store.hasChunks(batch.map((c) => c.hash)), [], 'nothing of the failed batch counts as stored');
      assert.deepEqual(await fs.readdir(path.join(dir, 'tmp')), [], 'no temp file left');
      await fs.rm(path.join(dir, 'chunks', blocked));
      assert.deepEqual(new Set(await store.putChunks(batch)), new Set(['stored']));
      for (const c of batch) assert.deepEqual(await store.getChunk(c.hash), Buffer.from(c.data));
      assert.deepEqual((await store.fsck()).problems, []);
    });
  });
}

test('a chunk worker that dies while writing a batch: writeMany says so, and the batch written one by one is complete', async () => {
  await withTempDir(async (dir) => {
    const workers = new ChunkWorkers(1, 'auto');
    const files = new ChunkFiles(dir, b3, undefined, workers);
    await files.init();
    try {
      const batch = Array.from({ length: 200 }, (_, i) => chunk(8_000, 700 + i));
      // Input tried: the worker thread ends while the batch is in its hands (terminated right after the hand-over).
      const written = files.writeMany(batch);
      await workers.close();
      assert.equal(await written, false, 'not reported as written');
      assert.equal(await files.writeMany(batch), false, 'a closed pool takes nothing');
      for (const c of batch) await files.write(c.hash, c.data, true);
      await files.makeDurable(batch.map((c) => c.hash), batch.map((c) => c.hash));
      for (const c of batch) assert.deepEqual(await files.read(c.hash, c.data.length), Buffer.from(c.data));
      assert.deepEqual(await files.strayTemps(), []);
    } finally {
      await workers.close();
    }
  });
});
