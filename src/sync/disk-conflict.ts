// A file of the hub's root edited on disk (by BaluHost, Samba, a user) while a peer's newer version of it waits in the
// store: both survive, by Syncthing's rules (conflict.ts). The newer one keeps the path, the other goes to a conflict
// copy beside it, and the conflict is recorded. Apart from hub-root.ts, which calls it from its refresh (disk -> store)
// under the path's lock, because deciding and keeping both versions is its own concern.

import type { FileRecord, Store } from '../../store/index.ts';
import type { Logger } from '../log.ts';
import type { SyncState } from './state.ts';
import type { DiskIndex } from './disk-index.ts';
import { readRootFile, type DiskStat } from './root-files.ts';
import type { LostVersions } from './lost-versions.ts';
import { conflictName, decide } from './conflict.ts';

export interface DiskConflictDeps {
  store: Store;
  disk: DiskIndex;
  state: SyncState;
  log: Logger;
  lost: LostVersions;
  /** The store keeps the root's bytes in the root (HubRoot). */
  located: boolean;
  /** Whether the store has every chunk of `rec` at its place in the root file at `path` (HubRoot). */
  heldInFile: (path: string, rec: FileRecord) => Promise<boolean>;
  /** Writes the store's version of `path` into the root; the caller holds the path's lock (HubRoot). */
  materializeLocked: (path: string) => Promise<void>;
}

/** The peer that last changed `path` here (this hub if none is known). */
export async function originOf(state: SyncState, path: string): Promise<string> {
  return (await state.getOrigin(path)) ?? state.peerId;
}

export async function recordRootConflict(d: { state: SyncState; log: Logger }, path: string, copy: string | null, loserPeer: string, winnerPeer: string, reason: 'both_modified' | 'modified_vs_deleted'): Promise<void> {
  const c = { at: Date.now(), path, copy, loserPeer, winnerPeer, reason };
  d.log.warn(c, 'sync conflict resolved in the hub root');
  await d.state.recordConflict(c);
}

/** Disk edit (`st`, at `abs`) vs a peer's newer version `rec` in the store: both survive. Returns false to re-run the refresh. */
export async function resolveDiskConflict(d: DiskConflictDeps, path: string, abs: string, st: DiskStat, rec: FileRecord): Promise<boolean> {
  const { store, disk, state } = d;
  const origin = await originOf(state, path);
  const at = new Date();
  const verdict = decide({ deleted: false, mtimeMs: rec.mtimeMs, peer: origin }, { deleted: false, mtimeMs: st.mtimeMs, peer: state.peerId });
  if (verdict === 'incoming') {
    // The disk is newer: keep the peer's version as a copy (unless it was written into this very file, and the edit
    // came after), then the disk's content takes the path.
    const copy = await d.lost.keepCopy(conflictName(path, at, origin), rec, () => d.heldInFile(path, rec));
    const result = await store.ingest(path, readRootFile(abs, st.size), { mtimeMs: st.mtimeMs, mode: st.mode }, { baseVersion: rec.version, located: d.located });
    await state.setOrigin(path, state.peerId);
    await disk.set(path, st, result.file.version);
    if (!copy) return true;
    await recordRootConflict(d, path, copy.path, origin, state.peerId, 'both_modified');
    await d.materializeLocked(copy.path);
    return true;
  }
  // The peer's version is newer: the disk's content goes to a copy, then the path gets the peer's version.
  const copy = await store.ingest(conflictName(path, at, state.peerId), readRootFile(abs, st.size), { mtimeMs: st.mtimeMs, mode: st.mode }, { baseVersion: 0 });
  await disk.set(path, st, -1);
  await recordRootConflict(d, path, copy.file.path, state.peerId, origin, 'both_modified');
  await d.materializeLocked(copy.file.path);
  await d.materializeLocked(path);
  return true;
}
