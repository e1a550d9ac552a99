// Committing a version a peer proposes, with optimistic concurrency: it becomes current only if the path is still
// at the version the peer based its change on. Otherwise both versions survive (conflict.ts decides which keeps the
// path) and the conflict is recorded. Identical content is never a conflict.

import type { CommitMeta, FileRecord, Store } from '../../store/index.ts';
import { isStoreError, StoreError } from '../../store/index.ts';
import { conflictName, decide } from './conflict.ts';
import type { ConflictRecord } from './state.ts';
import { metaOf, sameContent, type RemoteFile } from './wire.ts';
import { SyncError } from './errors.ts';

export interface CommitOutcome {
  status: 'ok' | 'conflict';
  /** The record at the path afterwards (undefined: the path never existed and a deletion was asked for). */
  file: FileRecord | undefined;
  /** Where the losing version was kept, if anything was kept. */
  copy?: FileRecord;
}

export interface CommitContext {
  store: Store;
  /** This peer's id (names the copy when the current version loses). */
  localPeer: string;
  /** Who last changed a path here, if known (names the copy when the current version loses). */
  originOf?: (path: string) => Promise<string | undefined>;
  /**
   * Told, the moment a version is committed here, which peer it came from (the copy of a conflict's loser: the peer
   * whose version that was). Synchronous: a commit of the same path that races this one asks originOf right after,
   * before anything could be written down.
   */
  noteOrigin?: (path: string, peer: string) => void;
  /**
   * Reads `path` again where its current version's bytes live (the hub: its root folder), when they turned out to
   * have changed there while a conflict copy of them was being made.
   */
  reread?: (path: string) => Promise<void>;
  recordConflict: (c: ConflictRecord) => Promise<void>;
  /** Whether an incoming version's chunks are known to hash to its whole-file hash already (staging.ts). */
  vouched?: (f: RemoteFile) => boolean;
  now?: () => Date;
}

/** Stores a copy under a fresh conflict name (never overwriting anything: base version 0). */
async function keepCopy(ctx: CommitContext, path: string, f: CommitMeta, peer: string, at: Date): Promise<FileRecord> {
  const name = conflictName(path, at, peer);
  for (let n = 1; ; n++) {
    const candidate = n === 1 ? name : name.replace(`-${peer}`, `-${peer}-${n}`);
    try {
      // Verified (read back): a hub's current version may live in a file of its root that someone has just changed.
      const copy = await ctx.store.commitFile(candidate, f, { baseVersion: 0, allowRemote: true });
      ctx.noteOrigin?.(candidate, peer);
      return copy;
    } catch (err) {
      if (!isStoreError(err, 'conflict') || n >= 100) throw err;
    }
  }
}

/**
 * An incoming version whose chunks this peer counted as held failed its read-back: a file of the hub's root that held
 * some was changed or replaced, and the watcher has not read that yet (or missed it). Those places are forgotten at
 * once, so that the peer's retry, asking have/want first, uploads the chunks: answered as missing chunks
 * (FAILED_PRECONDITION), not DATA_LOSS. Before, each retry failed the same way until the watcher or the hourly rescan
 * read the change (found by bench/soak-sync.ts, three pis). Any other error passes unchanged.
 */
export async function unheldChunks(store: Store, incoming: RemoteFile, err: unknown): Promise<unknown> {
  if (!isStoreError(err, 'corrupt_chunk')) return err;
  const gone = await store.forgetGoneBytes(incoming.chunks.map((c) => c.hash));
  if (gone.length === 0) return err;
  return new StoreError('missing_chunks', `${incoming.path}: ${gone.length} of its chunks are no longer held here (a file that held them changed); upload them`, { cause: err, details: { path: incoming.path, missing: gone.slice(0, 1000) } });
}

const keptChanging = (path: string, cause: unknown) => new SyncError('path_busy', `${path} kept changing while the commit was decided; try again later`, { cause, details: { path } });

/** `sync: false`: the index writes do not wait for the disk; the caller flushes before it answers (group commit). */
export async function applyCommit(ctx: CommitContext, incoming: RemoteFile, baseVersion: number, remotePeer: string, sync = true): Promise<CommitOutcome> {
  const { store } = ctx;
  const path = incoming.path;
  // The store checks a version's whole-file hash by reading its chunks back, unless that check was made as they arrived.
  const check = ctx.vouched?.(incoming) ? { verify: false } : {};
  const commitIncoming = (base: number, opts: { sync?: boolean } = {}) =>
    store.commitFile(path, metaOf(incoming), { baseVersion: base, ...opts, ...check }).catch(async (err: unknown) => Promise.reject(await unheldChunks(store, incoming, err)));
  /** The version of the path whose bytes were found gone and read again (reread) without any change. */
  let bytesGone: number | undefined;
  for (let attempt = 0; ; attempt++) {
    try {
      if (incoming.deleted) {
        const cur = await store.record(path);
        if (!cur || cur.deleted) return { status: 'ok', file: cur };
        const file = await store.delete(path, { baseVersion, sync });
        ctx.noteOrigin?.(path, remotePeer);
        return { status: 'ok', file };
      }
      const file = await commitIncoming(baseVersion, { sync });
      ctx.noteOrigin?.(path, remotePeer);
      return { status: 'ok', file };
    } catch (err) {
      if (!isStoreError(err, 'conflict')) throw err;
      if (attempt >= 3) throw keptChanging(path, err);
    }
    const cur = await store.record(path);
    if (!cur) continue;
    if (sameContent(cur, incoming)) return { status: 'ok', file: cur };
    const at = ctx.now?.() ?? new Date();
    const curPeer = (await ctx.originOf?.(path)) ?? ctx.localPeer;
    const verdict = decide({ deleted: cur.deleted, mtimeMs: cur.mtimeMs, peer: curPeer }, { deleted: incoming.deleted, mtimeMs: incoming.mtimeMs, peer: remotePeer });
    let copy: FileRecord | undefined;
    let file: FileRecord;
    /** Whether the copy of the current version was being made (its bytes are the ones found gone, if any). */
    let keepingCurrent = false;
    try {
      if (verdict === 'incoming') {
        // Keep the current version first: a crash between the two commits leaves both versions, never one. Unless its
        // bytes are gone everywhere (read again, the path was as before: its root file was deleted unseen), when no
        // copy can stand for it and it counts as deleted.
        if (!cur.deleted && bytesGone !== cur.version) {
          keepingCurrent = true;
          copy = await keepCopy(ctx, path, metaOf(cur), curPeer, at);
          keepingCurrent = false;
        }
        file = await commitIncoming(cur.version);
        ctx.noteOrigin?.(path, remotePeer);
      } else {
        if (!incoming.deleted) copy = await keepCopy(ctx, path, metaOf(incoming), remotePeer, at);
        file = cur;
      }
    } catch (err) {
      if (isStoreError(err, 'conflict')) {
        if (attempt < 3) continue; // the path moved again meanwhile: decide anew
        throw keptChanging(path, err);
      }
      // The current version's bytes changed on disk (its root file was edited): read that edit first, then decide
      // anew. A copy made without them stood for a version nobody had any more.
      if (isStoreError(err, 'corrupt_chunk') && ctx.reread && attempt < 3) {
        await ctx.reread(path);
        if (keepingCurrent && (await store.record(path))?.version === cur.version) bytesGone = cur.version;
        continue;
      }
      throw err;
    }
    const gone = cur.deleted || bytesGone === cur.version;
    await ctx.recordConflict({
      at: at.getTime(),
      path,
      copy: copy?.path ?? null,
      loserPeer: verdict === 'incoming' ? curPeer : remotePeer,
      winnerPeer: verdict === 'incoming' ? remotePeer : curPeer,
      reason: gone || incoming.deleted ? 'modified_vs_deleted' : 'both_modified',
    });
    return copy ? { status: 'conflict', file, copy } : { status: 'conflict', file };
  }
}
