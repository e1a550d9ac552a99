// A move on the NAS (a folder renamed, a file renamed) is files gone at one path and appearing at another. The hub's
// watcher reads the new paths before it deletes the old ones, so that the new records come first in the hub's feed:
// a pi then finds their chunks still held by the old paths and downloads nothing again. Deleted first, a pi dropped
// those bytes with the old paths and fetched them again for the new ones (a renamed album: all of it). And the root
// writer, still catching up with the store after a start, leaves a file removed behind its back to the watcher: it
// wrote such files back, so that a move right after a start left the old names beside the new ones.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { HubRoot } from '../../src/sync/hub-root.ts';
import { HubWatcher } from '../../src/sync/hub-watcher.ts';
import { DiskIndex } from '../../src/sync/disk-index.ts';
import { PathLocks } from '../../src/sync/locks.ts';
import type { FileRecord } from '../../store/index.ts';
import { tempDir } from '../helpers/daemon-process.ts';
import { node, silent } from './in-process.ts';
import { waitFor } from './peers.ts';
import { readAll } from '../store/temp-store.ts';

test('a folder and a file renamed on the NAS right after the hub starts: nothing comes back under the old names, and the new paths come before the deletions', async () => {
  const top = await tempDir('balupi-moves-');
  const root = path.join(top.path, 'root');
  await fs.mkdir(path.join(root, 'album', 'day 2'), { recursive: true });
  const names = Array.from({ length: 40 }, (_, i) => `${i % 2 ? 'day 2/' : ''}img${i}.jpg`);
  for (const [i, name] of names.entries()) await fs.writeFile(path.join(root, 'album', name), randomBytes(i % 8 === 0 ? 700_000 : 30_000));
  await fs.writeFile(path.join(root, 'notes.txt'), 'a file renamed on its own');
  const n = await node('hub', { root });
  const disk = new DiskIndex(n.db);
  const hubRoot = new HubRoot({ store: n.store, state: n.state, disk, locks: new PathLocks(), root, log: silent });
  const watcher = new HubWatcher({ hubRoot, disk, log: silent, debounceMs: 20 });
  try {
    await watcher.start();
    const moved = [...names.map((x) => [`album/${x}`, `album 2024/${x}`]), ['notes.txt', 'notes-old.txt']] as const;
    const hashes = new Map<string, string>();
    for (const [from] of moved) hashes.set(from, (await n.store.record(from))!.hash);
    // Right after the start, while the root writer still goes through the scan's records.
    const before = n.store.seq;
    await fs.rename(path.join(root, 'album'), path.join(root, 'album 2024'));
    await fs.rename(path.join(root, 'notes.txt'), path.join(root, 'notes-old.txt'));
    await waitFor('the moves in the store', async () => {
      for (const [from, to] of moved) {
        if ((await n.store.record(from))?.deleted !== true || (await n.store.record(to))?.state !== 'local') return false;
      }
      return true;
    });
    const changes: FileRecord[] = [];
    for await (const r of n.store.changesSince(before)) changes.push(r);
    const lastNew = Math.max(...changes.filter((r) => !r.deleted).map((r) => r.seq));
    const firstGone = Math.min(...changes.filter((r) => r.deleted).map((r) => r.seq));
    assert.equal(changes.filter((r) => !r.deleted).length, moved.length, 'one record per new path');
    assert.equal(changes.filter((r) => r.deleted).length, moved.length, 'one deletion per old path');
    assert.ok(lastNew < firstGone, `every new path comes before every deletion in the feed (last new ${lastNew}, first deletion ${firstGone})`);
    for (const [from, to] of moved) assert.equal((await n.store.record(to))!.hash, hashes.get(from), `${to} holds what ${from} held`);
    assert.deepEqual((await fs.readdir(root)).sort(), ['album 2024', 'notes-old.txt'], 'nothing came back under its old name');
    assert.deepEqual(await n.state.listConflicts(), []);
  } finally {
    await watcher.close();
    await n.close();
    await top.remove();
  }
});

test('a file replaced by a folder of the same name, and a folder by a file: the new ones are read in (files added to the folder later too), the old ones deleted', async () => {
  const top = await tempDir('balupi-replaced-');
  const root = path.join(top.path, 'root');
  await fs.mkdir(path.join(root, 'was-a-folder'), { recursive: true });
  await fs.writeFile(path.join(root, 'was-a-file'), 'a file that becomes a folder');
  for (const name of ['a.txt', 'b.txt']) await fs.writeFile(path.join(root, 'was-a-folder', name), `${name} in a folder that becomes a file`);
  const n = await node('hub', { root });
  const disk = new DiskIndex(n.db);
  const hubRoot = new HubRoot({ store: n.store, state: n.state, disk, locks: new PathLocks(), root, log: silent });
  const watcher = new HubWatcher({ hubRoot, disk, log: silent, debounceMs: 20 });
  const state = async (p: string) => {
    const r = await n.store.record(p);
    return r === undefined ? 'none' : r.deleted ? 'deleted' : r.state;
  };
  try {
    await watcher.start();
    // chokidar reports the first as a new directory and its file, or (when the new inode comes first) as a change of
    // the file only: either way the folder's file must be read in, or it stays out of the store even after a restart.
    await fs.rm(path.join(root, 'was-a-file'));
    await fs.mkdir(path.join(root, 'was-a-file'));
    await fs.writeFile(path.join(root, 'was-a-file', 'inside.txt'), 'now a folder');
    await fs.rm(path.join(root, 'was-a-folder'), { recursive: true });
    await fs.writeFile(path.join(root, 'was-a-folder'), 'now a file');
    const shapes = ['was-a-file', 'was-a-file/inside.txt', 'was-a-folder', 'was-a-folder/a.txt', 'was-a-folder/b.txt'];
    await waitFor('the new shapes in the store', async () =>
      (await state('was-a-file')) === 'deleted' && (await state('was-a-file/inside.txt')) === 'local' &&
      (await state('was-a-folder')) === 'local' && (await state('was-a-folder/a.txt')) === 'deleted' && (await state('was-a-folder/b.txt')) === 'deleted',
    ).catch(async (err: Error) => {
      throw new Error(`${err.message}: ${(await Promise.all(shapes.map(async (p) => `${p} ${await state(p)}`))).join(', ')}`);
    });
    await fs.writeFile(path.join(root, 'was-a-file', 'later.txt'), 'written into the new folder later');
    await waitFor('a file written into the new folder later', async () => (await state('was-a-file/later.txt')) === 'local');
    assert.equal((await n.store.read('was-a-folder').then(readAll)).toString(), 'now a file');
    assert.deepEqual(await n.state.listConflicts(), []);
  } finally {
    await watcher.close();
    await n.close();
    await top.remove();
  }
});
