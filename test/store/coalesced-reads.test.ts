// Reads of small chunks asked for in the same turn of the event loop go to the chunk worker in one message. Input
// tried: 100 small chunk files read at once, one of them rotted (right size, wrong bytes) and one missing, plus a
// large one: every good chunk comes back byte for byte, the two bad ones fail alone as corrupt, and the small reads
// took two messages (64 per message), not 100.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { Worker } from 'node:worker_threads';
import { blake3, isStoreError } from '../../store/index.ts';
import { ChunkFiles } from '../../store/chunk-files.ts';
import { ChunkWorkers } from '../../store/chunk-workers.ts';
import { prngBytes, withTempDir } from './temp-store.ts';

const b3 = blake3();

test('small reads of one turn share a worker message; a bad chunk among them fails alone', async () => {
  await withTempDir(async (dir) => {
    const pool = new ChunkWorkers(1, 'auto');
    const files = new ChunkFiles(dir, b3, undefined, pool);
    await files.init();
    const kinds: string[] = [];
    const post = Worker.prototype.postMessage;
    Worker.prototype.postMessage = function (this: Worker, msg: { kind?: string }, ...rest: unknown[]) {
      kinds.push(String(msg?.kind));
      return (post as (...a: unknown[]) => void).call(this, msg, ...rest);
    };
    try {
      const chunks = Array.from({ length: 100 }, (_, i) => {
        const data = prngBytes(2000 + i, 1200 + i);
        return { hash: b3.hash(data).toString('hex'), data };
      });
      const large = prngBytes(600_000, 77);
      const big = { hash: b3.hash(large).toString('hex'), data: large };
      for (const c of [...chunks, big]) await files.write(c.hash, c.data, true);
      const rotted = chunks[10]!;
      await fs.writeFile(files.pathOf(rotted.hash), prngBytes(rotted.data.length, 5));
      const missing = chunks[70]!;
      await fs.rm(files.pathOf(missing.hash));
      kinds.length = 0;

      const results = await Promise.allSettled([...chunks, big].map((c) => files.read(c.hash, c.data.length)));
      [...chunks, big].forEach((c, i) => {
        const r = results[i]!;
        if (c === rotted || c === missing) assert.ok(r.status === 'rejected' && isStoreError(r.reason, 'corrupt_chunk'), `chunk ${i} fails as corrupt`);
        else assert.ok(r.status === 'fulfilled' && r.value.equals(Buffer.from(c.data)), `chunk ${i} byte for byte`);
      });
      assert.deepEqual(kinds.filter((k) => k === 'reads').length, 2, '100 small reads in messages of 64');
      assert.deepEqual(kinds.filter((k) => k === 'read').length, 1, 'the large one alone');
    } finally {
      Worker.prototype.postMessage = post;
      await pool.close();
    }
  });
});
