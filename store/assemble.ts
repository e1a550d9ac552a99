// Files assembled from chunks that arrive one at a time (the sync layer's path): putChunk stores a verified chunk,
// commitFile makes a version out of chunks already here. Ingest (ingest.ts) is the other way in, from a byte stream.

import type { Engine } from './engine.ts';
import type { ChunkRef, FileRecord } from './records.ts';
import type { Tx } from './indexes.ts';
import { hasBytes } from './records.ts';
import { validateName } from './names.ts';
import { checkHexHash, isHexHash, toHex } from './hasher.ts';
import { StoreError } from './errors.ts';
import { checkBase, currentRecord, firstFilesBelow, writeVersion } from './commit.ts';
import { mapLimit } from './map-limit.ts';
import { readAhead } from './read-ahead.ts';

/** putChunk refuses larger payloads (the chunker never makes chunks above 64 MiB, see checkChunkParams). */
export const MAX_CHUNK_BYTES = 64 * 1024 * 1024;

export interface CommitMeta {
  size: number;
  mtimeMs: number;
  mode: number;
  chunks: ChunkRef[];
  hash: string;
  /** SHA-256 hex of the whole file if the sender knows it (kept as is: only the BLAKE3 is verified here). */
  sha256?: string | null;
}

export interface CommitOptions {
  /** Optimistic concurrency (0 = the path must not exist); a mismatch throws 'conflict'. */
  baseVersion?: number;
  /**
   * Record the version even if some chunks are not here: it becomes a 'remote' file (metadata of a hub file whose
   * bytes were never fetched). Without this, missing chunks throw 'missing_chunks'.
   */
  allowRemote?: boolean;
  /** Re-read the chunks and check the whole-file hash before committing (default true when all chunks are here). */
  verify?: boolean;
  /** false: do not wait for the index write to reach the disk (a later flush() or synced write makes it durable). */
  sync?: boolean;
  /** Pin the new version (in the same transaction); default: pinned as the previous version was. */
  pin?: boolean;
}

export async function putChunk(e: Engine, hash: string, bytes: Uint8Array, opts: { clean?: boolean } = {}): Promise<boolean> {
  checkHexHash(hash);
  if (!(bytes instanceof Uint8Array) || bytes.length === 0 || bytes.length > MAX_CHUNK_BYTES) {
    throw new StoreError('invalid_argument', `chunk must be 1 byte to ${MAX_CHUNK_BYTES} bytes`);
  }
  return e.track(async () => {
    e.holds.acquire(hash);
    let reserved = 0;
    try {
      const actual = await e.files.hashSliced(bytes);
      if (actual !== hash) throw new StoreError('hash_mismatch', `chunk bytes hash to ${actual}, not ${hash}`, { details: { expected: hash, actual } });
      if (hasBytes(await e.idx.getChunk(hash))) return false;
      await e.reserve(bytes.length);
      reserved = bytes.length;
      await e.writes.write(hash, bytes);
      await e.files.syncDirsOf([hash]);
      const stored = await e.transact(async (tx) => {
        await tx.load([hash]);
        const row = tx.chunk(hash);
        if (hasBytes(row)) return false;
        tx.setChunk(hash, row ? { ...row, present: true } : { size: bytes.length, refs: 0, localRefs: 0, present: true, stagedAt: e.now() });
        if (!row && !opts.clean) tx.setDirty(hash, bytes.length, true);
        return true;
      });
      e.unreserve(reserved);
      reserved = 0;
      await e.maybeEvict();
      return stored;
    } finally {
      e.unreserve(reserved);
      e.holds.release(hash);
    }
  });
}

export async function commitFile(e: Engine, path: string, meta: CommitMeta, opts: CommitOptions = {}): Promise<FileRecord> {
  validateName(path);
  const sizes = checkCommitMeta(meta);
  return e.track(async () => {
    const hashes = [...sizes.keys()];
    for (const h of hashes) e.holds.acquire(h);
    try {
      const rows = await e.idx.getChunks(hashes);
      rows.forEach((row, i) => {
        if (row && row.size !== sizes.get(hashes[i]!)) {
          throw new StoreError('invalid_argument', `chunk ${hashes[i]} is ${row.size} bytes, listed as ${sizes.get(hashes[i]!)}`);
        }
      });
      const missing = hashes.filter((_, i) => !hasBytes(rows[i]));
      if (missing.length > 0 && !opts.allowRemote) {
        throw new StoreError('missing_chunks', `${path}: ${missing.length} of ${hashes.length} chunks are not in the store`, {
          details: { path, missing: missing.slice(0, 1000) },
        });
      }
      const inChunkFile = new Set(hashes.filter((_, i) => rows[i]?.present === true));
      if (missing.length === 0 && opts.verify !== false) await verifyWhole(e, path, meta, (h) => inChunkFile.has(h));
      const record = await e.transact(async (tx) => {
        const prev = await currentRecord(e, path);
        checkBase(path, prev, opts.baseVersion);
        const lost = missing.length === 0 ? await lostSinceCheck(tx, hashes, inChunkFile) : [];
        if (lost.length > 0 && !opts.allowRemote) throw lostChunks(path, lost, hashes.length);
        const state = missing.length === 0 && lost.length === 0 ? 'local' : 'remote';
        const v = { size: meta.size, mtimeMs: meta.mtimeMs, mode: meta.mode, chunks: meta.chunks, hash: meta.hash, sha256: meta.sha256 ?? null };
        return writeVersion(e, tx, path, prev, { ...v, deleted: false, state, ...(opts.pin ? { pinned: true } : {}) }, { onDisk: inChunkFile, dirtyNew: false, touch: false });
      }, { sync: opts.sync ?? true });
      await e.maybeEvict();
      return record;
    } finally {
      for (const h of hashes) e.holds.release(h);
    }
  });
}

/**
 * Chunks a commit found here before its transaction that have no bytes now, leaving out those it found in chunk files:
 * holds keep chunk files, but not the backing folder's files, which hold the hub's chunks. A commit deleting the last
 * file that held some (the old name of a renamed file, say) may have run in between; a version counted as 'local'
 * then was acknowledged to its peer without its bytes.
 */
async function lostSinceCheck(tx: Tx, hashes: string[], inChunkFile: ReadonlySet<string>): Promise<string[]> {
  const rest = hashes.filter((h) => !inChunkFile.has(h));
  await tx.load(rest);
  return rest.filter((h) => !hasBytes(tx.chunk(h)));
}

const lostChunks = (path: string, lost: string[], of: number): StoreError =>
  new StoreError('missing_chunks', `${path}: ${lost.length} of ${of} chunks are not in the store (gone while it was committed)`, { details: { path, missing: lost.slice(0, 1000) } });

/** Checks the whole-file hash of a version whose chunks are all here (see wholeHash). */
async function verifyWhole(e: Engine, path: string, meta: CommitMeta, inChunkFile: (hash: string) => boolean): Promise<void> {
  const actual = await wholeHash(e, meta.chunks, inChunkFile);
  if (actual !== meta.hash) {
    throw new StoreError('hash_mismatch', `${path}: chunks hash to ${actual}, not ${meta.hash}`, { details: { path, actual, expected: meta.hash } });
  }
}

/** Bytes of a version read ahead of its whole-file hash. */
const VERIFY_AHEAD_BYTES = 8 * 1024 * 1024;

/**
 * BLAKE3 of a version's content. A one-chunk file's whole hash is its chunk's hash (BLAKE3 of the same bytes), and a
 * chunk file was checked against its name before it was stored: no need to read it back (most synced files are this
 * small; a push of 3,000 of them read each one back). A chunk held only in a file of the backing folder is read all
 * the same: that file may have been edited in place since, and a peer whose commit is acknowledged counts the chunk
 * as safe here (the read fails as corrupt; once the hub has read the edited file, the chunk counts as missing).
 * Longer files are re-read, each chunk verified on read, into reused buffers (read-buffers.ts) given back once hashed:
 * a commit of 1 GB otherwise leaves 1 GB of garbage.
 */
async function wholeHash(e: Engine, chunks: ChunkRef[], inChunkFile: (hash: string) => boolean): Promise<string> {
  if (chunks.length === 1 && inChunkFile(chunks[0]!.hash)) return chunks[0]!.hash;
  const h = e.blake3.create();
  try {
    // Read ahead: one read at a time left the disk idle while each chunk was verified and hashed (a hub checking a
    // pushed 224 MiB file whose chunks it had just written around the page cache: ~300 MB/s).
    const reads = readAhead(chunks.length, (i) => e.readLeased(chunks[i]!.hash, chunks[i]!.size), { maxBytes: VERIFY_AHEAD_BYTES, sizeOf: (i) => chunks[i]!.size });
    for await (const { data, release } of reads) {
      try {
        h.update(data);
      } finally {
        release();
      }
    }
    return toHex(h.digest());
  } finally {
    h.dispose();
  }
}

export interface CommitItem {
  path: string;
  meta: CommitMeta;
  /** As CommitOptions.baseVersion. */
  baseVersion?: number;
  /** As CommitOptions.pin. */
  pin?: boolean;
  /**
   * The version's bytes are the backing folder's file at `path` already, written there (and made durable) by the
   * caller after checking them against the chunk hashes and the whole-file hash: its chunks are located there and
   * need not be in the store (the hub's write of a small pushed file, CommitBatchEntry.data). A store without a
   * backing folder refuses it as 'invalid_argument'.
   */
  located?: boolean;
}

/** Files whose whole-file hashes are checked at once in commitFiles (reads overlap; bounded memory: 1 chunk each). */
const VERIFY_CONCURRENCY = 8;

/**
 * commitFile for many paths at once: the versions that pass their checks are written in ONE index transaction (one
 * write, one fsync when `sync`), instead of one per file. Each item gets its record or the StoreError commitFile would
 * have thrown for it ('conflict', 'missing_chunks', 'hash_mismatch', 'invalid_argument', 'invalid_name',
 * 'path_conflict'); a failed item leaves nothing of itself. Paths must be distinct, and no item may be a directory of
 * another (refused as 'path_conflict'). `allowRemote`: as for commitFile, an item whose chunks are not all present
 * becomes a 'remote' version instead of failing with 'missing_chunks'.
 */
export async function commitFiles(e: Engine, items: CommitItem[], opts: { sync?: boolean; allowRemote?: boolean } = {}): Promise<(FileRecord | StoreError)[]> {
  const out: (FileRecord | StoreError | undefined)[] = new Array(items.length);
  const sizes: (Map<string, number> | undefined)[] = items.map((it, i) => {
    try {
      validateName(it.path);
      return checkCommitMeta(it.meta);
    } catch (err) {
      out[i] = err as StoreError;
      return undefined;
    }
  });
  const paths = new Set<string>();
  items.forEach((it, i) => {
    if (out[i]) return;
    if (paths.has(it.path)) out[i] = new StoreError('invalid_argument', `${it.path} is listed twice`, { details: { path: it.path } });
    paths.add(it.path);
  });
  items.forEach((it, i) => {
    // The tree check in writeVersion reads the committed index, which cannot see the other items of this batch.
    const parts = it.path.split('/');
    const dir = parts.slice(1).map((_, j) => parts.slice(0, j + 1).join('/')).find((a) => paths.has(a));
    if (!out[i] && dir !== undefined) out[i] = new StoreError('path_conflict', `cannot create ${it.path}: ${dir} is a file in the same batch`, { details: { path: it.path, file: dir } });
  });
  return e.track(async () => {
    const held = [...new Set(items.flatMap((it, i) => (sizes[i] ? [...sizes[i]!.keys()] : [])))];
    for (const h of held) e.holds.acquire(h);
    try {
      const rows = new Map((await e.idx.getChunks(held)).map((r, i) => [held[i]!, r]));
      const complete: boolean[] = new Array(items.length).fill(false);
      items.forEach((it, i) => {
        const sz = sizes[i];
        if (out[i] || !sz) return;
        const wrong = [...sz].find(([h, size]) => rows.get(h) && rows.get(h)!.size !== size);
        if (wrong) {
          out[i] = new StoreError('invalid_argument', `chunk ${wrong[0]} is ${rows.get(wrong[0])!.size} bytes, listed as ${wrong[1]}`);
          return;
        }
        if (it.located && e.backingDir === undefined) {
          out[i] = new StoreError('invalid_argument', 'a located commit needs a store with a backing folder', { details: { path: it.path } });
          return;
        }
        const missing = it.located ? [] : [...sz.keys()].filter((h) => !hasBytes(rows.get(h)));
        complete[i] = missing.length === 0;
        if (missing.length > 0 && !opts.allowRemote) {
          out[i] = new StoreError('missing_chunks', `${it.path}: ${missing.length} of ${sz.size} chunks are not in the store`, {
            details: { path: it.path, missing: missing.slice(0, 1000) },
          });
        }
      });
      await mapLimit(items, VERIFY_CONCURRENCY, async (it, i) => {
        if (out[i] || !complete[i] || it.located) return;
        await verifyWhole(e, it.path, it.meta, (h) => rows.get(h)?.present === true).catch((err: unknown) => {
          if (!(err instanceof StoreError)) throw err;
          out[i] = err;
        });
      });
      await e.transact(async (tx) => {
        // Under the lock, so nothing moves meanwhile; the items are not directories of each other (checked above).
        const prevs = await Promise.all(items.map((it, i) => (out[i] ? undefined : currentRecord(e, it.path))));
        const below = await firstFilesBelow(e, items.filter((it, i) => !out[i] && (!prevs[i] || prevs[i]!.deleted)).map((it) => it.path));
        for (let i = 0; i < items.length; i++) {
          if (out[i]) continue;
          const { path, meta, baseVersion, pin, located } = items[i]!;
          try {
            const prev = prevs[i];
            checkBase(path, prev, baseVersion);
            const hashes = [...sizes[i]!.keys()];
            const inChunkFile = new Set(hashes.filter((h) => rows.get(h)?.present === true));
            const lost = complete[i] && !located ? await lostSinceCheck(tx, hashes, inChunkFile) : [];
            if (lost.length > 0 && !opts.allowRemote) {
              out[i] = lostChunks(path, lost, hashes.length);
              continue;
            }
            const local = complete[i] && lost.length === 0;
            const v = { ...meta, sha256: meta.sha256 ?? null, deleted: false, state: local ? ('local' as const) : ('remote' as const), ...(pin ? { pinned: true } : {}) };
            out[i] = await writeVersion(e, tx, path, prev, v, { onDisk: inChunkFile, dirtyNew: false, touch: false, below, ...(located ? { located } : {}) });
          } catch (err) {
            // checkBase and writeVersion's tree check throw before anything is added to the transaction.
            if (!(err instanceof StoreError) || (err.code !== 'conflict' && err.code !== 'path_conflict')) throw err;
            out[i] = err;
          }
        }
      }, { sync: opts.sync ?? true });
      await e.maybeEvict();
      return out as (FileRecord | StoreError)[];
    } finally {
      for (const h of held) e.holds.release(h);
    }
  });
}

/** Validates metadata from a peer; returns each distinct chunk's size. */
function checkCommitMeta(m: CommitMeta): Map<string, number> {
  const bad = (why: string): never => {
    throw new StoreError('invalid_argument', `invalid file metadata: ${why}`);
  };
  if (!Number.isSafeInteger(m.size) || m.size < 0) bad(`size ${m.size}`);
  if (!Number.isFinite(m.mtimeMs)) bad(`mtimeMs ${m.mtimeMs}`);
  if (!Number.isInteger(m.mode) || m.mode < 0 || m.mode > 0o7777) bad(`mode ${m.mode}`);
  if (!isHexHash(m.hash)) bad(`hash ${JSON.stringify(m.hash)}`);
  if (m.sha256 != null && !isHexHash(m.sha256)) bad(`sha256 ${JSON.stringify(m.sha256)}`);
  if (!Array.isArray(m.chunks)) bad('chunks is not a list');
  const sizes = new Map<string, number>();
  let sum = 0;
  for (const c of m.chunks) {
    if (!isHexHash(c?.hash)) bad(`chunk hash ${JSON.stringify(c?.hash)}`);
    if (!Number.isSafeInteger(c.size) || c.size <= 0 || c.size > MAX_CHUNK_BYTES) bad(`chunk size ${c.size}`);
    if ((sizes.get(c.hash) ?? c.size) !== c.size) bad(`chunk ${c.hash} listed with two sizes`);
    sizes.set(c.hash, c.size);
    sum += c.size;
  }
  if (sum !== m.size) bad(`chunk sizes add up to ${sum}, not ${m.size}`);
  return sizes;
}
