// The hub's watcher (chokidar with the hub's options and the project's chokidar patch) looks at the one entry an event
// names instead of listing its directory, and where it still lists (a symlink), it lists at most once per cool-down
// while events keep coming. Unpatched, chokidar re-listed the directory back to back (a few ms apart) for as long as
// files arrived, lstat()ing every entry each time. A file that arrives is looked at once (its lstat), not stat()ed again
// by the listener that look registered, and the events of temp files are dropped by their name alone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';
import path from 'node:path';
import { watch } from 'chokidar';
import { rootWatchOptions } from '../../src/sync/hub-watcher.ts';
import { isOwnTemp } from '../../src/sync/root-files.ts';
import { tempDir } from '../helpers/daemon-process.ts';

/**
 * Records when `dir` is listed (chokidar lists through readdirp, which calls fs/promises readdir) and which paths are
 * stat()ed (chokidar's per-file listener uses fs/promises stat).
 */
async function recordListings(dir: string, fn: (listings: number[], stats: string[]) => Promise<void>): Promise<void> {
  const { readdir, stat } = fs;
  const listings: number[] = [];
  const stats: string[] = [];
  (fs as { readdir: unknown }).readdir = (p: unknown, ...rest: unknown[]) => {
    if (String(p) === dir) listings.push(performance.now());
    return (readdir as (...a: unknown[]) => unknown)(p, ...rest);
  };
  (fs as { stat: unknown }).stat = (p: unknown, ...rest: unknown[]) => {
    stats.push(String(p));
    return (stat as (...a: unknown[]) => unknown)(p, ...rest);
  };
  syncBuiltinESMExports();
  try {
    await fn(listings, stats);
  } finally {
    Object.assign(fs, { readdir, stat });
    syncBuiltinESMExports();
  }
}

/** A directory of 500 files watched as the hub does, and the times it is listed (and the paths stat()ed) while `fn` runs. */
async function watchedDir(fn: (dir: string, watcher: ReturnType<typeof watch>, listings: number[], stats: string[]) => Promise<void>): Promise<void> {
  const tmp = await tempDir('balupi-watch-');
  const dir = tmp.path;
  for (let i = 0; i < 500; i += 100) {
    await Promise.all(Array.from({ length: 100 }, (_, j) => fs.writeFile(path.join(dir, `old-${i + j}.bin`), 'x')));
  }
  try {
    await recordListings(dir, async (listings, stats) => {
      const watcher = watch(dir, rootWatchOptions(dir));
      try {
        await new Promise<void>((resolve) => watcher.once('ready', () => resolve()));
        await fn(dir, watcher, listings, stats);
      } finally {
        await watcher.close();
      }
    });
  } finally {
    await tmp.remove();
  }
}

/** Resolves once `count` paths (by base name) were reported as `event`. */
function reported(watcher: ReturnType<typeof watch>, event: 'add' | 'addDir' | 'unlink', count: number): Promise<Set<string>> {
  const seen = new Set<string>();
  return new Promise((resolve) => {
    watcher.on(event, (p: string) => {
      seen.add(path.basename(p));
      if (seen.size === count) resolve(seen);
    });
  });
}

test('files arriving one by one in a large directory are each reported without listing the directory again nor stat()ing them after their add; temp files never; removals and a new directory too', async () => {
  await watchedDir(async (dir, watcher, listings, stats) => {
    const arriving = 150;
    const added = reported(watcher, 'add', arriving + 3);
    const from = listings.length;
    // A steady stream, the way the hub's root writer lands files: temp, then rename; one every 4 ms.
    for (let i = 0; i < arriving; i++) {
      const tmp = path.join(dir, `.balupi-tmp-${i}`);
      await fs.writeFile(tmp, 'new');
      await fs.rename(tmp, path.join(dir, `new-${i}.bin`));
      await new Promise((resolve) => setTimeout(resolve, 4));
    }
    // A directory moved in with files in it: it is listed (once), and its files are reported too.
    const staged = await tempDir('balupi-watch-moved-');
    await Promise.all(['a', 'b', 'c'].map((n) => fs.writeFile(path.join(staged.path, `${n}.bin`), n)));
    const dirAdded = reported(watcher, 'addDir', 1);
    await fs.rename(staged.path, path.join(dir, 'moved-in'));
    const names = await added;
    assert.deepEqual([...(await dirAdded)], ['moved-in']);
    assert.equal(names.size, arriving + 3);
    assert.ok([...names].every((n) => n.startsWith('new-') || ['a.bin', 'b.bin', 'c.bin'].includes(n)), 'temp files are never reported');
    assert.equal(listings.length - from, 0, 'the directory itself was not listed again');
    const restatted = stats.filter((p) => path.basename(p).startsWith('new-'));
    assert.equal(restatted.length, 0, `arriving files looked at once each (their lstat), not stat()ed again: ${restatted.length} stats`);

    // Removals: a file, and the directory moved out again.
    const unlinked = reported(watcher, 'unlink', 4);
    await fs.rm(path.join(dir, 'old-7.bin'));
    await fs.rename(path.join(dir, 'moved-in'), staged.path);
    assert.deepEqual([...(await unlinked)].sort(), ['a.bin', 'b.bin', 'c.bin', 'old-7.bin']);
    await staged.remove();
  });
});

test('events that still list the directory (symlinks arriving one by one) list it at most once per 100 ms, and every one is reported', async () => {
  await watchedDir(async (dir, watcher, listings) => {
    const arriving = 60;
    const added = reported(watcher, 'add', arriving);
    const from = listings.length;
    for (let i = 0; i < arriving; i++) {
      await fs.symlink(`old-${i}.bin`, path.join(dir, `link-${i}`));
      await new Promise((resolve) => setTimeout(resolve, 4));
    }
    assert.equal((await added).size, arriving);
    const during = listings.slice(from);
    assert.ok(during.length >= 2, `the directory was re-listed (${during.length} listings)`);
    const gaps = during.slice(1).map((t, i) => t - during[i]!);
    // Timers fire no earlier than asked; 1 ms of slack for the clock reads around them.
    assert.ok(Math.min(...gaps) >= 99, `listings of one directory at least 100 ms apart, got gaps of ${gaps.map((g) => g.toFixed(0)).join(', ')} ms`);
  });
});

test('the events of temp files are dropped by their name: no path is built and matched for them', async () => {
  const tmp = await tempDir('balupi-watch-names-');
  const dir = tmp.path;
  let tempChecks = 0;
  const watcher = watch(dir, {
    ...rootWatchOptions(dir),
    ignored: (p: string) => {
      if (isOwnTemp(p)) tempChecks += 1;
      return isOwnTemp(p);
    },
  });
  try {
    await new Promise<void>((resolve) => watcher.once('ready', () => resolve()));
    const n = 100;
    const added = reported(watcher, 'add', n);
    for (let i = 0; i < n; i++) {
      // as the hub's root writer lands a file: temp file, bytes, mode, mtime (each an event), then the rename
      const t = path.join(dir, `.balupi-tmp-${i}`);
      await fs.writeFile(t, `file ${i}`);
      await fs.chmod(t, 0o640);
      await fs.utimes(t, new Date(1_600_000_000_000), new Date(1_600_000_000_000));
      await fs.rename(t, path.join(dir, `f${i}.bin`));
    }
    assert.equal((await added).size, n);
    assert.ok(tempChecks < n, `temp-file events matched by path: ${tempChecks} for ${n} files of ~4 events each`);
  } finally {
    await watcher.close();
    await tmp.remove();
  }
});
