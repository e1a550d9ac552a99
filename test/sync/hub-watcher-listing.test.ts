// The hub's watcher (chokidar with the hub's options and the project's chokidar patch) lists a directory at most once
// per cool-down while files keep arriving in it, and still reports every file. Unpatched, chokidar re-listed the
// directory back to back (a few ms apart) for as long as files arrived, lstat()ing every entry each time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';
import path from 'node:path';
import { watch } from 'chokidar';
import { ROOT_WATCH_OPTIONS } from '../../src/sync/hub-watcher.ts';
import { tempDir } from '../helpers/daemon-process.ts';

/** Records when `dir` is listed (chokidar lists through readdirp, which calls fs/promises readdir). */
async function recordListings(dir: string, fn: (listings: number[]) => Promise<void>): Promise<void> {
  const original = fs.readdir;
  const listings: number[] = [];
  (fs as { readdir: unknown }).readdir = (p: unknown, ...rest: unknown[]) => {
    if (String(p) === dir) listings.push(performance.now());
    return (original as (...a: unknown[]) => unknown)(p, ...rest);
  };
  syncBuiltinESMExports();
  try {
    await fn(listings);
  } finally {
    (fs as { readdir: unknown }).readdir = original;
    syncBuiltinESMExports();
  }
}

test('files arriving one by one in a large directory: listed at most once per 100 ms, every file reported, a removal too', async () => {
  const tmp = await tempDir('balupi-watch-');
  const dir = tmp.path;
  for (let i = 0; i < 500; i += 100) {
    await Promise.all(Array.from({ length: 100 }, (_, j) => fs.writeFile(path.join(dir, `old-${i + j}.bin`), 'x')));
  }
  await recordListings(dir, async (listings) => {
    const watcher = watch(dir, ROOT_WATCH_OPTIONS);
    try {
      await new Promise<void>((resolve) => watcher.once('ready', () => resolve()));
      const arriving = 150;
      const added = new Set<string>();
      const allAdded = new Promise<void>((resolve) => {
        watcher.on('add', (p) => {
          added.add(path.basename(p));
          if (added.size === arriving) resolve();
        });
      });
      const from = listings.length;
      // A steady stream, the way the hub's root writer lands files: temp, then rename; one every 4 ms.
      for (let i = 0; i < arriving; i++) {
        const tmp = path.join(dir, `.balupi-tmp-${i}`);
        await fs.writeFile(tmp, 'new');
        await fs.rename(tmp, path.join(dir, `new-${i}.bin`));
        await new Promise((resolve) => setTimeout(resolve, 4));
      }
      await allAdded;
      assert.equal(added.size, arriving);
      assert.ok([...added].every((n) => n.startsWith('new-')), 'temp files are never reported');
      const during = listings.slice(from);
      assert.ok(during.length >= 2, `the directory was re-listed (${during.length} listings)`);
      const gaps = during.slice(1).map((t, i) => t - during[i]!);
      // Timers fire no earlier than asked; 1 ms of slack for the clock reads around them.
      assert.ok(Math.min(...gaps) >= 99, `listings of one directory at least 100 ms apart, got gaps of ${gaps.map((g) => g.toFixed(0)).join(', ')} ms`);

      // A removal while the directory cools down is still reported.
      const unlinked = new Promise<string>((resolve) => watcher.once('unlink', (p) => resolve(path.basename(p))));
      await fs.rm(path.join(dir, 'old-7.bin'));
      assert.equal(await unlinked, 'old-7.bin');
    } finally {
      await watcher.close();
    }
  });
  await tmp.remove();
});
