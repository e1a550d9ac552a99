// A store with a backing folder (the hub's root): the folder's files hold their chunks' bytes, so the hub keeps each
// byte once. Reads are verified wherever the bytes come from; a file that stops holding a version (replaced, deleted,
// changed behind the store's back) never takes bytes that other files still need with it, and never serves wrong ones.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileSource, isStoreError, openStore, type FileRecord } from '../../store/index.ts';
import { prngBytes, readAll, source, withTempDir } from './temp-store.ts';
import { commitFromPeer, withHub } from './backing-fixtures.ts';
import { waitFor } from '../sync/peers.ts';
import { ClassicLevel } from 'classic-level';

const metaOf = (r: FileRecord) => ({ size: r.size, mtimeMs: r.mtimeMs, mode: r.mode, chunks: r.chunks, hash: r.hash });

function offsets(r: FileRecord): Map<string, number> {
  const out = new Map<string, number>();
  let pos = 0;
  for (const c of r.chunks) {
    if (!out.has(c.hash)) out.set(c.hash, pos);
    pos += c.size;
  }
  return out;
}

test("the hub's own files: no chunk file is written, nothing counts against the budget, reads come verified from the file", async () => {
  // A budget far below the file: the root's bytes are not cache, so the ingest must not be refused as cache_full.
  await withHub(async (h) => {
    const data = prngBytes(300_000, 1);
    const rec = await h.ingestOwn('docs/a.bin', data);
    assert.ok(rec.chunks.length > 3, 'several chunks');
    assert.equal(await h.chunkFiles(), 0);
    assert.equal(h.store.stats().storedBytes, 0);
    assert.equal(h.store.stats().backingDir, h.root);
    assert.deepEqual(await readAll(await h.store.read('docs/a.bin')), data);
    assert.deepEqual(await readAll(await h.store.read('docs/a.bin', { offset: 100_000, length: 50_000 })), data.subarray(100_000, 150_000));
    const second = rec.chunks[1]!;
    assert.deepEqual(await h.store.getChunk(second.hash), data.subarray(rec.chunks[0]!.size, rec.chunks[0]!.size + second.size));
    assert.deepEqual(await h.store.hasChunks([second.hash]), [second.hash]);
    // Eviction has nothing to take: the bytes are the root's, not the cache's.
    assert.deepEqual(await h.store.evict(0), { files: 0, bytes: 0 });
    assert.equal((await h.store.stat('docs/a.bin')).state, 'local');
    const report = await h.store.fsck();
    assert.deepEqual(report.problems, []);
    assert.equal(report.bytesVerified, data.length);
  }, { cacheMaxBytes: 50_000 });
});

test('a root file changed behind the store: its old chunks fail as corrupt (never other bytes), and fsck names the file', async () => {
  await withHub(async (h) => {
    const data = prngBytes(100_000, 2);
    const rec = await h.ingestOwn('a.bin', data);
    // Same size, one byte changed in place: what a program editing the file directly does.
    const fd = await fs.open(path.join(h.root, 'a.bin'), 'r+');
    await fd.write(Buffer.from([data[10]! ^ 0xff]), 0, 1, 10);
    await fd.close();
    await assert.rejects(readAll(await h.store.read('a.bin')), (err) => isStoreError(err, 'corrupt_chunk'));
    await assert.rejects(h.store.getChunk(rec.chunks[0]!.hash), (err) => isStoreError(err, 'corrupt_chunk'));
    // The chunks after the change still read.
    const last = rec.chunks.at(-1)!;
    assert.deepEqual(await h.store.getChunk(last.hash), data.subarray(data.length - last.size));
    const report = await h.store.fsck();
    assert.deepEqual(report.problems.map((p) => [p.kind, p.path, p.hash]), [['location', 'a.bin', rec.chunks[0]!.hash]]);
    // The hub reads the file again (its watcher would): the new version is located, the problem is gone.
    await h.store.ingest('a.bin', fileSource(path.join(h.root, 'a.bin')), {}, { located: true, baseVersion: 1 });
    assert.deepEqual((await h.store.fsck()).problems, []);
  });
});

test("a peer's version over a root file: chunks at the same offset stay in the file, the others another file needs are copied out first; once written, no chunk file is left", async () => {
  await withHub(async (h) => {
    const a = prngBytes(200_000, 3);
    const recA = await h.ingestOwn('f.bin', a);
    // Another file with the same content, committed by a peer and not yet written into the root: its bytes are f's.
    await h.store.commitFile('g.bin', metaOf(recA), { baseVersion: 0 });
    assert.equal(await h.chunkFiles(), 0, 'g needed no bytes');
    // The peer's new f: the first half as before, then new bytes.
    const b = Buffer.concat([a.subarray(0, 100_000), prngBytes(100_000, 4)]);
    const recB = await commitFromPeer(h.store, 'f.bin', b, 1);
    const inB = offsets(recB);
    const moved = [...offsets(recA)].filter(([hash, off]) => inB.get(hash) !== off);
    const kept = [...offsets(recA)].filter(([hash, off]) => inB.get(hash) === off);
    assert.ok(moved.length > 0 && kept.length > 0, 'the edit keeps some chunks in place and moves others');
    const sizeOf = (hash: string) => recA.chunks.find((c) => c.hash === hash)!.size;
    const movedBytes = moved.reduce((s, [hash]) => s + sizeOf(hash), 0);
    const inA = offsets(recA);
    const newBytes = recB.chunks.filter((c) => !inA.has(c.hash)).reduce((s, c) => s + c.size, 0);
    // Before the new f is written: its new chunks as chunk files, plus the copies of what moved; nothing kept in place.
    assert.equal(h.store.stats().storedBytes, newBytes + movedBytes);
    // The root writer writes f's new version, then tells the store.
    await h.put('f.bin', b);
    assert.deepEqual(await h.store.noteWritten([{ path: 'f.bin', version: recB.version }]), [true]);
    // Left on the store's disk: exactly the chunks g still needs that the new f does not hold where the old one did.
    assert.equal(h.store.stats().storedBytes, movedBytes);
    assert.deepEqual(await readAll(await h.store.read('g.bin')), a);
    assert.deepEqual(await readAll(await h.store.read('f.bin')), b);
    assert.deepEqual((await h.store.fsck()).problems, []);
    // g written into the root as well: the store keeps no byte of either.
    await h.put('g.bin', a);
    assert.deepEqual(await h.store.noteWritten([{ path: 'g.bin', version: 1 }, { path: 'f.bin', version: 1 }]), [true, false]);
    assert.equal(h.store.stats().storedBytes, 0);
    assert.equal(await h.chunkFiles(), 0);
    assert.deepEqual((await h.store.fsck()).problems, []);
  });
});

test("a deleted root file's chunks that another file needs are copied out before it goes; the rest go with it", async () => {
  await withHub(async (h) => {
    const a = prngBytes(150_000, 5);
    const recA = await h.ingestOwn('a.bin', a);
    await h.ingestOwn('other.bin', prngBytes(50_000, 6));
    await h.store.commitFile('b.bin', metaOf(recA), { baseVersion: 0 });
    await h.store.delete('a.bin');
    await fs.rm(path.join(h.root, 'a.bin'));
    assert.equal(new Set(recA.chunks.map((c) => c.hash)).size, recA.chunks.length, 'random content: no chunk twice');
    assert.equal(h.store.stats().storedBytes, a.length);
    assert.deepEqual(await readAll(await h.store.read('b.bin')), a);
    await h.store.delete('other.bin');
    assert.equal(h.store.stats().chunks, recA.chunks.length, "other's rows went with it");
    assert.equal(h.store.stats().storedBytes, a.length, 'and took no chunk file along: it had none');
    assert.deepEqual((await h.store.fsck()).problems, []);
  });
});

test('a file found on disk (not just written) is checked before chunk files go: wrong bytes keep them', async () => {
  await withHub(async (h) => {
    const data = prngBytes(80_000, 7);
    const rec = await commitFromPeer(h.store, 'c.bin', data, 0);
    const stored = h.store.stats().storedBytes;
    assert.equal(stored, data.length);
    // Same size, other bytes: size and mtime would match, the content does not.
    await h.put('c.bin', prngBytes(80_000, 8));
    assert.deepEqual(await h.store.noteWritten([{ path: 'c.bin', version: rec.version, verify: true }]), [true]);
    assert.equal(h.store.stats().storedBytes, stored);
    assert.deepEqual(await readAll(await h.store.read('c.bin')), data);
    await h.put('c.bin', data);
    await h.store.noteWritten([{ path: 'c.bin', version: rec.version, verify: true }]);
    assert.equal(h.store.stats().storedBytes, 0);
    assert.equal(await h.chunkFiles(), 0);
    assert.deepEqual(await readAll(await h.store.read('c.bin')), data);
  });
});

test('a chunk file the root took over while a read streams it is removed once that read ends, and the read completes', async () => {
  await withHub(async (h) => {
    const data = prngBytes(120_000, 9);
    const rec = await commitFromPeer(h.store, 'r.bin', data, 0);
    const opened = await h.store.openRead('r.bin'); // holds the chunks until the stream ends
    await h.put('r.bin', data);
    await h.store.noteWritten([{ path: 'r.bin', version: rec.version }]);
    assert.equal(h.store.stats().storedBytes, 0);
    assert.equal(await h.chunkFiles(), new Set(rec.chunks.map((c) => c.hash)).size, 'held chunk files stay');
    assert.deepEqual(await readAll(opened.stream), data);
    await waitFor('the released chunk files to go', async () => (await h.chunkFiles()) === 0);
    assert.deepEqual((await h.store.fsck()).problems, []);
  });
});

test("a peer's commit relying on a chunk only a root file holds is refused once that file was edited in place, never acknowledged on stale bytes", async () => {
  await withHub(async (h) => {
    // A one-chunk file: its whole hash is its chunk's hash, so nothing else would read the chunk before the commit.
    const data = prngBytes(3000, 11);
    const own = await h.ingestOwn('own.txt', data);
    assert.equal(own.chunks.length, 1);
    // The peer has the same bytes under another name: the hub says it has the chunk (in own.txt)...
    assert.deepEqual(await h.store.hasChunks([own.hash]), [own.hash]);
    // ...and before the peer commits, someone edits own.txt in place.
    const fd = await fs.open(path.join(h.root, 'own.txt'), 'r+');
    await fd.write(Buffer.from('edited'), 0, 6, 0);
    await fd.close();
    await assert.rejects(h.store.commitFile('copy.txt', metaOf(own), { baseVersion: 0 }), (err) => isStoreError(err, 'corrupt_chunk'));
    await assert.rejects(h.store.stat('copy.txt'), (err) => isStoreError(err, 'not_found'), 'nothing was committed');
    // The hub reads the edited file (its watcher would): now the chunk counts as missing, so the peer sends it.
    await h.store.ingest('own.txt', fileSource(path.join(h.root, 'own.txt')), {}, { located: true, baseVersion: 1 });
    assert.deepEqual(await h.store.hasChunks([own.hash]), []);
    await assert.rejects(h.store.commitFile('copy.txt', metaOf(own), { baseVersion: 0 }), (err) => isStoreError(err, 'missing_chunks'));
    await h.store.putChunk(own.hash, data);
    await h.store.commitFile('copy.txt', metaOf(own), { baseVersion: 0 });
    assert.deepEqual(await readAll(await h.store.read('copy.txt')), data);
    assert.deepEqual((await h.store.fsck()).problems, []);
  });
});

test("a peer's commit relying on chunks only a root file holds, racing that file's deletion (a rename's old name), is refused, never acknowledged without the bytes", async () => {
  await withHub(async (h) => {
    const data = prngBytes(200_000, 12);
    const commits = {
      'new.bin': (meta: ReturnType<typeof metaOf>) => h.store.commitFile('new.bin', meta, { baseVersion: 0 }),
      'batch.bin': async (meta: ReturnType<typeof metaOf>) => {
        const [r] = await h.store.commitFiles([{ path: 'batch.bin', meta, baseVersion: 0 }]);
        if (r instanceof Error) throw r;
        return r!;
      },
    };
    let old: FileRecord | undefined;
    for (const [name, commit] of Object.entries(commits)) {
      old = await h.ingestOwn('old.bin', data, 0);
      assert.ok(old.chunks.length > 1);
      // The commit finds the chunks in old.bin; the deletion of old.bin (called in the same tick, so it takes the
      // index first) drops them, as nothing else refers to them. Before, the commit wrote its version as 'local'
      // anyway: the hub acknowledged a file it could not read.
      const committing = commit(metaOf(old));
      const deleting = h.store.delete('old.bin');
      await assert.rejects(committing, (err) => isStoreError(err, 'missing_chunks'), `${name}: the commit fails`);
      await deleting;
      await assert.rejects(h.store.stat(name), (err) => isStoreError(err, 'not_found'), `${name}: nothing was committed`);
      assert.deepEqual(await h.store.hasChunks(old.chunks.map((c) => c.hash)), [], 'the chunks count as missing, so the peer sends them');
    }
    // The peer sends them, and the same commit goes through.
    const at = offsets(old!);
    for (const c of old!.chunks) await h.store.putChunk(c.hash, data.subarray(at.get(c.hash)!, at.get(c.hash)! + c.size));
    await h.store.commitFile('new.bin', metaOf(old!), { baseVersion: 0 });
    assert.deepEqual(await readAll(await h.store.read('new.bin')), data);
    assert.deepEqual((await h.store.fsck()).problems, []);
  });
});

test("a batch that swaps two root files' contents: the second item, whose chunks went with the first item's old version, is refused, not acknowledged", async () => {
  await withHub(async (h) => {
    const A = prngBytes(150_000, 21);
    const B = prngBytes(150_000, 22);
    const a = await h.ingestOwn('a.bin', A);
    const b = await h.ingestOwn('b.bin', B);
    // A peer swapped the two files: a.bin now holds B and b.bin A, committed in one batch.
    const [ra, rb] = await h.store.commitFiles([
      { path: 'a.bin', meta: metaOf(b), baseVersion: a.version },
      { path: 'b.bin', meta: metaOf(a), baseVersion: b.version },
    ]);
    assert.ok(!(ra instanceof Error) && ra!.state === 'local' && ra!.hash === b.hash, 'a.bin: its new bytes are still in b.bin');
    assert.ok(isStoreError(rb, 'missing_chunks'), `b.bin: A's chunks went with a.bin's old version (${rb})`);
    assert.equal((await h.store.stat('b.bin')).hash, b.hash, 'b.bin keeps the version the hub holds');
    assert.deepEqual(await h.store.hasChunks(a.chunks.map((c) => c.hash)), [], 'so the peer sends them');
    const at = offsets(a);
    for (const c of a.chunks) await h.store.putChunk(c.hash, A.subarray(at.get(c.hash)!, at.get(c.hash)! + c.size));
    await h.store.commitFile('b.bin', metaOf(a), { baseVersion: b.version });
    assert.deepEqual(await readAll(await h.store.read('b.bin')), A);
    assert.deepEqual(await readAll(await h.store.read('a.bin')), B);
    assert.deepEqual((await h.store.fsck()).problems, []);
  });
});

test("a root file's bytes that another version still needs are copied out when it changes, even if a file the store has not yet seen go still counts as holding them", async () => {
  await withHub(async (h) => {
    const data = prngBytes(120_000, 31);
    const a = await h.ingestOwn('a.bin', data);
    const b = await h.ingestOwn('b.bin', data);
    // a.bin is moved away on the NAS; the hub has not read that yet, so its locations still count.
    await fs.rename(path.join(h.root, 'a.bin'), path.join(path.dirname(h.root), 'moved-away.bin'));
    // A conflict copy of b.bin's version, then a peer's new version of b.bin: b.bin's file stops holding the bytes.
    await h.store.commitFile('b.sync-conflict.bin', metaOf(b), { baseVersion: 0 });
    await commitFromPeer(h.store, 'b.bin', prngBytes(5_000, 32), b.version);
    await h.put('b.bin', prngBytes(5_000, 32)); // the root writer's write, replacing the old file
    assert.deepEqual(await readAll(await h.store.read('b.sync-conflict.bin')), data, 'the copy still reads: its bytes were copied out of b.bin, not left to a.bin');
    assert.equal(a.hash, b.hash);
  });
});

test("an ingest of bytes a root file is recorded as holding stores them itself: that file may have moved away unseen, and may be deleted there next", async () => {
  // Found by bench/soak-sync.ts (seed 31): on the NAS, d.bin was moved over c.txt, which a pi had just changed. The
  // hub kept c.txt's content (d.bin's bytes) as a conflict copy by ingesting it, and the ingest counted the bytes as
  // held by d.bin, whose move the hub had not read yet. Then c.txt was deleted on the NAS: the copy stood for bytes
  // nobody had, the hub could not write it, and the pi could not fetch it.
  await withHub(async (h) => {
    const data = prngBytes(120_000, 41);
    await h.ingestOwn('d.bin', data);
    await fs.rename(path.join(h.root, 'd.bin'), path.join(h.root, 'c.txt')); // not read by the hub yet
    const copy = (await h.store.ingest('c.sync-conflict.txt', fileSource(path.join(h.root, 'c.txt')), {}, { baseVersion: 0 })).file;
    await fs.rm(path.join(h.root, 'c.txt'));
    await h.store.delete('d.bin'); // the hub reads d.bin's move: gone
    assert.deepEqual(await readAll(await h.store.read(copy.path)), data, 'the copy reads: its bytes are in the store, not left to d.bin');
    assert.deepEqual((await h.store.fsck()).problems, []);
  });
});

test('a store remembers its backing folder: opened again without it, reads and fsck find the bytes', async () => {
  await withHub(async (h) => {
    const data = prngBytes(60_000, 10);
    await h.ingestOwn('k.bin', data);
    await h.store.close();
    h.store = await openStore({ dir: h.dir });
    assert.equal(h.store.backingDir, h.root);
    assert.deepEqual(await readAll(await h.store.read('k.bin')), data);
    assert.deepEqual((await h.store.fsck()).problems, []);
  });
});

test('a located ingest needs a backing folder', async () => {
  await withTempDir(async (d) => {
    const store = await openStore({ dir: d });
    try {
      await assert.rejects(store.ingest('a', source(Buffer.from('x')), {}, { located: true }), (err) => isStoreError(err, 'invalid_argument'));
    } finally {
      await store.close();
    }
  });
});

test("a chunk two root files hold: the row names one of them, reads fall back to the other when that one is edited, and the hint follows the files' versions", async () => {
  await withHub(async (h) => {
    const data = prngBytes(40_000, 11);
    const a = await h.ingestOwn('a.bin', data);
    await h.ingestOwn('b.bin', data);
    const first = a.chunks[0]!;
    const hintOf = async (hash: string): Promise<unknown> => {
      await h.store.close();
      const db = new ClassicLevel<string, string>(path.join(h.dir, 'index'), { valueEncoding: 'json' });
      try {
        return ((await db.sublevel<string, { a?: unknown }>('chunks', { valueEncoding: 'json' }).get(hash)) ?? {}).a;
      } finally {
        await db.close();
        h.store = await openStore({ dir: h.dir });
      }
    };
    // The first file that held the bytes is the hint.
    assert.deepEqual(await hintOf(first.hash), ['a.bin', 0]);
    // Input tried: the hinted file edited in place behind the store. The read must not fail nor serve a.bin's new
    // bytes: it comes, verified, from b.bin.
    const fd = await fs.open(path.join(h.root, 'a.bin'), 'r+');
    await fd.write(Buffer.from([data[5]! ^ 0xff]), 0, 1, 5);
    await fd.close();
    assert.deepEqual(await h.store.getChunk(first.hash), data.subarray(0, first.size));
    // a.bin's new version drops its old locations: the hint goes with it (fsck checks it against the locations).
    await h.store.ingest('a.bin', fileSource(path.join(h.root, 'a.bin')), {}, { located: true, baseVersion: 1 });
    assert.equal(await hintOf(first.hash), undefined);
    assert.deepEqual(await h.store.getChunk(first.hash), data.subarray(0, first.size));
    assert.deepEqual((await h.store.fsck()).problems, []);
    // A file that holds the bytes again becomes the hint.
    await h.ingestOwn('c.bin', data);
    assert.deepEqual(await hintOf(first.hash), ['c.bin', 0]);
    assert.deepEqual((await h.store.fsck()).problems, []);
  });
});

test('noteWritten without waiting for the unlinks: the chunk files still go, and the same bytes arriving meanwhile are not stored twice', async () => {
  await withHub(async (h) => {
    const data = prngBytes(200_000, 11);
    const rec = await commitFromPeer(h.store, 'f.bin', data, 0);
    assert.ok(rec.chunks.length >= 2);
    assert.equal(await h.chunkFiles(), new Set(rec.chunks.map((c) => c.hash)).size);
    await h.put('f.bin', data);
    assert.deepEqual(await h.store.noteWritten([{ path: 'f.bin', version: rec.version }], { awaitUnlinks: false }), [true]);
    // Another peer uploads the same bytes while the unlinks may still be queued: the root file holds them now.
    const again = rec.chunks[0]!;
    assert.equal(await h.store.putChunk(again.hash, data.subarray(0, again.size), { clean: true }), false, 'already held');
    await waitFor('the chunk files gone', async () => (await h.chunkFiles()) === 0);
    assert.deepEqual(await readAll(await h.store.read('f.bin')), data);
    assert.deepEqual((await h.store.fsck()).problems, []);
  });
});
