// What the store offers the sync layer: a stable index id, hotness, remote -> local once fetched, records under a dir.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { openStore } from '../../store/index.ts';
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
