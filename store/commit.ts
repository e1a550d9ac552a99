// Making a file version visible: one transaction that writes the record, moves its change-feed entry, adjusts the
// reference counts of the chunks it starts and stops using, updates the counters and its place in the eviction
// index. Chunks whose last reference goes are unlinked only after the batch is durable.

import type { Engine } from './engine.ts';
import { readManyNow, readNow, type Tx } from './indexes.ts';
import type { ChunkRef, ChunkRow, FileRecord, FileState } from './records.ts';
import { hasBytes } from './records.ts';
import { StoreError } from './errors.ts';
import { bumpHeat, isEvictionCandidate, putHeat } from './cache-policy.ts';
import { firstOffsets, keepBytes, releaseLocations } from './backing.ts';
import { mapLimit } from './map-limit.ts';

export interface NewVersion {
  size: number;
  mtimeMs: number;
  mode: number;
  hash: string;
  /** SHA-256 hex, null if unknown (always null for tombstones). */
  sha256: string | null;
  chunks: ChunkRef[];
  deleted: boolean;
  state: FileState;
  /** Default: the previous version's. */
  pinned?: boolean;
}

export interface VersionOptions {
  /** Chunks the caller holds and knows to be on disk under their final names. */
  onDisk?: ReadonlySet<string>;
  /** Chunks that get a row for the first time are new bytes this peer must still sync. */
  dirtyNew?: boolean;
  /** Count this write as an access (ingest does; sync commits do not). */
  touch?: boolean;
  /**
   * The new version's bytes are the backing folder's file at `path`, now (an ingest of that very file): its chunks
   * get locations there instead of needing chunk files.
   */
  located?: boolean;
  /** The first file below each new path, from firstFilesBelow (the tree check then needs no index read of its own). */
  below?: ReadonlyMap<string, string | undefined>;
}

/** The live record or tombstone for `path`, whichever exists. */
export async function currentRecord(engine: Engine, path: string): Promise<FileRecord | undefined> {
  return (await engine.idx.getFile(path)) ?? (await engine.idx.getTomb(path));
}

/**
 * Optimistic concurrency: `baseVersion` must be the current version. For a path that does not exist (never did, or
 * was deleted) 0 is accepted as well, so a client that never saw the tombstone can still create the file.
 */
export function checkBase(path: string, prev: FileRecord | undefined, baseVersion: number | undefined): void {
  if (baseVersion === undefined) return;
  const current = prev?.version ?? 0;
  if (baseVersion === current) return;
  if (baseVersion === 0 && (prev === undefined || prev.deleted)) return;
  throw new StoreError('conflict', `${path} is at version ${current}, not ${baseVersion}`, {
    details: { path, currentVersion: current, baseVersion, current: prev },
  });
}

/**
 * Names form a tree, as on the hub's disk: a new file may not sit below another file (a/b is a file, so no a/b/c) nor
 * where files already sit below it (a/b/c exists, so no file a/b).
 */
async function checkTree(engine: Engine, path: string, known?: ReadonlyMap<string, string | undefined>): Promise<void> {
  const parts = path.split('/');
  const ancestors = parts.slice(1).map((_, i) => parts.slice(0, i + 1).join('/'));
  const found = readManyNow(engine.idx.files, ancestors);
  const blocker = ancestors.find((_, i) => found[i] !== undefined);
  if (blocker !== undefined) {
    throw new StoreError('path_conflict', `cannot create ${path}: ${blocker} is a file`, { details: { path, file: blocker } });
  }
  const below = known?.has(path) ? known.get(path) : await firstFileBelow(engine, path);
  if (below !== undefined) {
    throw new StoreError('path_conflict', `cannot create file ${path}: it is a directory (${below} exists)`, { details: { path, file: below } });
  }
}

/**
 * A file under `path/`, if there is one (then `path` is a directory). The iterator is a thread-pool round trip (~40 µs
 * of the main thread each on the dev VM, ~1.4 s of a 30,000-file index pull), so it runs only for a path that has
 * been a directory at some point.
 */
async function firstFileBelow(engine: Engine, path: string): Promise<string | undefined> {
  if (!(await engine.idx.mayBeDirectory(path))) return undefined;
  return (await engine.idx.files.keys({ gt: path + '/', lt: path + '0', limit: 1 }).all())[0];
}

/**
 * firstFileBelow for many paths, several lookups at a time. A batch commit that did them one by one inside its
 * transaction waited for one round trip per new file: ~30 µs each and ~1 s of a 30,000-file index pull.
 */
export async function firstFilesBelow(engine: Engine, paths: readonly string[]): Promise<Map<string, string | undefined>> {
  const found = await mapLimit(paths, 16, (p) => firstFileBelow(engine, p));
  return new Map(paths.map((p, i) => [p, found[i]]));
}

export async function writeVersion(engine: Engine, tx: Tx, path: string, prev: FileRecord | undefined, v: NewVersion, opts: VersionOptions = {}): Promise<FileRecord> {
  if (!v.deleted && (!prev || prev.deleted)) await checkTree(engine, path, opts.below);
  const seq = tx.counters.seq + 1;
  tx.counters.seq = seq;
  const next: FileRecord = {
    path,
    size: v.size,
    mtimeMs: v.mtimeMs,
    mode: v.mode,
    hash: v.hash,
    sha256: v.deleted ? null : v.sha256,
    chunks: v.chunks,
    version: (prev?.version ?? 0) + 1,
    seq,
    deleted: v.deleted,
    state: v.state,
    pinned: !v.deleted && (v.pinned ?? prev?.pinned ?? false),
  };
  const prevLive = prev && !prev.deleted ? prev : undefined;
  const nextLive = next.deleted ? undefined : next;

  // Reference deltas per distinct chunk.
  const delta = new Map<string, { size: number; refs: number; local: number }>();
  const add = (c: ChunkRef, refs: number, local: number): void => {
    const d = delta.get(c.hash) ?? { size: c.size, refs: 0, local: 0 };
    d.refs += refs;
    d.local += local;
    delta.set(c.hash, d);
  };
  if (nextLive) for (const c of nextLive.chunks) add(c, 1, nextLive.state === 'local' ? 1 : 0);
  if (prevLive) for (const c of prevLive.chunks) add(c, -1, prevLive.state === 'local' ? -1 : 0);
  await tx.load(delta.keys());
  const leaving = engine.backingDir !== undefined && prevLive ? releaseLocations(tx, path, prevLive, nextLive, opts.located ?? false) : [];
  for (const [hash, d] of delta) {
    if (d.refs === 0 && d.local === 0) continue;
    const before = tx.chunk(hash);
    const onDisk = opts.onDisk?.has(hash) ?? false;
    let row: ChunkRow;
    if (before) {
      row = before;
      if (onDisk) row.present = true;
    } else {
      if (d.refs < 0) throw new Error(`index inconsistency: chunk ${hash} of ${path} has no row`);
      row = { size: d.size, refs: 0, localRefs: 0, present: onDisk };
      if (onDisk && opts.dirtyNew) tx.setDirty(hash, d.size, true);
    }
    row.refs += d.refs;
    row.localRefs += d.local;
    if (row.refs > 0) delete row.stagedAt;
    if (row.refs <= 0) {
      await tx.dropLocations(hash);
      tx.setChunk(hash, undefined);
      if (row.present) tx.afterCommit(() => engine.writes.unlinkUnheld(hash));
    } else {
      tx.setChunk(hash, row);
    }
  }
  if (opts.located && nextLive) for (const [hash, offset] of firstOffsets(nextLive.chunks)) tx.setLocation(hash, path, offset);
  for (const l of leaving) await keepBytes(engine, tx, path, l);
  if (nextLive?.state === 'local') {
    for (const c of nextLive.chunks) if (!hasBytes(tx.chunk(c.hash))) throw new Error(`index inconsistency: local file ${path} needs absent chunk ${c.hash}`);
  }

  if (prev) {
    tx.delChange(prev.seq);
    if (prev.deleted !== next.deleted) tx.delFile(path, prev.deleted);
  }
  tx.putChange(seq, path);
  tx.putFile(next);

  const c = tx.counters;
  if (prevLive) {
    c.files -= 1;
    c.logicalBytes -= prevLive.size;
    if (prevLive.state === 'local') {
      c.localFiles -= 1;
      c.localBytes -= prevLive.size;
    }
  }
  if (nextLive) {
    c.files += 1;
    c.logicalBytes += nextLive.size;
    if (nextLive.state === 'local') {
      c.localFiles += 1;
      c.localBytes += nextLive.size;
    }
  }

  const heat = readNow(engine.idx.heat, path);
  if (nextLive) {
    const h = opts.touch || !heat ? bumpHeat(heat, engine.now()) : heat;
    putHeat(tx, path, heat, h, isEvictionCandidate(next));
  } else {
    putHeat(tx, path, heat, undefined, false);
  }
  tx.afterCommit(() => engine.emitChange(next, prev));
  return next;
}

/**
 * The same version of a file under a new sequence number, so that the change feed sends it again: for a local fact
 * that peers must hear of (a hub's version that lost its bytes, or got them back: lost-bytes.ts).
 */
export function renumber(engine: Engine, tx: Tx, prev: FileRecord, next: FileRecord): FileRecord {
  const seq = tx.counters.seq + 1;
  tx.counters.seq = seq;
  const out: FileRecord = { ...next, seq };
  tx.delChange(prev.seq);
  tx.putChange(seq, out.path);
  tx.putFile(out);
  tx.afterCommit(() => engine.emitChange(out, prev));
  return out;
}

/** remote -> local once every chunk is present again (the sync layer fetched them). Caller has loaded the rows. */
export async function promote(engine: Engine, tx: Tx, rec: FileRecord): Promise<FileRecord> {
  await tx.load(rec.chunks.map((c) => c.hash));
  for (const c of rec.chunks) {
    const row = tx.chunk(c.hash);
    if (!row || !hasBytes(row)) throw new StoreError('not_local', `${rec.path} is not complete on this disk`, { details: { path: rec.path } });
    row.localRefs += 1;
    tx.setChunk(c.hash, row);
  }
  const next: FileRecord = { ...rec, state: 'local' };
  tx.putFile(next);
  tx.counters.localFiles += 1;
  tx.counters.localBytes += rec.size;
  const heat = readNow(engine.idx.heat, rec.path);
  putHeat(tx, rec.path, heat, bumpHeat(heat, engine.now()), isEvictionCandidate(next));
  return next;
}

/** Pinned files leave the eviction index; unpinned local files re-enter it. Not a new version (local fact). */
export async function setPinned(engine: Engine, tx: Tx, rec: FileRecord, pinned: boolean): Promise<FileRecord> {
  const next: FileRecord = { ...rec, pinned };
  tx.putFile(next);
  const heat = readNow(engine.idx.heat, rec.path);
  putHeat(tx, rec.path, heat, heat ?? bumpHeat(undefined, engine.now()), isEvictionCandidate(next));
  return next;
}

/** One access (a read): count + recency. */
export async function touch(engine: Engine, tx: Tx, rec: FileRecord): Promise<void> {
  const heat = readNow(engine.idx.heat, rec.path);
  putHeat(tx, rec.path, heat, bumpHeat(heat, engine.now()), isEvictionCandidate(rec));
}
