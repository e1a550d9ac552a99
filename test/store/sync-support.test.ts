// What the store offers the sync layer: a stable index id, hotness, remote -> local once fetched, records under a dir.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { blake3, isStoreError, openStore, type CommitMeta, type FileRecord, type Store, type StoreError } from '../../store/index.ts';
import { readAll, source, withTempDir, SMALL_CHUNKS } from './temp-store.ts';

test('the index id is 16 hex characters, kept across reopen, different for another store', async () => {
  await withTempDir(async (root) => {
    const a = await openStore({ dir: path.join(root, 'a') });
    const id = a.indexId;
    await a.close();
    const again = await openStore({ dir: path.join(root, 'a') });
    assert.match(id, /^[0-9a-f]{16}$/);
    assert.equal(again.indexId, id);
    await again.close();
    const b = await openStore({ dir: path.join(root, 'b') });
    assert.notEqual(b.indexId, id);
    await b.close();
  });
});

test('a remote file becomes local once its chunks are put, without a new version; heat and filesUnder', async () => {
  await withTempDir(async (root) => {
    let now = 1_000_000;
    const hub = await openStore({ dir: path.join(root, 'hub'), chunkParams: SMALL_CHUNKS });
    const pi = await openStore({ dir: path.join(root, 'pi'), chunkParams: SMALL_CHUNKS, now: () => now });
    try {
      const data = Buffer.alloc(100_000, 9);
      const { file } = await hub.ingest('d/x.bin', source(data));
      const rec = await pi.commitFile('d/x.bin', file, { allowRemote: true });
      assert.equal(rec.state, 'remote');
      assert.equal((await pi.promoteIfComplete('d/x.bin'))?.state, 'remote', 'incomplete stays remote');
      for (const c of file.chunks) await pi.putChunk(c.hash, await hub.getChunk(c.hash), { clean: true });
      const local = await pi.promoteIfComplete('d/x.bin');
      assert.equal(local?.state, 'local');
      assert.equal(local?.version, rec.version);
      assert.equal(pi.seq, rec.seq, 'no new change-feed entry');
      assert.ok((await readAll(await pi.read('d/x.bin'))).equals(data));
      const h0 = await pi.heat('d/x.bin');
      assert.ok(h0 >= 1, 'the read counted');
      now += 7 * 24 * 3600 * 1000;
      assert.equal(await pi.heat('d/x.bin'), h0 / 2, 'a week later it has halved');
      await pi.ingest('d/e/y.txt', source(Buffer.from('y')));
      await pi.ingest('other.txt', source(Buffer.from('o')));
      const under = [];
      for await (const r of pi.filesUnder('d')) under.push(r.path);
      assert.deepEqual(under, ['d/e/y.txt', 'd/x.bin']);
      const all = [];
      for await (const r of pi.filesUnder('')) all.push(r.path);
      assert.equal(all.length, 3);
    } finally {
      await hub.close();
      await pi.close();
    }
  });
});

test('promoteAllComplete: every complete file of a fetch becomes local in one transaction, shared chunks counted once per file; the rest stays as it was', async () => {
  await withTempDir(async (root) => {
    const hub = await openStore({ dir: path.join(root, 'hub'), chunkParams: SMALL_CHUNKS });
    const pi = await openStore({ dir: path.join(root, 'pi'), chunkParams: SMALL_CHUNKS });
    try {
      const same = Buffer.alloc(50_000, 3); // a.bin and b.bin share every chunk
      const files = [
        (await hub.ingest('a.bin', source(same))).file,
        (await hub.ingest('b.bin', source(same))).file,
        (await hub.ingest('c.bin', source(Buffer.alloc(60_000, 4)))).file,
        (await hub.ingest('d/e.bin', source(Buffer.alloc(70_000, 5)))).file,
      ];
      for (const f of files) await pi.commitFile(f.path, f, { allowRemote: true });
      for (const f of [files[0]!, files[3]!]) for (const c of f.chunks) await pi.putChunk(c.hash, await hub.getChunk(c.hash), { clean: true });
      await pi.ingest('local.txt', source(Buffer.from('already here')));
      const seq = pi.seq;
      const out = await pi.promoteAllComplete(['a.bin', 'b.bin', 'c.bin', 'd/e.bin', 'local.txt', 'nothing.bin']);
      assert.deepEqual(out.map((r) => r?.state), ['local', 'local', 'remote', 'local', 'local', undefined]);
      assert.equal(pi.seq, seq, 'no new change-feed entries');
      const st = pi.stats();
      assert.equal(st.localFiles, 4);
      assert.equal(st.localBytes, 50_000 * 2 + 70_000 + Buffer.byteLength('already here'));
      assert.deepEqual((await pi.fsck()).problems, [], 'chunk reference counts match the records');
      assert.ok((await readAll(await pi.read('b.bin'))).equals(same));
      await assert.rejects(pi.promoteAllComplete(['ok.bin', '../escape']), (err: { code?: string }) => err.code === 'invalid_name');
    } finally {
      await hub.close();
      await pi.close();
    }
  });
});

/** Two stores: `src` makes versions (meta() ingests and returns their commit metadata), `dst` commits them. */
async function withSrcDst(fn: (src: Store, dst: Store, meta: (name: string, data: Buffer) => Promise<CommitMeta>) => Promise<void>): Promise<void> {
  await withTempDir(async (root) => {
    const src = await openStore({ dir: path.join(root, 'src'), chunkParams: SMALL_CHUNKS });
    const dst = await openStore({ dir: path.join(root, 'dst'), chunkParams: SMALL_CHUNKS });
    const meta = async (name: string, data: Buffer) => {
      const { file } = await src.ingest(name, source(data));
      return { size: file.size, mtimeMs: file.mtimeMs, mode: file.mode, chunks: file.chunks, hash: file.hash };
    };
    try {
      await fn(src, dst, meta);
    } finally {
      await src.close();
      await dst.close();
    }
  });
}

test('commitFiles: many versions in one transaction, each item with its own outcome; failed items leave nothing', async () => {
  await withSrcDst(async (src, dst, meta) => {
    const put = async (m: { chunks: { hash: string }[] }) => {
      for (const c of m.chunks) await dst.putChunk(c.hash, await src.getChunk(c.hash));
    };
    const a = await meta('a.bin', Buffer.alloc(50_000, 1));
    const b = await meta('b.bin', Buffer.alloc(30_000, 2));
    const missing = await meta('m.bin', Buffer.alloc(20_000, 3));
    const dir = await meta('d', Buffer.alloc(10, 4));
    const under = await meta('dx', Buffer.alloc(10, 5));
    for (const m of [a, b, dir, under]) await put(m);
    await dst.commitFile('b.bin', b, { baseVersion: 0 }); // b exists already: a base of 0 is stale now
    await dst.commitFile('e/inner', under, { baseVersion: 0 }); // e is a directory already: no file e
    const seqBefore = dst.seq;
    const out = await dst.commitFiles([
      { path: 'a.bin', meta: a, baseVersion: 0 },
      { path: 'b.bin', meta: b, baseVersion: 0 },
      { path: 'b2.bin', meta: { ...b, hash: a.hash }, baseVersion: 0 },
      { path: 'm.bin', meta: missing, baseVersion: 0 },
      { path: 'd', meta: dir, baseVersion: 0 },
      { path: 'd/x', meta: under, baseVersion: 0 },
      { path: '../up', meta: a, baseVersion: 0 },
      { path: 'a.bin', meta: a, baseVersion: 0 },
      { path: 'e', meta: dir, baseVersion: 0 },
    ]);
    const codes = out.map((o) => (o instanceof Error ? (o as { code?: string }).code : 'ok'));
    assert.deepEqual(codes, ['ok', 'conflict', 'hash_mismatch', 'missing_chunks', 'ok', 'path_conflict', 'invalid_name', 'invalid_argument', 'path_conflict']);
    assert.match((out[8] as Error).message, /e: it is a directory \(e\/inner exists\)/);
    assert.equal(dst.seq, seqBefore + 2, 'exactly the two good items became versions');
    assert.equal((await dst.record('a.bin'))?.state, 'local');
    for (const p of ['b2.bin', 'm.bin', 'd/x']) assert.equal(await dst.record(p), undefined, p);
    assert.ok((await readAll(await dst.read('a.bin'))).equals(Buffer.alloc(50_000, 1)));
  });
});

test('commitFiles with allowRemote: incomplete items become remote versions (pinned when asked), complete ones local and still checked', async () => {
  await withSrcDst(async (src, dst, meta) => {
    const here = await meta('here.bin', Buffer.alloc(40_000, 1));
    for (const c of here.chunks) await dst.putChunk(c.hash, await src.getChunk(c.hash), { clean: true });
    const away = await meta('away.bin', Buffer.alloc(50_000, 2));
    const wrong = { ...here, hash: away.hash }; // complete, but its whole-file hash is another file's
    const out = await dst.commitFiles(
      [
        { path: 'here.bin', meta: here, baseVersion: 0 },
        { path: 'away.bin', meta: away, baseVersion: 0, pin: true },
        { path: 'wrong.bin', meta: wrong, baseVersion: 0 },
      ],
      { allowRemote: true },
    );
    const [h, a, w] = out as [FileRecord, FileRecord, StoreError];
    assert.deepEqual([h.state, h.pinned], ['local', false]);
    assert.deepEqual([a.state, a.pinned], ['remote', true]);
    assert.ok(isStoreError(w, 'hash_mismatch'), String(w));
    assert.equal(await dst.record('wrong.bin'), undefined);
    const st = dst.stats();
    assert.deepEqual([st.files, st.localFiles], [2, 1]);
    assert.deepEqual((await dst.fsck()).problems, []);
    // Without allowRemote the incomplete one is refused, as before.
    const [refused] = await dst.commitFiles([{ path: 'away2.bin', meta: away, baseVersion: 0 }]);
    assert.ok(isStoreError(refused, 'missing_chunks'), String(refused));
  });
});

test('checkChunk: a check counts only for the hash it matched and only once; wrong or since-changed bytes are still refused', async () => {
  await withTempDir(async (root) => {
    const store = await openStore({ dir: path.join(root, 's') });
    try {
      const good = Buffer.alloc(50_000, 1);
      const other = Buffer.alloc(50_000, 2);
      const goodHash = blake3().hash(good).toString('hex');
      const otherHash = blake3().hash(other).toString('hex');
      assert.equal(await store.checkChunk(goodHash, good), true);
      assert.equal(await store.checkChunk(otherHash, good), false, 'wrong bytes for the hash');
      // The buffer checked for goodHash, offered under another hash, is hashed again and refused.
      assert.deepEqual(await store.putChunks([{ hash: otherHash, data: good }]), ['rejected']);
      assert.deepEqual(await store.hasChunks([otherHash]), []);
      // A checked buffer changed afterwards (a caller reusing it) is hashed again at the next put: the check is used once.
      assert.equal(await store.checkChunk(goodHash, good), true);
      assert.deepEqual(await store.putChunks([{ hash: goodHash, data: good }]), ['stored']);
      other.copy(good);
      assert.deepEqual(await store.putChunks([{ hash: goodHash, data: good }]), ['rejected']);
      assert.deepEqual(await store.getChunk(goodHash), Buffer.alloc(50_000, 1));
    } finally {
      await store.close();
    }
  });
});
