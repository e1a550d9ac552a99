// A version whose bytes only a backing-folder file held, lost when that file was edited before the version was
// written out (store/lost-bytes.ts): it becomes 'remote' under a new sequence number (the change feed tells the peers),
// and local again, announced once more, when the bytes come back. The index stays consistent throughout (fsck).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { FileRecord } from '../../store/index.ts';
import { prngBytes, readAll } from './temp-store.ts';
import { commitFromPeer, putChunksOf, withHub } from './backing-fixtures.ts';
import { waitFor } from '../sync/peers.ts';

const metaOf = (r: FileRecord) => ({ size: r.size, mtimeMs: r.mtimeMs, mode: r.mode, chunks: r.chunks, hash: r.hash });

test("a peer's version whose bytes only a root file held, that file edited before the version was written: 'remote' under a new sequence, then local again once the bytes are sent", async () => {
  await withHub(async (h) => {
    const A = prngBytes(120_000, 41);
    const a = await h.ingestOwn('a.bin', A);
    // A peer's copy of a.bin as b.bin: acknowledged on the bytes a.bin holds (nothing else has them)...
    const b = await h.store.commitFile('b.bin', metaOf(a), { baseVersion: 0 });
    assert.equal(b.state, 'local');
    // ...and a.bin is saved over on the NAS before b.bin is written; the hub reads that edit (its old bytes are gone:
    // nothing can be copied out for b.bin).
    await h.ingestOwn('a.bin', prngBytes(A.length, 42), a.version);
    const changes: FileRecord[] = [];
    h.store.on('change', (r) => changes.push(r));
    const before = h.store.stats();
    const lost = await h.store.demoteIfLost('b.bin', b.version);
    assert.equal(lost?.state, 'remote');
    assert.equal(lost?.version, b.version, 'the same version');
    assert.ok(lost!.seq > b.seq, 'under a new sequence number, so that the feed sends it again');
    assert.deepEqual(changes.map((r) => [r.path, r.state]), [['b.bin', 'remote']], 'one change event');
    const listed: [string, number][] = [];
    for await (const r of h.store.changesSince(0)) listed.push([r.path, r.seq]);
    assert.deepEqual(listed.filter(([p]) => p === 'b.bin'), [['b.bin', lost!.seq]], 'the feed lists it once, at its new place');
    assert.equal(h.store.stats().localFiles, before.localFiles - 1);
    assert.deepEqual(await h.store.hasChunks(a.chunks.map((c) => c.hash)), [], 'have/want asks for every chunk');
    assert.deepEqual((await h.store.fsck()).problems, [], 'a consistent index');
    // Called again (the writer tries once more), nothing changes.
    assert.equal((await h.store.demoteIfLost('b.bin', b.version))?.seq, lost!.seq);

    // Some of the chunks come back: still remote, not announced.
    await putChunksOf(h.store, a.chunks, A, Math.ceil(a.chunks.length / 2));
    assert.equal((await h.store.promoteAllComplete(['b.bin'], { announce: true }))[0]?.state, 'remote');
    assert.equal(changes.length, 1);
    await putChunksOf(h.store, a.chunks, A);
    const back = (await h.store.promoteAllComplete(['b.bin'], { announce: true }))[0];
    assert.equal(back?.state, 'local');
    assert.equal(back?.version, b.version);
    assert.ok(back!.seq > lost!.seq, 'announced again');
    assert.deepEqual(changes.map((r) => [r.path, r.state]), [['b.bin', 'remote'], ['b.bin', 'local']]);
    assert.deepEqual(await readAll(await h.store.read('b.bin')), A);
    assert.equal(h.store.stats().localFiles, before.localFiles);
    assert.deepEqual((await h.store.fsck()).problems, []);
  });
});

test('a version whose bytes are all still held (the read that failed was of a stale location, another still holds them) stays local, unannounced', async () => {
  await withHub(async (h) => {
    const A = prngBytes(90_000, 43);
    const a = await h.ingestOwn('a.bin', A);
    await h.ingestOwn('twin.bin', A); // the same bytes, in a second root file
    const b = await h.store.commitFile('b.bin', metaOf(a), { baseVersion: 0 });
    await fs.writeFile(path.join(h.root, 'a.bin'), prngBytes(A.length, 44));
    const after = await h.store.demoteIfLost('b.bin', b.version);
    assert.equal(after?.state, 'local');
    assert.equal(after?.seq, b.seq);
    assert.deepEqual(await readAll(await h.store.read('b.bin')), A, 'read from twin.bin');
    // A version the path has moved on from is left alone.
    const b2 = await h.store.commitFile('b.bin', metaOf(a), { baseVersion: b.version });
    assert.equal((await h.store.demoteIfLost('b.bin', b.version))?.seq, b2.seq);
    assert.deepEqual((await h.store.fsck()).problems, []);
  });
});

test('forgetGoneBytes: only locations whose file no longer holds the bytes go; the chunks left without bytes are named', async () => {
  await withHub(async (h) => {
    const A = prngBytes(60_000, 45);
    const B = prngBytes(60_000, 46);
    const a = await h.ingestOwn('a.bin', A);
    const b = await h.ingestOwn('b.bin', B);
    await fs.writeFile(path.join(h.root, 'a.bin'), prngBytes(A.length, 47));
    const hashes = [...a.chunks, ...b.chunks].map((c) => c.hash);
    const without = await h.store.forgetGoneBytes(hashes);
    assert.deepEqual(new Set(without), new Set(a.chunks.map((c) => c.hash)));
    assert.deepEqual(new Set(await h.store.hasChunks(hashes)), new Set(b.chunks.map((c) => c.hash)), "b.bin's chunks keep their place");
    assert.deepEqual(await readAll(await h.store.read('b.bin')), B);
  });
});

test("a version whose chunk file rotted (a root file linked to it saved over in place): the chunk file goes, the version waits for the bytes, and completes when they come", async () => {
  await withHub(async (h) => {
    const data = prngBytes(40_000, 48);
    const b = await commitFromPeer(h.store, 'b.bin', data, 0);
    const chunk = b.chunks[0]!;
    const file = path.join(h.dir, 'chunks', chunk.hash.slice(0, 2), chunk.hash);
    const rotted = await fs.readFile(file);
    rotted[5] = rotted[5]! ^ 0xff;
    await fs.writeFile(file, rotted);
    const lost = await h.store.demoteIfLost('b.bin', b.version);
    assert.equal(lost?.state, 'remote');
    assert.ok(lost!.seq > b.seq);
    await waitFor('the rotten chunk file removed', async () => (await fs.stat(file).catch(() => null)) === null);
    assert.ok(!(await h.store.hasChunks([chunk.hash])).includes(chunk.hash), 'have/want asks for it');
    assert.deepEqual((await h.store.fsck()).problems, []);
    await h.store.putChunk(chunk.hash, data.subarray(0, chunk.size), { clean: true });
    assert.equal((await h.store.promoteAllComplete(['b.bin'], { announce: true }))[0]?.state, 'local');
    assert.deepEqual(await readAll(await h.store.read('b.bin')), data);
    assert.deepEqual((await h.store.fsck()).problems, []);
  });
});
