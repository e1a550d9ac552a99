// The hub's root and its store must not drift apart for good, whatever a crash cuts short: a file found gone keeps
// its disk entry until its deletion is in the store, and every scan (start and rescan) writes again any version the
// root writer had passed that the root does not hold. Found by bench/soak-sync.ts (three pis, seed 5607): the hub
// was killed while it read a folder's move on the NAS, and the moved-away file stayed on every pi for good. And the
// sweep of stray temp files must not be stopped by a folder it cannot list.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { DiskIndex } from '../../src/sync/disk-index.ts';
import { setup } from './hub-root-fixtures.ts';
import { bytes, silent } from './in-process.ts';
import { HubRoot } from '../../src/sync/hub-root.ts';
import { PathLocks } from '../../src/sync/locks.ts';
import { TEMP_PREFIX } from '../../src/sync/root-files.ts';

test('a crash between reading a file\'s removal and deleting it in the store: the next scan still deletes it', async () => {
  await setup(async (n, hub, root) => {
    await fs.writeFile(path.join(root, 'moved.txt'), 'moved away on the NAS');
    await hub.refresh('moved.txt');
    await fs.rm(path.join(root, 'moved.txt'));
    const del = n.store.delete.bind(n.store);
    n.store.delete = async () => {
      throw new Error('killed here'); // the process dies at the store's deletion
    };
    await assert.rejects(hub.refresh('moved.txt'), /killed here/);
    n.store.delete = del;
    await hub.scan(); // the next start
    assert.equal((await n.store.record('moved.txt'))?.deleted, true, 'deleted in the store as on disk');
    const known: string[] = [];
    for await (const p of new DiskIndex(n.db).paths()) known.push(p);
    assert.deepEqual(known, [], 'its disk entry went with it');
  });
});

test('a scan writes again what the root writer passed and the root lacks; a file of the root whose removal was cut short is deleted', async () => {
  await setup(async (n, hub, root) => {
    const disk = new DiskIndex(n.db);
    // A peer's version the root writer passed without writing (a lost write).
    await n.store.ingest('d/peer.txt', bytes('a peer\'s version'));
    // A newer version of a file the root holds in an older one, its disk entry saying so.
    const older = await n.store.ingest('d/older.txt', bytes('first'));
    await hub.materialize('d/older.txt');
    const newer = await n.store.ingest('d/older.txt', bytes('second, never written'), {}, { baseVersion: older.file.version });
    // A file read from the root, then removed on the NAS; the hub dropped its disk entry and died before the deletion.
    await fs.writeFile(path.join(root, 'gone.txt'), 'moved away on the NAS');
    await hub.refresh('gone.txt');
    await fs.rm(path.join(root, 'gone.txt'));
    await disk.del('gone.txt');
    await n.state.setNumber('rootCursor', (await n.store.stat('gone.txt')).seq);
    assert.ok(newer.file.seq < (await n.store.stat('gone.txt')).seq);

    await hub.scan();
    assert.equal(await fs.readFile(path.join(root, 'd', 'peer.txt'), 'utf8'), 'a peer\'s version');
    assert.equal(await fs.readFile(path.join(root, 'd', 'older.txt'), 'utf8'), 'second, never written');
    assert.equal((await disk.get('d/older.txt'))?.v, newer.file.version);
    assert.equal((await n.store.record('gone.txt'))?.deleted, true, 'its bytes lay in that very file: removed on the NAS, deleted');
    await assert.rejects(fs.stat(path.join(root, 'gone.txt')), { code: 'ENOENT' }, 'not written back');
  });
});

test('the temp sweep passes by a directory it cannot list (a disk\'s lost+found) and ignored folders, and still sweeps the rest', async () => {
  await setup(async (n, _hub, root) => {
    for (const d of ['lost+found', 'public', '.tmp']) await fs.mkdir(path.join(root, d));
    await fs.writeFile(path.join(root, 'public', `${TEMP_PREFIX}left-by-an-earlier-run`), 'stale');
    await fs.writeFile(path.join(root, '.tmp', `${TEMP_PREFIX}not-ours-to-touch`), 'in an ignored folder');
    // A test running as root cannot lose the right to list a directory any other way.
    const readDir = (dir: string) =>
      dir === path.join(root, 'lost+found') ? Promise.reject(Object.assign(new Error(`EACCES: permission denied, scandir '${dir}'`), { code: 'EACCES' })) : fs.readdir(dir, { withFileTypes: true });
    const hub = new HubRoot({ store: n.store, state: n.state, disk: new DiskIndex(n.db), locks: new PathLocks(), root, log: silent, readDir, ignore: ['.tmp', 'lost+found'] });
    await hub.sweepStaging(); // before: EACCES ended the sweep, at every start and upkeep
    assert.deepEqual(await fs.readdir(path.join(root, 'public')), [], 'the stale temp file went');
    assert.deepEqual(await fs.readdir(path.join(root, '.tmp')), [`${TEMP_PREFIX}not-ours-to-touch`], 'an ignored folder is left alone');
    const noIgnore = new HubRoot({ store: n.store, state: n.state, disk: new DiskIndex(n.db), locks: new PathLocks(), root, log: silent, readDir });
    await noIgnore.sweepStaging(); // lost+found not left out: still passed by, unreadable
  });
});
