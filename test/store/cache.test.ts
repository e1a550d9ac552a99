import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { isStoreError, openStore } from '../../store/index.ts';
import type { FileRecord, Store } from '../../store/index.ts';
import { bumpHeat, decayedCount, hotKey, HALF_LIFE_MS } from '../../store/cache-policy.ts';
import { SMALL_CHUNKS, readAll, source, withStore, withTempDir } from './temp-store.ts';

const DAY = 24 * 3600 * 1000;
const KB = 1000;

function clock(start = 1_800_000_000_000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => void (t += ms) };
}

async function cleanAll(store: Store): Promise<void> {
  const hashes: string[] = [];
  for await (const c of store.dirtyChunks()) hashes.push(c.hash);
  await store.markClean(hashes);
}

describe('hotness', () => {
  test('the decayed counter halves every half-life and each access adds one', () => {
    const h = bumpHeat(bumpHeat(undefined, 0), 0);
    assert.equal(decayedCount(h, 0), 2);
    assert.ok(Math.abs(decayedCount(h, HALF_LIFE_MS) - 1) < 1e-9);
    assert.ok(Math.abs(bumpHeat(h, 2 * HALF_LIFE_MS).c - 1.5) < 1e-9);
  });

  test('a read counts as an access, one opened with touch: false (the hub copying a file out) does not', async () => {
    await withStore({ chunkParams: SMALL_CHUNKS, now: clock().now }, async (store) => {
      const data = randomBytes(50 * KB);
      await store.ingest('f', source(data));
      const before = await store.heat('f');
      const quiet = await store.openRead('f', undefined, { touch: false });
      assert.deepEqual(await readAll(quiet.stream), data);
      assert.equal(await store.heat('f'), before);
      await readAll(await store.read('f'));
      assert.ok((await store.heat('f')) > before);
    });
  });

  test('the stored sort key orders files like their current hotness, whenever it is evaluated', () => {
    const heats = Array.from({ length: 200 }, (_, i) => {
      let h = bumpHeat(undefined, Math.random() * 60 * DAY);
      for (let k = Math.floor(Math.random() * 20); k > 0; k--) h = bumpHeat(h, h.t + Math.random() * 3 * DAY);
      return { h, path: `f${i}` };
    });
    const later = 200 * DAY;
    const byKey = [...heats].sort((x, y) => (hotKey(x.h, x.path) < hotKey(y.h, y.path) ? -1 : 1)).map((x) => x.path);
    const byNow = [...heats].sort((x, y) => decayedCount(x.h, later) - decayedCount(y.h, later)).map((x) => x.path);
    assert.deepEqual(byKey, byNow);
  });
});

describe('eviction', () => {
  test('evicts clean files coldest first (count and recency); evicted files keep their metadata as remote', async () => {
    const c = clock();
    await withStore({ chunkParams: SMALL_CHUNKS, cacheMaxBytes: 1000 * KB, now: c.now }, async (store) => {
      const data: Record<string, Buffer> = {};
      for (const name of ['f1', 'f2', 'f3', 'f4']) {
        data[name] = randomBytes(150 * KB);
        await store.ingest(name, source(data[name]!));
      }
      await cleanAll(store);
      const readN = async (name: string, n: number): Promise<void> => {
        for (let i = 0; i < n; i++) await readAll(await store.read(name));
      };
      await readN('f1', 5); // popular long ago
      c.advance(9 * DAY);
      await readN('f3', 3); // fairly popular, recent
      c.advance(1 * DAY);
      await readN('f2', 1); // touched once, just now
      // Hotness now: f4 0.37 (only its ingest, 10 days ago) < f2 1.37 < f1 2.2 < f3 3.1
      const evicted: string[] = [];
      store.on('evict', (r: FileRecord) => void evicted.push(r.path));
      const result = await store.evict(300 * KB);
      assert.deepEqual(evicted, ['f4', 'f2']);
      assert.equal(result.files, 2);
      assert.equal(store.stats().storedBytes, 300 * KB);
      for (const name of ['f4', 'f2']) {
        const rec = await store.stat(name);
        assert.equal(rec.state, 'remote');
        assert.equal(rec.size, 150 * KB);
        await assert.rejects(store.read(name), (e: unknown) => isStoreError(e, 'not_local'));
      }
      assert.deepEqual((await store.list()).map((e) => `${e.name}:${e.state}`), ['f1:local', 'f2:remote', 'f3:local', 'f4:remote']);
      assert.ok((await readAll(await store.read('f3'))).equals(data.f3!));
      // Chunks fetched back (as the sync layer would) make the file local again.
      const rec = await store.stat('f4');
      let off = 0;
      for (const ch of rec.chunks) {
        await store.putChunk(ch.hash, data.f4!.subarray(off, off + ch.size), { clean: true });
        off += ch.size;
      }
      assert.ok((await readAll(await store.read('f4'))).equals(data.f4!));
      assert.equal((await store.stat('f4')).state, 'local');
      assert.deepEqual((await store.fsck()).problems, []);
    });
  });

  test('crossing the high-water mark during ingest evicts the coldest clean file first, down to the low-water mark', async () => {
    const c = clock();
    await withStore({ chunkParams: SMALL_CHUNKS, cacheMaxBytes: 1000 * KB, now: c.now }, async (store) => {
      for (const name of ['old', 'warm', 'hot']) {
        await store.ingest(name, source(randomBytes(200 * KB)));
        c.advance(DAY);
      }
      for (let i = 0; i < 3; i++) await readAll(await store.read('hot'));
      await cleanAll(store);
      const evicted: string[] = [];
      store.on('evict', (r: FileRecord) => void evicted.push(r.path));
      await store.ingest('new', source(randomBytes(300 * KB)));
      assert.deepEqual(evicted, ['old', 'warm'].slice(0, evicted.length));
      assert.ok(evicted.length >= 1);
      const st = store.stats();
      assert.ok(st.storedBytes <= 0.85 * 1000 * KB, `stored ${st.storedBytes} after eviction`);
      assert.equal((await store.stat('hot')).state, 'local');
      assert.equal((await store.stat('new')).state, 'local');
    });
  });

  test('dirty (unsynced) bytes are never evicted: a full budget fails the ingest with cache_full and loses nothing', async () => {
    await withStore({ chunkParams: SMALL_CHUNKS, cacheMaxBytes: 1000 * KB }, async (store) => {
      const d1 = randomBytes(600 * KB);
      await store.ingest('d1', source(d1));
      const before = store.stats();
      const d2 = randomBytes(500 * KB);
      await assert.rejects(store.ingest('d2', source(d2)), (err: unknown) => {
        assert.ok(isStoreError(err, 'cache_full'));
        assert.match(err.message, /not yet synced/);
        return true;
      });
      assert.ok((await readAll(await store.read('d1'))).equals(d1));
      await assert.rejects(store.stat('d2'), (e: unknown) => isStoreError(e, 'not_found'));
      assert.deepEqual(store.stats(), before);
      assert.deepEqual((await store.fsck()).problems, []);
      // Once the hub has d1's chunks, the same ingest goes through by evicting d1 (which keeps its record).
      await cleanAll(store);
      await store.ingest('d2', source(d2));
      assert.equal((await store.stat('d1')).state, 'remote');
      assert.ok((await readAll(await store.read('d2'))).equals(d2));
      assert.deepEqual((await store.fsck()).problems, []);
    });
  });

  test('pinned files are never evicted; unpinning makes them candidates again', async () => {
    await withStore({ chunkParams: SMALL_CHUNKS, cacheMaxBytes: 1000 * KB }, async (store) => {
      await store.ingest('keep', source(randomBytes(100 * KB)));
      await store.ingest('other', source(randomBytes(100 * KB)));
      await cleanAll(store);
      await store.pin('keep');
      await store.evict(0);
      assert.equal((await store.stat('keep')).state, 'local');
      assert.equal((await store.stat('other')).state, 'remote');
      assert.equal(store.stats().storedBytes, 100 * KB);
      await store.pin('keep', false);
      await store.evict(0);
      assert.equal((await store.stat('keep')).state, 'remote');
      assert.equal(store.stats().storedBytes, 0);
      assert.deepEqual((await store.fsck()).problems, []);
    });
  });

  test('chunks shared with a file that stays local are not deleted when another file is evicted', async () => {
    await withStore({ chunkParams: SMALL_CHUNKS, cacheMaxBytes: 10_000 * KB }, async (store) => {
      const shared = randomBytes(200 * KB);
      await store.ingest('a', source(shared));
      await store.ingest('b', source(shared));
      await cleanAll(store);
      await store.pin('b');
      await store.evict(0);
      assert.equal((await store.stat('a')).state, 'remote');
      assert.equal(store.stats().storedBytes, shared.length, 'b still needs every chunk');
      assert.ok((await readAll(await store.read('b'))).equals(shared));
      assert.ok((await readAll(await store.read('a'))).equals(shared), 'a is complete again through b\'s chunks');
      assert.equal((await store.stat('a')).state, 'local');
      assert.deepEqual((await store.fsck()).problems, []);
    });
  });
});

describe('budget', () => {
  test('reopening with a smaller budget evicts clean files down to the low-water mark; dirty ones stay', async () => {
    await withTempDir(async (root) => {
      const dir = path.join(root, 'store');
      const s1 = await openStore({ dir, chunkParams: SMALL_CHUNKS, cacheMaxBytes: 10_000 * KB });
      for (const name of ['a', 'b', 'c']) await s1.ingest(name, source(randomBytes(200 * KB)));
      await cleanAll(s1);
      const dirty = randomBytes(100 * KB);
      await s1.ingest('dirty', source(dirty));
      await s1.close();
      const s2 = await openStore({ dir, cacheMaxBytes: 500 * KB });
      try {
        assert.ok(s2.stats().storedBytes <= 0.7 * 500 * KB, `stored ${s2.stats().storedBytes}`);
        assert.equal((await s2.stat('dirty')).state, 'local');
        assert.ok((await readAll(await s2.read('dirty'))).equals(dirty));
        assert.deepEqual((await s2.fsck()).problems, []);
      } finally {
        await s2.close();
      }
    });
  });

  test('default budget is 80 % of the free space at first start and stays the same on later starts', async () => {
    await withTempDir(async (root) => {
      const dir = path.join(root, 'store');
      const s1 = await openStore({ dir });
      const b1 = s1.stats().budgetBytes;
      const st = await fs.statfs(root);
      const expected = st.bavail * st.bsize * 0.8;
      assert.ok(Math.abs(b1 - expected) / expected < 0.01, `budget ${b1} vs 80 % of free ${expected}`);
      await s1.close();
      await fs.writeFile(path.join(root, 'filler'), randomBytes(64 * 1024 * 1024)); // free space shrinks by 64 MiB
      const s2 = await openStore({ dir });
      assert.equal(s2.stats().budgetBytes, b1);
      await s2.close();
      const s3 = await openStore({ dir, cacheMaxBytes: 123_456_789 });
      assert.equal(s3.stats().budgetBytes, 123_456_789, 'an explicit BALUPI_CACHE_MAX_BYTES wins');
      await s3.close();
    });
  });
});
