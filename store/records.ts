// The shapes the store keeps in LevelDB and hands to its callers. File records are what the sync protocol moves
// (path, size, mtime, mode, whole-file hash, ordered chunk list, per-path version, change sequence, tombstones);
// `state` and `pinned` are local facts about this peer's copy and never travel.

export type FileState = 'local' | 'remote';

export interface ChunkRef {
  /** BLAKE3, 64 lowercase hex characters. */
  hash: string;
  size: number;
}

export interface FileRecord {
  path: string;
  size: number;
  mtimeMs: number;
  mode: number;
  /** BLAKE3 of the whole file, hex ('' for tombstones). */
  hash: string;
  /**
   * SHA-256 of the whole file, lowercase hex: the checksum BaluHost's clients compare. Computed in the same pass as
   * the BLAKE3 on ingest and carried by sync; null where unknown (tombstones, records written before it existed, or a
   * peer that did not send it).
   */
  sha256: string | null;
  /** In file order; empty for empty files and tombstones. */
  chunks: ChunkRef[];
  /** Per-path counter: 1 for the first version, +1 for every later version including the delete (tombstone). */
  version: number;
  /** Change-sequence number of this record; strictly increasing over the whole store. */
  seq: number;
  deleted: boolean;
  /** 'local': every chunk is on this disk. 'remote': some were evicted (or never fetched): ask the hub. */
  state: FileState;
  /** Pinned files are never evicted. */
  pinned: boolean;
}

/** One row per known chunk. `refs` counts references from live file records (each list entry once). */
export interface ChunkRow {
  size: number;
  refs: number;
  /** References from live records in state 'local': when it drops to 0 the bytes may be evicted (if clean). */
  localRefs: number;
  /** The chunk file exists under its final name. */
  present: boolean;
  /**
   * Places in the store's backing folder (the hub's root) that hold these bytes, kept in the `locs` sublevel. A chunk
   * with locations needs no chunk file: the hub keeps each byte once, in the files BaluHost sees.
   */
  locs?: number;
  /**
   * One of those locations, kept in the row so that reading the chunk needs no iterator over `locs` (an async LevelDB
   * round trip or three per chunk; a hub serving thousands of small files spent most of its main thread there). Only
   * a hint: it is cleared when that location goes, and readers fall back to the full list when it is absent or no
   * longer holds the bytes.
   */
  at?: { path: string; offset: number };
  /** When a chunk arrived by putChunk without any file referencing it yet (gc removes it after a grace period). */
  stagedAt?: number;
}

/** Totals kept in the same LevelDB batches as the changes they count, so they never drift. */
export interface Counters {
  seq: number;
  files: number;
  logicalBytes: number;
  localFiles: number;
  localBytes: number;
  chunks: number;
  storedBytes: number;
  dirtyChunks: number;
  dirtyBytes: number;
}

/** Whether this peer can read the chunk's bytes: from its chunk file or from a file of the backing folder. */
export function hasBytes(row: ChunkRow | undefined): boolean {
  return row !== undefined && (row.present || (row.locs ?? 0) > 0);
}

export function zeroCounters(): Counters {
  return { seq: 0, files: 0, logicalBytes: 0, localFiles: 0, localBytes: 0, chunks: 0, storedBytes: 0, dirtyChunks: 0, dirtyBytes: 0 };
}

// Compact JSON encodings: a 2 GiB file has ~2,000 chunk entries, so the per-entry overhead matters a little.

interface FileRecordJson {
  s: number;
  m: number;
  o: number;
  h: string;
  /** SHA-256 as base64 (44 characters instead of 64 hex); absent when unknown. */
  x?: string;
  c: [string, number][];
  v: number;
  q: number;
  d?: 1;
  st: FileState;
  p?: 1;
}

export function encodeFile(r: FileRecord): FileRecordJson {
  const out: FileRecordJson = { s: r.size, m: r.mtimeMs, o: r.mode, h: r.hash, c: r.chunks.map((c) => [c.hash, c.size]), v: r.version, q: r.seq, st: r.state };
  if (r.sha256) out.x = Buffer.from(r.sha256, 'hex').toString('base64');
  if (r.deleted) out.d = 1;
  if (r.pinned) out.p = 1;
  return out;
}

export function decodeFile(path: string, j: FileRecordJson): FileRecord {
  return {
    path,
    size: j.s,
    mtimeMs: j.m,
    mode: j.o,
    hash: j.h,
    sha256: j.x === undefined ? null : Buffer.from(j.x, 'base64').toString('hex'),
    chunks: j.c.map(([hash, size]) => ({ hash, size })),
    version: j.v,
    seq: j.q,
    deleted: j.d === 1,
    state: j.st,
    pinned: j.p === 1,
  };
}

interface ChunkRowJson {
  s: number;
  r: number;
  l: number;
  p: 0 | 1;
  t?: number;
  x?: number;
  a?: [string, number];
}

export function encodeChunk(c: ChunkRow): ChunkRowJson {
  const out: ChunkRowJson = { s: c.size, r: c.refs, l: c.localRefs, p: c.present ? 1 : 0 };
  if (c.stagedAt !== undefined) out.t = c.stagedAt;
  if (c.locs) out.x = c.locs;
  if (c.at) out.a = [c.at.path, c.at.offset];
  return out;
}

export function decodeChunk(j: ChunkRowJson): ChunkRow {
  const row: ChunkRow = { size: j.s, refs: j.r, localRefs: j.l, present: j.p === 1 };
  if (j.t !== undefined) row.stagedAt = j.t;
  if (j.x) row.locs = j.x;
  if (j.a) row.at = { path: j.a[0], offset: j.a[1] };
  return row;
}

export type { FileRecordJson, ChunkRowJson };
