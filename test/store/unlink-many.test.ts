// Chunk files the index no longer wants are removed in batches (ChunkFiles.unlinkMany, by a chunk worker in one
// message, else here). Input tried: a batch with a file already gone (counts as removed) and one that cannot be
// removed (a non-empty directory where the chunk file should be, as a damaged disk could leave): that one fails alone
// with its own error, every other file of the batch is gone, and what was in the way is untouched.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { blake3 } from '../../store/index.ts';
import { ChunkFiles } from '../../store/chunk-files.ts';
import { ChunkWorkers } from '../../store/chunk-workers.ts';
import { prngBytes, withTempDir } from './temp-store.ts';

const b3 = blake3();

for (const workers of [1, 0]) {
  test(`unlinkMany removes a batch; a missing file counts as removed, one that cannot be removed fails alone (${workers ? 'chunk worker' : 'this thread'})`, async () => {
    await withTempDir(async (dir) => {
      const pool = new ChunkWorkers(workers, 'auto');
      const files = new ChunkFiles(dir, b3, undefined, pool);
      await files.init();
      try {
        const chunks = Array.from({ length: 40 }, (_, i) => {
          const data = prngBytes(1000 + i, 900 + i);
          return { hash: b3.hash(data).toString('hex'), data };
        });
        for (const c of chunks) await files.write(c.hash, c.data, true);
        const gone = chunks[3]!.hash;
        await fs.rm(files.pathOf(gone));
        const blocked = chunks[17]!.hash;
        await fs.rm(files.pathOf(blocked));
        await fs.mkdir(path.join(files.pathOf(blocked), 'inside'), { recursive: true });

        const errors = await files.unlinkMany(chunks.map((c) => c.hash));
        chunks.forEach((c, i) => {
          if (c.hash === blocked) assert.ok(errors[i] instanceof Error, 'the blocked one fails');
          else assert.equal(errors[i], null, `chunk ${i}`);
        });
        for (const c of chunks) {
          if (c.hash === blocked) assert.deepEqual(await fs.readdir(files.pathOf(c.hash)), ['inside'], 'what was in the way is untouched');
          else assert.equal(await files.exists(c.hash), false);
        }
      } finally {
        await pool.close();
      }
    });
  });
}
