// The public face of the storage engine. Every method validates its input, then delegates to the operation modules;
// see README-level notes in store/index.ts for the on-disk layout.

import type { Readable } from 'node:stream';
export type { DirEntry } from './listing.ts';
import type { ChunkRef, FileRecord } from './records.ts';
import type { StoreOptions } from './engine.ts';
import type { HashSession } from './chunk-workers.ts';
import type { IngestMeta, IngestName, IngestOptions, IngestResult } from './ingest.ts';
import type { OpenedRead, ReadOptions, ReadRange } from './reader.ts';
import type { FsckReport, GcReport } from './maintenance.ts';
import type { ChunkParams } from './chunker.ts';
import { Engine } from './engine.ts';
import { ingest } from './ingest.ts';
import { openRead } from './reader.ts';
import { fsck, gc, recover } from './maintenance.ts';
import { currentRecord } from './commit.ts';
import { deleteFile, pinFile, renameFile } from './file-edits.ts';
import { commitFile, commitFiles, putChunk, MAX_CHUNK_BYTES } from './assemble.ts';
import type { CommitItem, CommitMeta, CommitOptions } from './assemble.ts';
import { evictLocked } from './cache-policy.ts';
import { forgetLocations, locatedAt, locatedPaths, noteStaged, noteWritten, type StagedChunk, type WrittenFile } from './backing.ts';
import { validateName } from './names.ts';
import { checkHexHash } from './hasher.ts';
import { StoreError } from './errors.ts';
import { hasBytes } from './records.ts';
import { readManyNow } from './indexes.ts';
import { changesSince, followChanges, listDir, type DirEntry } from './listing.ts';
import { demoteIfLost, forgetGoneBytes } from './lost-bytes.ts';
import { checkChunk, filesUnder, heatOf, holdChunkFile, loadIndexId, markClean, promoteIfComplete, putChunks, readPresentChunk, type PutOutcome } from './sync-support.ts';

export interface StoreStats {
  files: number;
  logicalBytes: number;
  localFiles: number;
  localBytes: number;
  storedBytes: number;
  chunks: number;
  /** Logical bytes of local files per stored byte (>= 1 when chunks are shared). */
  dedupRatio: number;
  dirtyChunks: number;
  dirtyBytes: number;
  budgetBytes: number;
  /** storedBytes / budgetBytes. */
  budgetUse: number;
  highWater: number;
  lowWater: number;
  seq: number;
  hasher: 'native' | 'wasm';
  chunkParams: ChunkParams;
  /** Chunks held by operations in flight (reads, ingests, commits): 0 when the store is idle. */
  heldChunks: number;
  /** Reusable read buffers taken and not given back (ReadOptions.reuseBuffers): 0 when no such read is running. */
  readBuffersInUse: number;
  /** The folder whose files hold their own chunks' bytes (the hub's root), not counted in storedBytes; or null. */
  backingDir: string | null;
}

export type StoreEvent = 'change' | 'evict';

export class Store {
  readonly #e: Engine;
  /** Random id of this index, fixed for the store's life: sequence numbers are comparable only within one id. */
  readonly indexId: string;

  private constructor(engine: Engine, indexId: string) {
    this.#e = engine;
    this.indexId = indexId;
  }

  static async open(opts: StoreOptions): Promise<Store> {
    const engine = await Engine.open(opts);
    try {
      const clean = (await engine.idx.meta.get('clean')) === true;
      await recover(engine, !clean);
      await engine.idx.putMetaSync('clean', false);
      await engine.maybeEvict(); // the budget may have been lowered since the last start
      return new Store(engine, await loadIndexId(engine));
    } catch (err) {
      await engine.idx.close().catch(() => {});
      throw err;
    }
  }

  get dir(): string {
    return this.#e.dir;
  }

  /** The highest change-sequence number so far. */
  get seq(): number {
    return this.#e.counters.seq;
  }

  /** Stores a stream as the next version of `path` (which may be named late: see IngestName). */
  ingest(path: IngestName, source: AsyncIterable<Uint8Array>, meta?: IngestMeta, opts?: IngestOptions): Promise<IngestResult> {
    return ingest(this.#e, path, source, meta, opts);
  }

  /** Opens a file (or a byte range) for reading; resolves once the file is found, with its record. Counts an access. */
  openRead(path: string, range?: ReadRange, opts?: ReadOptions): Promise<OpenedRead> {
    return openRead(this.#e, path, range, opts);
  }

  async read(path: string, range?: ReadRange): Promise<Readable> {
    return (await openRead(this.#e, path, range)).stream;
  }

  /** The live record, or throws 'not_found'. */
  async stat(path: string): Promise<FileRecord> {
    validateName(path);
    const r = await this.#e.idx.getFile(path);
    if (!r) throw new StoreError('not_found', `no such file: ${path}`, { details: { path } });
    return r;
  }

  /** The live record or the tombstone, if any. */
  async record(path: string): Promise<FileRecord | undefined> {
    validateName(path);
    return currentRecord(this.#e, path);
  }

  /** Immediate children of a directory ('' = root), files and sub-directories, in name order. */
  list(dir?: string): Promise<DirEntry[]> {
    return listDir(this.#e, dir);
  }

  /** Deletes a file: its record becomes a tombstone in the change feed; unreferenced chunks are removed. */
  delete(path: string, opts: { baseVersion?: number; sync?: boolean } = {}): Promise<FileRecord> {
    return deleteFile(this.#e, path, opts);
  }

  /**
   * Moves a file without copying a byte: in one transaction, a new version of `to` with the same chunks, metadata and
   * state as `from`, and a tombstone at `from`; the change feed (and so sync) sees an add and a delete. An existing
   * `to` is overwritten (its next version). Returns the record at `to`.
   */
  rename(from: string, to: string, opts: { sync?: boolean } = {}): Promise<FileRecord> {
    return renameFile(this.#e, from, to, opts);
  }

  /**
   * Makes a version assembled from chunks visible (the sync layer's path: putChunk the missing chunks, then commit).
   * Visible only if every chunk is present (unless allowRemote); optimistic concurrency through baseVersion.
   */
  commitFile(path: string, meta: CommitMeta, opts: CommitOptions = {}): Promise<FileRecord> {
    return commitFile(this.#e, path, meta, opts);
  }

  /**
   * commitFile for many paths in one index transaction (all chunks must be here, unless `allowRemote`: then an item
   * with chunks missing becomes a 'remote' version). Per item: its record, or the error commitFile would have thrown
   * for it; failed items leave nothing behind and do not stop the others.
   */
  commitFiles(items: CommitItem[], opts: { sync?: boolean; allowRemote?: boolean } = {}): Promise<(FileRecord | StoreError)[]> {
    return commitFiles(this.#e, items, opts);
  }

  /**
   * Stores one chunk after checking that `bytes` hash to `hash` ('hash_mismatch' otherwise). Returns false if it was
   * already present. `clean: true` for chunks that came from the hub (they need no upload); default dirty.
   */
  putChunk(hash: string, bytes: Uint8Array, opts: { clean?: boolean } = {}): Promise<boolean> {
    return putChunk(this.#e, hash, bytes, opts);
  }

  /** The folder whose files may hold chunk bytes (StoreOptions.backingDir), if any. */
  get backingDir(): string | undefined {
    return this.#e.backingDir;
  }

  /**
   * The backing folder's files at these paths (StoreOptions.backingDir) now hold these versions: their chunks are read
   * from there from now on, and their chunk files go (one durable transaction). Per item: false, changing nothing, if
   * the path has moved on to another version. `awaitUnlinks: false`: resolve once the transaction is durable, without
   * waiting for the chunk files to go.
   */
  noteWritten(items: WrittenFile[], opts: { awaitUnlinks?: boolean } = {}): Promise<boolean[]> {
    return noteWritten(this.#e, items, opts);
  }

  /** Chunks written durably into a staging file of the backing folder now count as held there (see backing.ts). */
  noteStaged(path: string, chunks: StagedChunk[]): Promise<void> {
    return noteStaged(this.#e, path, chunks);
  }

  /** Where the backing file at `path` holds each of `hashes`, as far as the index knows. */
  locatedAt(path: string, hashes: string[]): Promise<(number | undefined)[]> {
    return locatedAt(this.#e, path, hashes);
  }

  /** The backing-folder paths with locations whose last segment `matches`, each with its chunks. */
  locatedPaths(matches: (name: string) => boolean): Promise<Map<string, string[]>> {
    return locatedPaths(this.#e, matches);
  }

  /** Forgets the locations of these chunks at `path` (a backing file that is gone or no longer wanted). */
  forgetLocations(path: string, hashes: string[]): Promise<void> {
    return forgetLocations(this.#e, path, hashes);
  }

  /** A chunk's bytes, verified against its hash ('not_found' if absent here, 'corrupt_chunk' if damaged). */
  getChunk(hash: string): Promise<Buffer> {
    return readPresentChunk(this.#e, hash, (row) => this.#e.readChunk(hash, row.size, {}, row));
  }

  /**
   * getChunk into a reusable read buffer (read-buffers.ts) instead of a fresh one: for senders that can tell when the
   * bytes are no longer referenced. Call `release()` exactly once after that (e.g. from a socket write's callback);
   * `data` must not be used afterwards. `verify: false`: see ReadOpts.verify (bytes for a peer that checks them).
   */
  leaseChunk(hash: string, opts: { verify?: boolean } = {}): Promise<{ data: Buffer; release: () => void }> {
    return readPresentChunk(this.#e, hash, (row) => this.#e.readLeased(hash, row.size, row, opts));
  }

  /**
   * The chunk file holding `hash`'s bytes, held (neither unlinked nor evicted) until `release()`; undefined when its
   * bytes are not in a chunk file (only in the backing folder, or not here). For a caller that hands the file itself
   * to another thread: the hub's root writer links it into place instead of reading and writing its bytes. Nothing
   * is verified here.
   */
  holdChunkFile(hash: string): Promise<{ file: string; size: number; release: () => void } | undefined> {
    return holdChunkFile(this.#e, hash);
  }

  /** The subset of `hashes` whose bytes are here (input order, duplicates kept). */
  async hasChunks(hashes: string[]): Promise<string[]> {
    for (const h of hashes) checkHexHash(h);
    const rows = await this.#e.idx.getChunks(hashes);
    return hashes.filter((_, i) => hasBytes(rows[i]));
  }

  /** Distinct chunks of a file whose bytes are not here (what the sync layer must fetch before reading it). */
  async missingChunks(path: string): Promise<ChunkRef[]> {
    const rec = await this.stat(path);
    const seen = new Set<string>();
    const distinct = rec.chunks.filter((c) => !seen.has(c.hash) && seen.add(c.hash));
    const rows = await this.#e.idx.getChunks(distinct.map((c) => c.hash));
    return distinct.filter((_, i) => !hasBytes(rows[i]));
  }

  /** The hub acknowledged these chunks: they may be evicted from now on. Returns how many were dirty. */
  markClean(hashes: string[], opts: { sync?: boolean } = {}): Promise<number> {
    return markClean(this.#e, hashes, opts);
  }

  /** For each of `hashes`: whether the hub has not acknowledged it yet (markClean). */
  async dirty(hashes: string[]): Promise<boolean[]> {
    return readManyNow(this.#e.idx.dirty, hashes).map((size) => size !== undefined);
  }

  /** Chunks not yet acknowledged by the hub, in hash order. */
  async *dirtyChunks(): AsyncGenerator<ChunkRef> {
    for await (const [hash, size] of this.#e.idx.dirty.iterator()) yield { hash, size };
  }

  /** The decayed access count of `path` now (0 if never accessed). */
  heat(path: string): Promise<number> {
    return heatOf(this.#e, path);
  }

  /** A 'remote' file whose chunks are all here again becomes 'local' (no new version). */
  async promoteIfComplete(path: string, opts: { sync?: boolean } = {}): Promise<FileRecord | undefined> {
    return (await promoteIfComplete(this.#e, [path], opts))[0];
  }

  /** promoteIfComplete for many files in one index transaction (after a fetch of many files' chunks). */
  promoteAllComplete(paths: string[], opts: { sync?: boolean; announce?: boolean } = {}): Promise<(FileRecord | undefined)[]> {
    return promoteIfComplete(this.#e, paths, opts);
  }

  /**
   * A version whose chunks turned out gone (from the backing folder, or a rotten chunk file) becomes 'remote' under a
   * new sequence number (lost-bytes.ts); places that no longer hold their bytes are forgotten. Returns the record
   * afterwards: still 'local' if every chunk has its bytes after all.
   */
  demoteIfLost(path: string, version: number): Promise<FileRecord | undefined> {
    return demoteIfLost(this.#e, path, version);
  }

  /**
   * Forgets the places of these chunks (chunk files, backing-folder locations) that no longer hold their bytes, read
   * back; returns the chunks left without.
   */
  forgetGoneBytes(hashes: string[]): Promise<string[]> {
    for (const h of hashes) checkHexHash(h);
    return forgetGoneBytes(this.#e, hashes);
  }

  /** Live records at `dir` or below ('' = all), in path order. */
  filesUnder(dir: string): AsyncGenerator<FileRecord> {
    return filesUnder(this.#e, dir);
  }

  /** Pinned files are never evicted. */
  pin(path: string, pinned = true, opts: { sync?: boolean } = {}): Promise<FileRecord> {
    return pinFile(this.#e, path, pinned, opts);
  }

  /** Makes every index write so far durable (LevelDB: one synced write flushes the log with everything before it). */
  async flush(): Promise<void> {
    const e = this.#e;
    await e.track(() => e.idx.putMetaSync('flushedAt', e.now()));
  }

  /**
   * Hashes a received chunk ahead of putChunks: true if `data` is the chunk `hash`. putChunks then skips hashing this
   * buffer, so a receiver can check each chunk as it arrives while the previous batch is written.
   */
  checkChunk(hash: string, data: Uint8Array): Promise<boolean> {
    return checkChunk(this.#e, hash, data);
  }

  /**
   * A BLAKE3 session in the store's worker thread: each chunk passed in is hashed and fed, in order, into the hash of
   * their concatenation (the whole file's, when they are a file's chunks in order). No SHA-256. Each chunk's buffer
   * travels to the worker and back (the returned one is the same memory, a new object). Null without workers.
   */
  hashSession(): HashSession | null {
    return this.#e.workers.session({ sha256: false });
  }

  /** putChunk for a batch (one directory fsync and one index transaction for all); per chunk: stored/present/rejected. */
  putChunks(chunks: { hash: string; data: Uint8Array }[], opts: { clean?: boolean; sync?: boolean } = {}): Promise<PutOutcome[]> {
    return putChunks(this.#e, chunks, { ...opts, maxChunkBytes: MAX_CHUNK_BYTES });
  }

  /** Records (live and tombstones) changed after `seq`, in seq order; a consistent snapshot. */
  changesSince(seq: number): AsyncGenerator<FileRecord> {
    return changesSince(this.#e, seq);
  }

  /** changesSince(seq), then every later change as it is committed, until `signal` aborts or the store closes. */
  followChanges(seq: number, opts: { signal?: AbortSignal } = {}): AsyncGenerator<FileRecord> {
    return followChanges(this.#e, seq, opts);
  }

  /**
   * 'change' (FileRecord, and the record it replaced if any) after every committed version; 'evict' (FileRecord) when
   * a file becomes remote.
   */
  on(event: StoreEvent, listener: (record: FileRecord, previous?: FileRecord) => void): this {
    this.#e.events.on(event, listener);
    return this;
  }

  off(event: StoreEvent, listener: (record: FileRecord, previous?: FileRecord) => void): this {
    this.#e.events.off(event, listener);
    return this;
  }

  stats(): StoreStats {
    const e = this.#e;
    const c = e.counters;
    return {
      files: c.files,
      logicalBytes: c.logicalBytes,
      localFiles: c.localFiles,
      localBytes: c.localBytes,
      storedBytes: c.storedBytes,
      chunks: c.chunks,
      dedupRatio: c.storedBytes > 0 ? c.localBytes / c.storedBytes : 1,
      dirtyChunks: c.dirtyChunks,
      dirtyBytes: c.dirtyBytes,
      budgetBytes: e.budget,
      budgetUse: c.storedBytes / e.budget,
      highWater: e.highWater,
      lowWater: e.lowWater,
      seq: c.seq,
      hasher: e.blake3.name,
      chunkParams: { ...e.config.chunkParams },
      heldChunks: e.holds.size,
      readBuffersInUse: e.readBuffers.inUse,
      backingDir: e.backingDir ?? null,
    };
  }

  /** Re-hashes every chunk and cross-checks every index. Blocks writers while it runs. */
  fsck(): Promise<FsckReport> {
    return fsck(this.#e);
  }

  /** Removes temp files, chunk files no index row wants, and staged chunks nobody committed within the grace period. */
  gc(): Promise<GcReport> {
    return gc(this.#e);
  }

  /** Evicts clean, unpinned files (coldest first) until stored bytes are at most `targetBytes` (default: low water). */
  async evict(targetBytes?: number): Promise<{ files: number; bytes: number }> {
    const e = this.#e;
    return e.lock.run(() => evictLocked(e, targetBytes ?? e.budget * e.lowWater));
  }

  async close(): Promise<void> {
    await this.#e.close();
  }
}

export function openStore(opts: StoreOptions): Promise<Store> {
  return Store.open(opts);
}
