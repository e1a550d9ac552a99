// The hub's watcher (chokidar with the hub's options and the project's chokidar patch) holds one inotify watch per
// directory, not one per file, and still reports what happens to the files: an in-place edit (same inode, no rename),
// a new file, a removal, a file in a new directory and its later edit, a file replaced by a directory of its name.
// Unpatched, chokidar added a watch for every file: a root of a few hundred thousand files exceeds
// fs.inotify.max_user_watches, and once it is reached further watches, directories' included, fail.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import { ROOT_WATCH_OPTIONS } from '../../src/sync/hub-watcher.ts';
import { tempDir } from '../helpers/daemon-process.ts';

/** inotify watches this process holds (one `inotify wd:` line per watch in the fdinfo of each inotify fd). */
async function inotifyWatches(): Promise<number> {
  let n = 0;
  for (const fd of await fs.readdir('/proc/self/fdinfo')) {
    const info = await fs.readFile(`/proc/self/fdinfo/${fd}`, 'utf8').catch(() => '');
    n += info.match(/^inotify wd:/gm)?.length ?? 0;
  }
  return n;
}

/** The next event of `kind` for `rel`, whatever else is reported meanwhile. */
function next(watcher: FSWatcher, root: string, kind: string, rel: string): Promise<void> {
  return new Promise((resolve) => {
    const on = (ev: string, p: string) => {
      if (ev !== kind || path.relative(root, p) !== rel) return;
      watcher.off('all', on);
      resolve();
    };
    watcher.on('all', on);
  });
}

test('one inotify watch per directory, none per file; edits in place, additions, removals and new directories are still reported', { skip: process.platform !== 'linux' && 'inotify is Linux' }, async () => {
  const tmp = await tempDir('balupi-watches-');
  const root = tmp.path;
  for (let d = 0; d < 3; d++) {
    await fs.mkdir(path.join(root, `d${d}`));
    await Promise.all(Array.from({ length: 100 }, (_, i) => fs.writeFile(path.join(root, `d${d}`, `f${i}.txt`), 'v1')));
  }
  const before = await inotifyWatches();
  const watcher = watch(root, ROOT_WATCH_OPTIONS);
  try {
    await new Promise<void>((resolve) => watcher.once('ready', () => resolve()));
    const held = (await inotifyWatches()) - before;
    assert.ok(held >= 4 && held <= 4 + 1, `4 directories (the root and d0-d2), 300 files: ${held} watches`);

    const edited = next(watcher, root, 'change', 'd1/f42.txt');
    await fs.appendFile(path.join(root, 'd1', 'f42.txt'), ' and more'); // same inode, no rename
    await edited;

    const added = next(watcher, root, 'add', 'd2/new.txt');
    await fs.writeFile(path.join(root, 'd2', 'new.txt'), 'new');
    await added;
    const addedEdited = next(watcher, root, 'change', 'd2/new.txt');
    await fs.appendFile(path.join(root, 'd2', 'new.txt'), '!');
    await addedEdited;

    const removed = next(watcher, root, 'unlink', 'd0/f7.txt');
    await fs.rm(path.join(root, 'd0', 'f7.txt'));
    await removed;

    const dirAdded = next(watcher, root, 'addDir', 'd3');
    await fs.mkdir(path.join(root, 'd3'));
    await dirAdded;
    const inner = next(watcher, root, 'add', 'd3/inner.txt');
    await fs.writeFile(path.join(root, 'd3', 'inner.txt'), 'i');
    await inner;
    const innerEdited = next(watcher, root, 'change', 'd3/inner.txt');
    await fs.appendFile(path.join(root, 'd3', 'inner.txt'), 'j');
    await innerEdited;

    // A file replaced by a directory of the same name: the directory gets a watch of its own.
    const gone = next(watcher, root, 'unlink', 'd0/f5.txt');
    await fs.rm(path.join(root, 'd0', 'f5.txt'));
    await gone;
    const nowDir = next(watcher, root, 'addDir', 'd0/f5.txt');
    await fs.mkdir(path.join(root, 'd0', 'f5.txt'));
    await nowDir;
    const deep = next(watcher, root, 'add', 'd0/f5.txt/deep.txt');
    await fs.writeFile(path.join(root, 'd0', 'f5.txt', 'deep.txt'), 'd');
    await deep;
    const deepEdited = next(watcher, root, 'change', 'd0/f5.txt/deep.txt');
    await fs.appendFile(path.join(root, 'd0', 'f5.txt', 'deep.txt'), 'e');
    await deepEdited;

    const after = (await inotifyWatches()) - before;
    assert.ok(after <= 6 + 1, `6 directories now, 300 files: ${after} watches`);
  } finally {
    await watcher.close();
    await tmp.remove();
  }
});
