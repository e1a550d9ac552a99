import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import fs from 'node:fs/promises';
import { Chunker, blake3, fileSource, isStoreError, openStore } from '../../store/index.ts';
import type { FileRecord } from '../../store/index.ts';
import path from 'node:path';
import { SMALL_CHUNKS, readAll, source, withStore, withTempDir } from './temp-store.ts';
import { decodeFile, encodeFile } from '../../store/records.ts';

const b3 = (d: Uint8Array): string => blake3().hash(d).toString('hex');
const sha = (d: Uint8Array): string => createHash('sha256').update(d).digest('hex');
const code = (c: string) => (err: unknown) => isStoreError(err) && err.code === c;

describe('store: ingest and read', () => {
  test('a file streamed in irregular pieces reads back byte-identical, with a complete record', async () => {
    await withStore({ chunkParams: SMALL_CHUNKS }, async (store) => {
      const data = randomBytes(1_500_000);
      const r = await store.ingest('photos/2026/a.jpg', source(data), { mtimeMs: 1_700_000_000_123, mode: 0o600 });
      const f = r.file;
      assert.equal(f.path, 'photos/2026/a.jpg');
      assert.equal(f.size, data.length);
      assert.equal(f.hash, b3(data));
      assert.equal(f.mtimeMs, 1_700_000_000_123);
      assert.equal(f.mode, 0o600);
      assert.equal(f.version, 1);
      assert.equal(f.state, 'local');
      assert.equal(f.deleted, false);
      assert.equal(f.chunks.reduce((a, c) => a + c.size, 0), data.length);
      assert.ok(f.chunks.length > 20, `expected many small chunks, got ${f.chunks.length}`);
      let off = 0;
      for (const c of f.chunks) {
        assert.equal(c.hash, b3(data.subarray(off, off + c.size)), 'each chunk is addressed by its own BLAKE3');
        off += c.size;
      }
      assert.equal(r.newBytes, data.length);
      assert.deepEqual(await store.stat('photos/2026/a.jpg'), f);
      assert.ok((await readAll(await store.read('photos/2026/a.jpg'))).equals(data));
    });
  });

  test('hashing an ingest in a worker or on the main thread gives identical records', async () => {
    const data = randomBytes(3_000_000);
    const records: FileRecord[] = [];
    for (const ingestInWorker of [true, false]) {
      await withStore({ chunkParams: SMALL_CHUNKS, ingestInWorker, workers: 1, writeConcurrency: 3 }, async (store) => {
        const { file } = await store.ingest('same', source(data));
        assert.ok((await readAll(await store.read('same'))).equals(data));
        records.push(file);
      });
    }
    const strip = (r: FileRecord) => ({ size: r.size, hash: r.hash, sha256: r.sha256, chunks: r.chunks });
    assert.deepEqual(strip(records[0]!), strip(records[1]!));
    assert.equal(records[0]!.hash, b3(data));
    assert.equal(records[0]!.sha256, sha(data), 'the SHA-256 taken in the ingest pass is node:crypto\'s');
  });

  test('a name given late is asked for after the bytes are stored; if it throws, nothing is committed or left behind', async () => {
    await withStore({ chunkParams: SMALL_CHUNKS }, async (store) => {
      const data = randomBytes(400_000);
      let asked = 0;
      const { file } = await store.ingest(async () => ((asked += 1), 'late/name.bin'), source(data));
      assert.equal(asked, 1);
      assert.equal(file.path, 'late/name.bin');
      assert.ok((await readAll(await store.read('late/name.bin'))).equals(data));
      const other = randomBytes(300_000);
      await assert.rejects(store.ingest(() => Promise.reject(new Error('forbidden target')), source(other)), /forbidden target/);
      await assert.rejects(store.ingest(() => '../escape', source(other)), code('invalid_name'));
      assert.equal(store.stats().files, 1, 'nothing else is visible');
      assert.equal((await store.gc()).orphanFiles, 0, 'and no chunk file was left');
      assert.equal(store.stats().storedBytes, data.length);
    });
  });

  test('rename re-points a file in one step: same chunks, no new bytes, a tombstone at the old name; refusals change nothing', async () => {
    await withStore({ chunkParams: SMALL_CHUNKS }, async (store) => {
      const data = randomBytes(300_000);
      const { file: orig } = await store.ingest('a/old.bin', source(data), { mtimeMs: 12345 });
      await store.pin('a/old.bin');
      const before = store.stats();
      const moved = await store.rename('a/old.bin', 'b/new.bin');
      assert.deepEqual([moved.hash, moved.sha256, moved.chunks, moved.mtimeMs, moved.state, moved.pinned], [orig.hash, orig.sha256, orig.chunks, 12345, 'local', true]);
      assert.equal(store.stats().storedBytes, before.storedBytes);
      assert.equal(store.stats().files, 1);
      assert.equal((await store.record('a/old.bin'))?.deleted, true);
      const feed: string[] = [];
      for await (const r of store.changesSince(before.seq)) feed.push(`${r.deleted ? '-' : '+'}${r.path}`);
      assert.deepEqual(feed.sort(), ['+b/new.bin', '-a/old.bin']);
      await store.ingest('c', source(Buffer.from('a file named c')));
      await assert.rejects(store.rename('b/new.bin', 'c/inside.bin'), code('path_conflict'));
      await assert.rejects(store.rename('nope', 'x'), code('not_found'));
      assert.ok((await readAll(await store.read('b/new.bin'))).equals(data), 'a refused rename left the file where it was');
      assert.deepEqual((await store.fsck()).problems, []);
    });
  });

  test('the SHA-256 of every ingest is recorded, kept by commitFile, and null where unknown', async () => {
    await withStore({ chunkParams: SMALL_CHUNKS }, async (store) => {
      const data = randomBytes(700_000);
      const { file } = await store.ingest('a.bin', source(data));
      assert.equal(file.sha256, sha(data));
      assert.equal((await store.stat('a.bin')).sha256, sha(data), 'persisted with the record');
      assert.equal((await store.ingest('empty', Readable.from([] as Buffer[]))).file.sha256, sha(Buffer.alloc(0)));
      // A version assembled from chunks (the sync path) keeps the SHA-256 its sender gave, or none.
      const meta = { size: file.size, mtimeMs: 5, mode: 0o644, hash: file.hash, chunks: file.chunks };
      assert.equal((await store.commitFile('copy.bin', { ...meta, sha256: file.sha256 })).sha256, sha(data));
      assert.equal((await store.commitFile('nosha.bin', meta)).sha256, null);
      await assert.rejects(store.commitFile('bad.bin', { ...meta, sha256: 'xyz' }), code('invalid_argument'));
      await assert.rejects(store.stat('bad.bin'), code('not_found'), 'a refused commit stores nothing');
      const tomb = await store.delete('a.bin');
      assert.equal(tomb.sha256, null, 'a tombstone has no content hash');
      // A record written before the field existed (no "x" key) reads as unknown.
      const old = encodeFile(file);
      delete old.x;
      assert.equal(decodeFile('a.bin', old).sha256, null);
      assert.equal(decodeFile('a.bin', encodeFile(file)).sha256, sha(data));
    });
  });

  test('an empty file is a valid file with no chunks', async () => {
    await withStore({}, async (store) => {
      const r = await store.ingest('empty', Readable.from([] as Buffer[]));
      assert.equal(r.file.size, 0);
      assert.deepEqual(r.file.chunks, []);
      assert.equal(r.file.hash, b3(Buffer.alloc(0)));
      assert.equal((await readAll(await store.read('empty'))).length, 0);
    });
  });

  test('range reads at, across and just around chunk boundaries return exactly the requested bytes', async () => {
    await withStore({ chunkParams: SMALL_CHUNKS }, async (store) => {
      const data = randomBytes(600_000);
      const { file } = await store.ingest('r.bin', source(data));
      const bounds: number[] = [];
      let pos = 0;
      for (const c of file.chunks) bounds.push((pos += c.size));
      const b1 = bounds[0]!;
      const b2 = bounds[1]!;
      const b5 = bounds[4]!;
      const cases: [number, number][] = [
        [0, b1], // exactly the first chunk
        [b1, b2 - b1], // exactly the second chunk
        [b1 - 1, 2], // one byte either side of a boundary
        [b1, 1], // first byte of a chunk
        [b1 - 1, 1], // last byte of a chunk
        [b1 - 10, b5 - b1 + 20], // spanning several chunks, starting and ending mid-chunk
        [0, data.length],
        [data.length - 1, 1],
        [data.length, 0],
        [12345, 0],
      ];
      for (const [offset, length] of cases) {
        const got = await readAll(await store.read('r.bin', { offset, length }));
        assert.ok(got.equals(data.subarray(offset, offset + length)), `range ${offset}+${length}`);
      }
      const tail = await readAll(await store.read('r.bin', { offset: b2 }));
      assert.ok(tail.equals(data.subarray(b2)), 'offset without length reads to the end');
      for (const bad of [{ offset: -1 }, { offset: data.length + 1 }, { offset: 10, length: data.length }, { offset: 1.5 }]) {
        await assert.rejects(store.read('r.bin', bad), code('invalid_argument'), JSON.stringify(bad));
      }
    });
  });

  test('a source that fails mid-stream leaves the previous version and no stray chunk files', async () => {
    await withStore({ chunkParams: SMALL_CHUNKS }, async (store) => {
      const v1 = randomBytes(300_000);
      await store.ingest('f', source(v1));
      const before = store.stats();
      async function* failing(): AsyncGenerator<Buffer> {
        yield randomBytes(500_000);
        throw new Error('client went away');
      }
      await assert.rejects(store.ingest('f', failing()), /client went away/);
      assert.ok((await readAll(await store.read('f'))).equals(v1));
      assert.deepEqual(store.stats(), before);
      const report = await store.fsck();
      assert.deepEqual(report.problems, []);
    });
  });

  test('a source of text instead of bytes is refused (invalid_argument) and stores nothing', async () => {
    await withStore({}, async (store) => {
      const text = Readable.from(['not', 'bytes'], { objectMode: true }) as AsyncIterable<Uint8Array>;
      await assert.rejects(store.ingest('t', text), code('invalid_argument'));
      assert.equal(store.stats().files, 0);
      assert.equal(store.stats().storedBytes, 0);
    });
  });

  test('fileSource reuses its buffers; ingest copies each piece before asking for the next', async () => {
    await withTempDir(async (root) => {
      const data = randomBytes(2_500_000);
      const file = path.join(root, 'src.bin');
      await fs.writeFile(file, data);
      const store = await openStore({ dir: path.join(root, 's'), chunkParams: SMALL_CHUNKS });
      try {
        await store.ingest('f', fileSource(file, 100_000));
        assert.ok((await readAll(await store.read('f'))).equals(data));
      } finally {
        await store.close();
      }
    });
  });

  test('overwriting bumps the version, frees chunks only the old version used, and keeps one feed entry per path', async () => {
    await withStore({ chunkParams: SMALL_CHUNKS }, async (store) => {
      const v1 = randomBytes(400_000);
      const v2 = randomBytes(200_000);
      const r1 = await store.ingest('doc', source(v1));
      const r2 = await store.ingest('doc', source(v2));
      assert.equal(r2.file.version, 2);
      assert.ok(r2.file.seq > r1.file.seq);
      assert.equal(store.stats().storedBytes, v2.length, 'the old version\'s bytes are gone');
      assert.deepEqual(await store.hasChunks(r1.file.chunks.map((c) => c.hash)), []);
      const feed: FileRecord[] = [];
      for await (const r of store.changesSince(0)) feed.push(r);
      assert.deepEqual(feed.map((r) => [r.path, r.version]), [['doc', 2]]);
      assert.deepEqual((await store.fsck()).problems, []);
    });
  });

  test('identical files share chunks; concurrent ingests of the same bytes stay consistent', async () => {
    await withStore({ chunkParams: SMALL_CHUNKS }, async (store) => {
      const data = randomBytes(800_000);
      const results = await Promise.all(['x/1', 'x/2', 'x/3', 'x/4'].map((p) => store.ingest(p, source(data))));
      assert.equal(new Set(results.map((r) => r.file.hash)).size, 1);
      assert.equal(results.reduce((a, r) => a + r.newBytes, 0), data.length, 'every chunk written exactly once');
      assert.equal(store.stats().storedBytes, data.length);
      assert.equal(store.stats().logicalBytes, 4 * data.length);
      await store.delete('x/1');
      await store.delete('x/2');
      await store.delete('x/3');
      assert.ok((await readAll(await store.read('x/4'))).equals(data));
      assert.deepEqual((await store.fsck()).problems, []);
    });
  });
});

describe('store: names, listing, deletes, versions', () => {
  test('listing shows immediate children, including names that sort around "/"', async () => {
    await withStore({}, async (store) => {
      for (const p of ['a/x', 'a/sub/deep/1', 'a/sub/2', 'a!b', 'a.b', 'a/sub!', 'b', 'a/sub.txt']) {
        await store.ingest(p, Readable.from([Buffer.from(p)]));
      }
      const root = await store.list();
      assert.deepEqual(root.map((e) => [e.name, e.type]), [['a!b', 'file'], ['a.b', 'file'], ['a', 'dir'], ['b', 'file']]);
      const a = await store.list('a');
      assert.deepEqual(a.map((e) => [e.name, e.type]), [['sub!', 'file'], ['sub.txt', 'file'], ['sub', 'dir'], ['x', 'file']]);
      assert.deepEqual((await store.list('a/sub/')).map((e) => e.name), ['2', 'deep']);
      await assert.rejects(store.list('nope'), code('not_found'));
      assert.deepEqual((await store.list('b')).map((e) => e.path), ['b'], 'listing a file shows that file');
    });
  });

  test('bad names are rejected by every operation and nothing is stored', async () => {
    await withStore({}, async (store) => {
      const bad = ['', '/abs', '../up', 'a/../b', 'a/./b', 'a//b', 'a/', 'nul\0byte', 'line\nbreak', 'back\\slash', 'C:/x', '.', '..'];
      for (const name of bad) {
        await assert.rejects(store.ingest(name, Readable.from([Buffer.from('x')])), code('invalid_name'), JSON.stringify(name));
        await assert.rejects(store.read(name), code('invalid_name'), JSON.stringify(name));
        await assert.rejects(store.delete(name), code('invalid_name'), JSON.stringify(name));
      }
      await assert.rejects(store.list('../x'), code('invalid_name'));
      assert.equal(store.stats().files, 0);
      assert.equal(store.stats().seq, 0);
    });
  });

  test('delete leaves a tombstone in the change feed; re-creating continues the version counter', async () => {
    await withStore({}, async (store) => {
      await store.ingest('t', Readable.from([Buffer.from('one')]));
      const tomb = await store.delete('t');
      assert.equal(tomb.deleted, true);
      assert.equal(tomb.version, 2);
      await assert.rejects(store.stat('t'), code('not_found'));
      await assert.rejects(store.read('t'), code('not_found'));
      await assert.rejects(store.delete('t'), code('not_found'));
      assert.deepEqual(await store.list(), []);
      assert.equal((await store.record('t'))?.deleted, true);
      const feed: FileRecord[] = [];
      for await (const r of store.changesSince(0)) feed.push(r);
      assert.deepEqual(feed.map((r) => [r.path, r.deleted, r.version]), [['t', true, 2]]);
      const again = await store.ingest('t', Readable.from([Buffer.from('two')]), {}, { baseVersion: 0 });
      assert.equal(again.file.version, 3);
      assert.equal(store.stats().storedBytes, 3);
    });
  });

  test('names form a tree: no file below a file, no file where a directory is; nothing changes on refusal', async () => {
    await withStore({}, async (store) => {
      await store.ingest('a/b', Readable.from([Buffer.from('file')]));
      const before = store.stats();
      await assert.rejects(store.ingest('a/b/c', Readable.from([Buffer.from('x')])), code('path_conflict'));
      await assert.rejects(store.ingest('a', Readable.from([Buffer.from('x')])), code('path_conflict'));
      assert.deepEqual(store.stats(), before);
      assert.deepEqual((await store.fsck()).problems, []);
      await store.delete('a/b');
      await store.ingest('a/b/c', Readable.from([Buffer.from('now a directory')]));
      assert.deepEqual((await store.list('a')).map((e) => `${e.type}:${e.name}`), ['dir:b']);
      // a/b was a directory until now: with nothing left below it, it may be a file again.
      await store.delete('a/b/c');
      await store.ingest('a/b', Readable.from([Buffer.from('a file again')]));
      assert.equal((await store.record('a/b'))?.deleted, false);
    });
  });

  test('the tree check after a reopen: the directories of files stored earlier are still directories', async () => {
    await withTempDir(async (root) => {
      const dir = path.join(root, 'store');
      let store = await openStore({ dir });
      await store.ingest('docs/2026/report.txt', Readable.from([Buffer.from('r')]));
      await store.close();
      store = await openStore({ dir });
      try {
        await assert.rejects(store.ingest('docs/2026', Readable.from([Buffer.from('x')])), code('path_conflict'));
        await assert.rejects(store.ingest('docs', Readable.from([Buffer.from('x')])), code('path_conflict'));
        const batch = await store.commitFiles([{ path: 'docs', meta: (await store.record('docs/2026/report.txt'))!, baseVersion: 0 }]);
        assert.ok(isStoreError(batch[0], 'path_conflict'), 'the batch path refuses it too');
        await store.ingest('docs/2027', Readable.from([Buffer.from('a file next to the directory')]));
      } finally {
        await store.close();
      }
    });
  });

  test('a stale baseVersion is a conflict and changes nothing', async () => {
    await withStore({}, async (store) => {
      await store.ingest('c', Readable.from([Buffer.from('v1')]));
      await store.ingest('c', Readable.from([Buffer.from('v2')]), {}, { baseVersion: 1 });
      const before = store.stats();
      await assert.rejects(store.ingest('c', Readable.from([Buffer.from('v3')]), {}, { baseVersion: 1 }), (err: unknown) => {
        assert.ok(isStoreError(err, 'conflict'));
        assert.equal(err.details?.currentVersion, 2);
        return true;
      });
      await assert.rejects(store.ingest('new', Readable.from([Buffer.from('x')]), {}, { baseVersion: 4 }), code('conflict'));
      await assert.rejects(store.delete('c', { baseVersion: 1 }), code('conflict'));
      assert.equal((await readAll(await store.read('c'))).toString(), 'v2');
      assert.deepEqual(store.stats(), before);
      assert.deepEqual((await store.fsck()).problems, []);
    });
  });
});

describe('store: chunk API and change feed (what the sync layer uses)', () => {
  test('putChunk verifies the hash, rejects a mismatch, and getChunk/hasChunks see what was stored', async () => {
    await withStore({}, async (store) => {
      const bytes = randomBytes(70_000);
      const h = b3(bytes);
      const other = b3(randomBytes(10));
      await assert.rejects(store.putChunk(h, Buffer.concat([bytes, Buffer.from([1])])), code('hash_mismatch'));
      await assert.rejects(store.putChunk('xyz', bytes), code('invalid_argument'));
      assert.deepEqual(await store.hasChunks([h, other]), []);
      assert.equal(store.stats().storedBytes, 0);
      assert.equal(await store.putChunk(h, bytes), true);
      assert.equal(await store.putChunk(h, bytes), false, 'second put is a no-op');
      assert.deepEqual(await store.hasChunks([other, h]), [h]);
      assert.ok((await store.getChunk(h)).equals(bytes));
      await assert.rejects(store.getChunk(other), code('not_found'));
      assert.equal(store.stats().dirtyBytes, bytes.length, 'chunks from a client are dirty by default');
      assert.deepEqual((await store.fsck()).problems, []);
    });
  });

  test('commitFile makes an assembled file visible only with all chunks present and the right whole-file hash', async () => {
    await withStore({ chunkParams: SMALL_CHUNKS }, async (src) => {
      await withStore({ chunkParams: SMALL_CHUNKS }, async (dst) => {
        const data = randomBytes(300_000);
        const { file } = await src.ingest('f.bin', source(data));
        const meta = { size: file.size, mtimeMs: file.mtimeMs, mode: file.mode, hash: file.hash, chunks: file.chunks };
        await assert.rejects(dst.commitFile('f.bin', meta), (err: unknown) => {
          assert.ok(isStoreError(err, 'missing_chunks'));
          assert.equal((err.details?.missing as string[]).length, new Set(file.chunks.map((c) => c.hash)).size);
          return true;
        });
        for (const c of file.chunks) await dst.putChunk(c.hash, await src.getChunk(c.hash), { clean: true });
        await assert.rejects(dst.commitFile('f.bin', { ...meta, hash: b3(Buffer.from('other')) }), code('hash_mismatch'));
        // A one-chunk file is checked without reading its chunk back (its whole hash is the chunk's): a wrong whole
        // hash is still refused, alone and in a batch.
        const small = randomBytes(3000);
        const one = (await src.ingest('one.bin', source(small))).file;
        assert.equal(one.chunks.length, 1);
        await dst.putChunk(one.chunks[0]!.hash, small, { clean: true });
        const oneMeta = { size: one.size, mtimeMs: one.mtimeMs, mode: one.mode, hash: b3(Buffer.from('other')), chunks: one.chunks };
        await assert.rejects(dst.commitFile('one.bin', oneMeta), code('hash_mismatch'));
        const [batched] = await dst.commitFiles([{ path: 'one.bin', meta: oneMeta, baseVersion: 0 }]);
        assert.ok(isStoreError(batched, 'hash_mismatch'));
        assert.equal(one.hash, one.chunks[0]!.hash, 'the whole hash of a one-chunk file is its chunk hash');
        await assert.rejects(dst.commitFile('f.bin', { ...meta, size: meta.size + 1 }), code('invalid_argument'));
        await assert.rejects(dst.stat('f.bin'), code('not_found'));
        const rec = await dst.commitFile('f.bin', meta, { baseVersion: 0 });
        assert.equal(rec.state, 'local');
        assert.ok((await readAll(await dst.read('f.bin'))).equals(data));
        await assert.rejects(dst.commitFile('f.bin', meta, { baseVersion: 0 }), code('conflict'));
        assert.equal(dst.stats().dirtyBytes, 0, 'chunks fetched from the hub are clean');
        assert.deepEqual((await dst.fsck()).problems, []);
      });
    });
  });

  test('allowRemote records a hub file as metadata only; it reads once its chunks arrive', async () => {
    await withStore({ chunkParams: SMALL_CHUNKS }, async (store) => {
      const data = randomBytes(200_000);
      const hashes: { hash: string; size: number }[] = [];
      let start = 0;
      // chunk it the way the hub would
      const c2 = new Chunker(SMALL_CHUNKS);
      const cuts = c2.push(data);
      const last = c2.finish();
      for (const cut of cuts) {
        hashes.push({ hash: b3(data.subarray(start, cut)), size: cut - start });
        start = cut;
      }
      if (last) hashes.push({ hash: b3(data.subarray(start)), size: last });
      const meta = { size: data.length, mtimeMs: 1, mode: 0o644, hash: b3(data), chunks: hashes };
      const rec = await store.commitFile('hub/file', meta, { allowRemote: true });
      assert.equal(rec.state, 'remote');
      assert.equal(store.stats().storedBytes, 0);
      assert.equal((await store.missingChunks('hub/file')).length, hashes.length);
      await assert.rejects(store.read('hub/file'), code('not_local'));
      let off = 0;
      for (const c of hashes) {
        await store.putChunk(c.hash, data.subarray(off, off + c.size), { clean: true });
        off += c.size;
      }
      assert.deepEqual(await store.missingChunks('hub/file'), []);
      assert.ok((await readAll(await store.read('hub/file'))).equals(data));
      assert.equal((await store.stat('hub/file')).state, 'local', 'reading a complete remote file makes it local');
      assert.deepEqual((await store.fsck()).problems, []);
    });
  });

  test('followChanges replays the backlog, then follows live commits, and stops on abort', async () => {
    await withStore({}, async (store) => {
      await store.ingest('one', Readable.from([Buffer.from('1')]));
      const ac = new AbortController();
      const seen: string[] = [];
      const follower = (async () => {
        for await (const r of store.followChanges(0, { signal: ac.signal })) {
          seen.push(`${r.path}@${r.version}${r.deleted ? '-' : ''}`);
          if (r.path === 'three') ac.abort();
        }
      })();
      await store.ingest('two', Readable.from([Buffer.from('2')]));
      await store.delete('one');
      await store.ingest('three', Readable.from([Buffer.from('3')]));
      await follower;
      // 'one@1' may have been superseded by its tombstone before the follower read it; every delivered seq is newer.
      assert.deepEqual(seen.filter((s) => s !== 'one@1'), ['two@1', 'one@2-', 'three@1']);
      const afterSeq: number[] = [];
      for await (const r of store.changesSince(1)) afterSeq.push(r.seq);
      assert.deepEqual(afterSeq, [2, 3, 4]);
    });
  });

  test('followChanges ends when the store closes instead of hanging', { timeout: 20_000 }, async () => {
    await withTempDir(async (root) => {
      const store = await openStore({ dir: path.join(root, 's') });
      await store.ingest('x', Readable.from([Buffer.from('x')]));
      const seen: number[] = [];
      const follower = (async () => {
        for await (const r of store.followChanges(0)) seen.push(r.seq);
      })();
      await store.ingest('y', Readable.from([Buffer.from('y')]));
      await store.close();
      await follower;
      assert.deepEqual(seen.filter((s) => s <= 2), seen, 'only committed changes were delivered');
    });
  });

  test('markClean empties the dirty set; dirtyChunks lists what still needs uploading', async () => {
    await withStore({ chunkParams: SMALL_CHUNKS }, async (store) => {
      const { file } = await store.ingest('d', source(randomBytes(100_000)));
      const dirty: string[] = [];
      for await (const c of store.dirtyChunks()) dirty.push(c.hash);
      assert.deepEqual(dirty.sort(), [...new Set(file.chunks.map((c) => c.hash))].sort());
      const half = dirty.slice(0, Math.floor(dirty.length / 2));
      assert.equal(await store.markClean(half), half.length);
      assert.equal(await store.markClean(half), 0);
      assert.equal(store.stats().dirtyChunks, dirty.length - half.length);
      assert.deepEqual((await store.fsck()).problems, []);
    });
  });
});
