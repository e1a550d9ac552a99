// The hub's watcher does not read back the files the hub itself puts into its root folder. New files a peer pushed
// with their bytes (commit.inline) are written into place before the store records them, so the watcher hears of them
// before their disk-index entries exist; it knows them by the size and mtime being written (DiskIndex.placing) and
// leaves them alone. Reading each back cost a push of 3,000 small files 3,000 reads. A file someone else drops beside
// them at the same time is still read.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { HubRoot } from '../../src/sync/hub-root.ts';
import { HubWatcher } from '../../src/sync/hub-watcher.ts';
import { RootFileWriter } from '../../src/sync/root-file-writer.ts';
import { DiskIndex } from '../../src/sync/disk-index.ts';
import { PathLocks } from '../../src/sync/locks.ts';
import type { NewFile } from '../../src/sync/new-files.ts';
import { tempDir } from '../helpers/daemon-process.ts';
import { node, silent } from './in-process.ts';
import { blake, waitFor } from './peers.ts';

test('files pushed with their bytes are not read back by the watcher; a file a user drops beside them is', async () => {
  const top = await tempDir('balupi-own-files-');
  const root = path.join(top.path, 'root');
  await fs.mkdir(root);
  const n = await node('hub', { root });
  const disk = new DiskIndex(n.db);
  const writer = new RootFileWriter({ blake3: n.store.stats().hasher });
  const hubRoot = new HubRoot({ store: n.store, state: n.state, disk, locks: new PathLocks(), root, log: silent, smallFiles: writer });
  const watcher = new HubWatcher({ hubRoot, disk, log: silent, debounceMs: 20 });
  // Every read the watcher starts, counted on its way to the real one.
  const read: string[] = [];
  const refresh = hubRoot.refreshSafely.bind(hubRoot);
  hubRoot.refreshSafely = (p: string) => {
    read.push(p);
    return refresh(p);
  };
  try {
    await watcher.start();
    const items: NewFile[] = await Promise.all(
      Array.from({ length: 60 }, async (_, i) => {
        const data = Buffer.from(`pushed file ${i}; `.repeat(40 + i));
        const hash = await blake(data);
        // mtimes with a fraction of a millisecond's worth of float error when set in seconds, as a pi sends them
        const file = { path: `d${i % 3}/f${i}.txt`, size: data.length, mtimeMs: 1_600_000_000_123 + i, mode: 0o640, hash, sha256: null, chunks: [{ hash, size: data.length }], version: 0, seq: 0, deleted: false };
        return { file, base: 0, data };
      }),
    );
    const recs = await hubRoot.commitNew(items);
    assert.equal(recs.filter((r) => r !== undefined).length, 60, 'all went straight into place');
    assert.equal(writer.batches, 1, 'in one batch of the root file writer (two flushes for all 60)');

    // A user drops a file into one of those directories afterwards: its events come after the pushed files' ones.
    await fs.writeFile(path.join(root, 'd0', 'user.txt'), 'dropped in by a user');
    await waitFor('the user file read into the store', async () => (await n.store.record('d0/user.txt')) !== undefined);
    assert.ok(read.includes('d0/user.txt'));
    assert.deepEqual(read.filter((p) => p !== 'd0/user.txt'), [], 'none of the pushed files was read back');
    for (const { file, data } of items) {
      assert.ok((await fs.readFile(path.join(root, file.path))).equals(data), `${file.path} in place`);
      assert.equal((await n.store.record(file.path))?.version, 1, `${file.path}: one version, the peer's`);
    }
  } finally {
    await watcher.close();
    await writer.close();
    await n.close();
    await top.remove();
  }
});
