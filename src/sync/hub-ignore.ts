// What a hub does with paths its rules ignore (ignore.ts, BALUPI_HUB_IGNORE) that it synced before: they leave the
// sync as if their files were gone (the pis drop their copies with the deletion in the feed), while the files stay in
// the root untouched, since the root writer never writes or removes an ignored path. Apart from hub-root.ts because
// it is its own small concern: the one pass at a start with new rules, and the same step for one path.

import { isStoreError, type Store } from '../../store/index.ts';
import type { Logger } from '../log.ts';
import type { DiskIndex } from './disk-index.ts';
import type { SyncState } from './state.ts';
import type { PathLocks } from './locks.ts';
import type { IgnoreRules } from './ignore.ts';

/**
 * Deletes the record of the ignored `path` (if live), then its disk entry (in that order: a crash between the two
 * leaves the entry, and the next scan forgets the path again); the file on disk stays. Under the path's lock.
 */
export async function forgetIgnoredLocked(store: Store, disk: DiskIndex, path: string): Promise<boolean> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const rec = await store.record(path);
    const live = rec !== undefined && !rec.deleted;
    try {
      if (live) await store.delete(path, { baseVersion: rec.version });
    } catch (err) {
      if (isStoreError(err, 'conflict')) continue;
      throw err;
    }
    if ((await disk.get(path)) !== undefined) await disk.del(path);
    return live;
  }
  return false; // the record kept changing: the next scan tries again (its disk entry stays for that)
}

/**
 * At a start whose rules differ from the last start's: every live record the rules now ignore is forgotten. Nothing
 * can add such records while the rules stay (the watcher and the scan pass ignored paths by, and peers' versions of
 * them are refused), so the walk over every record runs only when the rules change. Returns how many went.
 */
export async function dropIgnoredRecords(deps: { store: Store; disk: DiskIndex; state: SyncState; locks: PathLocks; log: Logger }, rules: IgnoreRules): Promise<number> {
  const { store, disk, state, locks, log } = deps;
  const fingerprint = rules.fingerprint;
  if ((await state.getNumber('hubIgnoreRules')) === fingerprint) return 0;
  const paths: string[] = [];
  if (!rules.empty) for await (const r of store.filesUnder('')) if (rules.ignores(r.path)) paths.push(r.path);
  let dropped = 0;
  for (const p of paths) if (await locks.run(p, () => forgetIgnoredLocked(store, disk, p))) dropped += 1;
  if (dropped > 0) log.info({ files: dropped, ignore: rules.patterns }, 'hub root: files the ignore rules now leave out are no longer synced (their files stay in the root)');
  await state.setNumber('hubIgnoreRules', fingerprint);
  return dropped;
}
