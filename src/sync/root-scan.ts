// Reading the hub's whole root folder: at the hub's start (the first start ingests it) and at each periodic rescan
// (hub-watcher.ts). Each file goes through HubRoot's refresh, so a file the disk index knows as it is costs an lstat.
// Apart from hub-root.ts because walking the folder and bounding the reads in flight is its own concern.

import { isStoreError } from '../../store/index.ts';
import type { Logger } from '../log.ts';
import type { DiskIndex } from './disk-index.ts';
import { walk, type ReadDir } from './root-files.ts';

/** Files read at the same time. */
const SCAN_CONCURRENCY = 4;

export interface RootScanDeps {
  root: string;
  disk: DiskIndex;
  log: Logger;
  /** Lists a directory of the root (tests make one unreadable with it). */
  readDir?: ReadDir;
  /** Reads one path (HubRoot.refreshSafely: under its lock, conflicts resolved). */
  refresh: (path: string) => Promise<void>;
  /** Paths not read (ignored, see ignore.ts); known ones among them are still refreshed, which forgets them. */
  skip?: (path: string) => boolean;
}

/**
 * Reads the whole folder: new and changed files are ingested, files gone since last time become deletions. A file
 * that cannot be read or stored (no room in the store's budget, an unreadable file) is logged and skipped: it must
 * not keep the rest of the folder from syncing. It is read again when it changes or at the next scan. So is a
 * directory that cannot be listed; the files known under it are then checked one by one, and only one that is
 * really gone (not merely unreadable) becomes a deletion.
 */
export async function scanRoot(deps: RootScanDeps): Promise<{ files: number; skipped: number }> {
  const { root, disk, log } = deps;
  const seen = new Set<string>();
  let files = 0;
  let skipped = 0;
  // Files that did not fit while others were being read at the same time: read again one by one at the end, so that
  // a nearly full budget takes what fits rather than a share of every file.
  const full: string[] = [];
  const read = async (path: string, retrying = false): Promise<void> => {
    try {
      await deps.refresh(path);
    } catch (err) {
      if (!retrying && isStoreError(err, 'cache_full')) return void full.push(path);
      skipped += 1;
      log.error({ path, err }, 'hub root: could not read a file; skipped until it changes or the next scan');
    }
  };
  const onUnreadable = (dir: string, err: unknown) => {
    log.error({ dir, err }, 'hub root: could not list a directory; skipped until the next scan');
  };
  // Several files at once: each ingest waits on its own reads, chunk writes and index commit, so one at a time left
  // the disk and the hash workers mostly idle (a first start on 3,004 files: 10.3 s one at a time, 6.6-7.0 s with 4).
  const reads = new Set<Promise<void>>();
  const start = async (path: string): Promise<void> => {
    const p = read(path).finally(() => reads.delete(p));
    reads.add(p);
    if (reads.size >= SCAN_CONCURRENCY) await Promise.race(reads);
  };
  for await (const { rel } of walk(root, root, { onUnreadable, ...(deps.readDir ? { readDir: deps.readDir } : {}), ...(deps.skip ? { skip: deps.skip } : {}) })) {
    files += 1;
    seen.add(rel);
    await start(rel);
  }
  const gone: string[] = [];
  for await (const p of disk.paths()) if (!seen.has(p)) gone.push(p);
  for (const p of gone) await start(p);
  await Promise.all(reads);
  for (const p of full.sort()) await read(p, true);
  return { files, skipped };
}
