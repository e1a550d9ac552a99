import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { DEFAULT_CHUNK_PARAMS } from '../../store/index.ts';
import { readAll, source, withStore } from './temp-store.ts';

const MiB = 1024 * 1024;

test('dedup with the default chunk sizes on a 64 MiB random file: re-ingest, 1-byte insert, 1 MiB append', async () => {
  await withStore({}, async (store) => {
    const a = randomBytes(64 * MiB);
    const first = await store.ingest('a.bin', source(a, 1 * MiB));
    assert.equal(first.newBytes, a.length);
    const chunks = first.file.chunks.length;
    assert.ok(chunks >= 30 && chunks <= 120, `~1 MiB average chunks expected, got ${chunks} for 64 MiB`);

    // Identical bytes under another name (and streamed in different piece sizes): nothing new is stored.
    const again = await store.ingest('copy-of-a.bin', source(a, 64 * 1024));
    assert.equal(again.newChunks, 0);
    assert.equal(again.newBytes, 0);
    assert.deepEqual(again.file.chunks, first.file.chunks);

    // One byte inserted in the middle: only the chunk(s) around the insert are new.
    const mid = 32 * MiB + 12345;
    const inserted = Buffer.concat([a.subarray(0, mid), Buffer.from([0x42]), a.subarray(mid)]);
    const ins = await store.ingest('inserted.bin', source(inserted, 1 * MiB));
    assert.ok(ins.newChunks >= 1 && ins.newChunks <= 2, `1-byte insert added ${ins.newChunks} chunks`);
    assert.ok(ins.newBytes <= 2 * DEFAULT_CHUNK_PARAMS.maxSize);

    // 1 MiB appended: the old tail chunk is re-cut with the new bytes, nothing before it changes.
    const tail = first.file.chunks.at(-1)!.size;
    const appended = Buffer.concat([a, randomBytes(MiB)]);
    const app = await store.ingest('appended.bin', source(appended, 1 * MiB));
    // The appended bytes may be cut into more than one chunk of their own (1 MiB average size); what must hold is
    // that at most 2 new chunks carry any of the old bytes.
    const oldStore = new Set(first.file.chunks.map((c) => c.hash));
    let offset = 0;
    let newWithOldBytes = 0;
    for (const c of app.file.chunks) {
      if (!oldStore.has(c.hash) && offset < a.length) newWithOldBytes++;
      offset += c.size;
    }
    assert.ok(app.newChunks >= 1 && newWithOldBytes <= 2, `1 MiB append: ${app.newChunks} new chunks, ${newWithOldBytes} with old bytes`);
    assert.ok(app.newBytes <= tail + MiB, `append stored ${app.newBytes} new bytes (old tail chunk ${tail} + 1 MiB)`);
    assert.deepEqual(app.file.chunks.slice(0, chunks - 1), first.file.chunks.slice(0, -1));

    const st = store.stats();
    assert.equal(st.storedBytes, a.length + ins.newBytes + app.newBytes);
    // Bounded by the checks above: 64 MiB + at most 2 max-size chunks + (old tail chunk + 1 MiB) stored.
    const logical = 2 * a.length + inserted.length + appended.length;
    assert.ok(Math.abs(st.dedupRatio - logical / st.storedBytes) < 1e-9, `dedup ratio ${st.dedupRatio}`);
    assert.ok(st.dedupRatio > logical / (a.length + 2 * DEFAULT_CHUNK_PARAMS.maxSize + DEFAULT_CHUNK_PARAMS.maxSize + MiB));
    assert.ok((await readAll(await store.read('inserted.bin'))).equals(inserted));
    assert.ok((await readAll(await store.read('appended.bin', { offset: a.length - 10 }))).equals(appended.subarray(a.length - 10)));
  });
});
