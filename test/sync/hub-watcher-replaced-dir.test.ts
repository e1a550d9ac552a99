// A folder on the NAS replaced by another one renamed into its place (`rm -r d1; mv d3 d1`, as a sync tool or a
// user's "replace" in a file manager does it) right after it was made: chokidar may keep the dead watch of the folder
// that went, so that files written into the one now there, and edits of its files, are not reported. Found by
// bench/soak-sync.ts (seed 52): they went unseen until a restart. The hub now reads its whole root again
// periodically (BALUPI_HUB_RESCAN_S, hourly by default; here every 300 ms), so such changes arrive at the latest
// with the next rescan. (A fix inside chokidar's patch, re-watching a known folder whose inode changed, still lost
// edits in about half the runs of this test: its file listeners survive the folder's removal in ways hard to
// follow, so it was dropped.)
import { test } from 'node:test';
import fs from 'node:fs/promises';
import path from 'node:path';
import { HubRoot } from '../../src/sync/hub-root.ts';
import { HubWatcher } from '../../src/sync/hub-watcher.ts';
import { DiskIndex } from '../../src/sync/disk-index.ts';
import { PathLocks } from '../../src/sync/locks.ts';
import { tempDir } from '../helpers/daemon-process.ts';
import { node, silent, type Node } from './in-process.ts';
import { waitFor } from './peers.ts';
import { readAll } from '../store/temp-store.ts';

interface Hub {
  root: string;
  hubRoot: HubRoot;
  store: Node['store'];
  /** The store's bytes of `p` if it holds a live, local version of it. */
  text(p: string): Promise<string | undefined>;
}

/** A hub's root folder (with what `prepare` puts there), its store and its watcher, started. */
async function withWatcher(opts: { rescanMs?: number; prepare?: (root: string) => Promise<void> }, fn: (h: Hub) => Promise<void>): Promise<void> {
  const top = await tempDir('balupi-replaced-dir-');
  const root = path.join(top.path, 'root');
  await fs.mkdir(root);
  await opts.prepare?.(root);
  const n = await node('hub', { root });
  const disk = new DiskIndex(n.db);
  const hubRoot = new HubRoot({ store: n.store, state: n.state, disk, locks: new PathLocks(), root, log: silent });
  const watcher = new HubWatcher({ hubRoot, disk, log: silent, debounceMs: 20, ...(opts.rescanMs ? { rescanMs: opts.rescanMs } : {}) });
  const text = async (p: string) => {
    const r = await n.store.record(p);
    return r && !r.deleted && r.state === 'local' ? (await readAll(await n.store.read(p))).toString() : undefined;
  };
  try {
    await watcher.start();
    await fn({ root, hubRoot, store: n.store, text });
  } finally {
    await watcher.close();
    await n.close();
    await top.remove();
  }
}

test('a folder replaced by another renamed into its place right after it was made: its files are read, old ones deleted, and later writes into it are read (by the watcher or, at the latest, by the next rescan)', async () => {
  await withWatcher({ rescanMs: 300 }, async ({ root, store, text }) => {
    const at = (...p: string[]) => path.join(root, ...p);
    // The soak's sequence, in a fresh folder pair each round: `a` moves to `b`, a new `a` is made and a file written
    // into it, and right after that (the gap varies: the fault was in chokidar's handling of the events in flight)
    // `a` is replaced by `b`. Without the rescan, later writes went unseen in 4 of 4 runs.
    for (const [round, gapMs] of [0, 2, 5, 10, 15, 20, 30, 40].entries()) {
      const [a, b] = [`a${round}`, `b${round}`];
      await fs.mkdir(at(a, 'sub'), { recursive: true });
      await fs.writeFile(at(a, 'kept.txt'), 'in the folder that ends up in place');
      await fs.writeFile(at(a, 'sub', 'deep.txt'), 'one level further down');
      await waitFor(`round ${round}: the first folder read`, async () => (await text(`${a}/sub/deep.txt`)) !== undefined);
      await fs.rename(at(a), at(b));
      await fs.mkdir(at(a));
      await fs.writeFile(at(a, 'd.bin'), Buffer.alloc(1_000_000, 7));
      await new Promise((r) => setTimeout(r, gapMs));
      await fs.rm(at(a), { recursive: true });
      await fs.rename(at(b), at(a));
      await waitFor(`round ${round}: the replacement read`, async () =>
        (await text(`${a}/kept.txt`)) === 'in the folder that ends up in place' &&
        (await text(`${a}/sub/deep.txt`)) === 'one level further down' &&
        (await store.record(`${b}/kept.txt`))?.deleted !== false &&
        (await store.record(`${a}/d.bin`))?.deleted !== false);
      // Written into the folder now in place, and into its subfolder, after the replacement was read.
      await fs.writeFile(at(a, 'new.txt'), 'written later');
      await fs.writeFile(at(a, 'kept.txt'), 'edited later');
      await fs.writeFile(at(a, 'sub', 'deeper.txt'), 'written later, further down');
      await waitFor(`round ${round}: the later writes read`, async () =>
        (await text(`${a}/new.txt`)) === 'written later' &&
        (await text(`${a}/kept.txt`)) === 'edited later' &&
        (await text(`${a}/sub/deeper.txt`)) === 'written later, further down', 10_000);
    }
  });
});

test('a folder the hub removed once a peer emptied it, made again at once on the NAS: files written into it are seen (by the watcher or, at the latest, the next rescan)', async () => {
  const prepare = async (root: string) => {
    await fs.mkdir(path.join(root, 'd1'), { recursive: true });
    await fs.writeFile(path.join(root, 'd1', 'only.txt'), 'the last file in d1');
  };
  // With a rescan, as the hub runs: chokidar can lose the new folder's watch in the same race as above (the removal's
  // events handled after the folder was made again). Without one, a clean-clone CI run under load once missed a file.
  await withWatcher({ prepare, rescanMs: 1000 }, async ({ root, hubRoot, store, text }) => {
    for (let round = 0; round < 5; round++) {
      // A peer deletes the folder's last file: the hub removes it from the root, and the emptied folder with it.
      const last = round === 0 ? 'd1/only.txt' : `d1/c${round - 1}.txt`;
      await store.delete(last);
      await hubRoot.materialize(last);
      await fs.mkdir(path.join(root, 'd1'), { recursive: true });
      await fs.writeFile(path.join(root, 'd1', `c${round}.txt`), `written into the folder made again, round ${round}`);
      await waitFor(`round ${round}: the new file read`, async () => (await text(`d1/c${round}.txt`)) === `written into the folder made again, round ${round}`);
    }
  });
});
