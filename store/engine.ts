// The shared core of a store instance: indexes, chunk files, the write lock, chunk holds, the byte budget and the
// counters. The operation modules (ingest, reader, commit, cache-policy, maintenance) work on an Engine; store.ts is
// the public facade over them.

import { EventEmitter } from 'node:events';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Blake3, Blake3Choice } from './hasher.ts';
import { blake3 as loadBlake3 } from './hasher.ts';
import type { ChunkParams } from './chunker.ts';
import { DEFAULT_CHUNK_PARAMS, checkChunkParams } from './chunker.ts';
import type { ChunkIo, ReadOpts } from './chunk-files.ts';
import { ChunkFiles } from './chunk-files.ts';
import { ChunkWorkers } from './chunk-workers.ts';
import type { Location, StoreConfig } from './indexes.ts';
import { Indexes, Tx } from './indexes.ts';
import type { ChunkRow, Counters, FileRecord } from './records.ts';
import { ChunkHolds } from './holds.ts';
import { ChunkWrites } from './chunk-writes.ts';
import { ReadBuffers } from './read-buffers.ts';
import { Mutex } from './lock.ts';
import { StoreError, isStoreError } from './errors.ts';
import { evictLocked, formatBytes } from './cache-policy.ts';

export interface StoreOptions {
  /** A directory the store owns (the daemon passes <dataDir>/store). Created if missing. */
  dir: string;
  /** Byte budget for chunk bytes on disk. null/undefined: 80 % of the free space seen when the store was created. */
  cacheMaxBytes?: number | null;
  /** Fractions of the budget: eviction starts above highWater and frees down to lowWater. */
  highWater?: number;
  lowWater?: number;
  /** Clock (ms since epoch), injectable for hotness tests. */
  now?: () => number;
  blake3?: Blake3Choice;
  /** Only used when the store is created; afterwards the persisted parameters win (cut points must never change). */
  chunkParams?: ChunkParams;
  chunkIo?: Partial<ChunkIo>;
  /** Chunks received by putChunk that no file references are removed by gc after this long (default 24 h). */
  stagedGraceMs?: number;
  /** Chunk files one ingest has in flight (default 8: each waits for its own fsync; 8 beat 4 by ~15-20 % on the dev
   *  VM; memory is one pooled buffer per chunk in flight, touched only as far as chunks reach, ~1-2 MiB each). */
  writeConcurrency?: number;
  /** Worker threads that read + verify chunks (and hash ingests, see below). Default 1 if there is more than one
   *  core, else 0 = everything on the main thread. Each costs ~22 MB RSS once started. */
  workers?: number;
  /** Hash ingests in a worker too. Default: with 4+ cores (the Pi) there is a core to spare for it; on the 2-vCPU dev
   *  VM it measured no faster and cost the worker's memory during ingest. */
  ingestInWorker?: boolean;
  /**
   * A folder whose files may hold chunk bytes in place of chunk files (the hub's root: BaluHost's files, kept once on
   * the NAS's disk). Remembered by the store, so a later open without it (the CLI's fsck) still finds those bytes.
   */
  backingDir?: string;
}

/**
 * Whether a failed readLocation means that the file there no longer holds the chunk (edited or removed behind the
 * store's back, or a directory now) rather than a fault of this machine's disk.
 */
export function isLostLocation(err: unknown): boolean {
  return isStoreError(err, 'corrupt_chunk') || (err as NodeJS.ErrnoException).code === 'EISDIR';
}

export class Engine {
  readonly dir: string;
  readonly idx: Indexes;
  readonly files: ChunkFiles;
  readonly workers: ChunkWorkers;
  readonly blake3: Blake3;
  readonly holds = new ChunkHolds();
  /**
   * Shared by the reads that opt in (ReadOptions.reuseBuffers, leased chunks); keeps at most 32 MiB of idle buffers.
   * With 16 MiB (and 1 MiB steps, so every small chunk took a 1 MiB buffer) a push's concurrent uploads kept
   * dropping buffers and allocating new ones: the dropped ones waited for a full GC, and the pi's daemon ended a 1 GB
   * push at 343-399 MB of RSS, now ~230 MB.
   */
  readonly readBuffers = new ReadBuffers(32 * 1024 * 1024);
  /** Chunk-sized buffers kept from one ingest for the next (see BufferPool in ingest.ts). */
  readonly spareChunkBuffers: Buffer[] = [];
  readonly lock = new Mutex();
  readonly events = new EventEmitter();
  readonly config: StoreConfig;
  readonly budget: number;
  readonly highWater: number;
  readonly lowWater: number;
  readonly now: () => number;
  readonly stagedGraceMs: number;
  readonly writeConcurrency: number;
  readonly ingestInWorker: boolean;
  /** See StoreOptions.backingDir; undefined: every chunk's bytes are in its chunk file. */
  readonly backingDir: string | undefined;
  counters: Counters;
  /** Bytes of chunk files written by operations that have not committed yet. */
  reserved = 0;
  closed = false;
  /** Set as soon as close() is called (closed follows once queued transactions have drained). */
  closing = false;
  activeOps = 0;
  /** Chunk-file writes and unlinks, kept from overlapping for the same chunk. */
  readonly writes: ChunkWrites;

  private constructor(init: {
    opts: StoreOptions;
    idx: Indexes;
    files: ChunkFiles;
    workers: ChunkWorkers;
    blake3: Blake3;
    config: StoreConfig;
    counters: Counters;
    backingDir: string | undefined;
  }) {
    const { opts } = init;
    this.dir = opts.dir;
    this.idx = init.idx;
    this.files = init.files;
    this.workers = init.workers;
    this.blake3 = init.blake3;
    this.config = init.config;
    this.counters = init.counters;
    this.budget = opts.cacheMaxBytes ?? init.config.defaultBudget;
    this.highWater = opts.highWater ?? 0.85;
    this.lowWater = opts.lowWater ?? 0.7;
    this.now = opts.now ?? Date.now;
    this.stagedGraceMs = opts.stagedGraceMs ?? 24 * 3600 * 1000;
    this.writeConcurrency = Math.max(1, opts.writeConcurrency ?? 8);
    this.ingestInWorker = opts.ingestInWorker ?? os.availableParallelism() >= 4;
    this.backingDir = init.backingDir;
    this.writes = new ChunkWrites(this.files, this.holds, this.writeConcurrency, (hash) => !this.closed && !this.idx.chunks.getSync(hash)?.p);
    this.events.setMaxListeners(0);
  }

  static async open(opts: StoreOptions): Promise<Engine> {
    if (opts.cacheMaxBytes != null && !(Number.isFinite(opts.cacheMaxBytes) && opts.cacheMaxBytes > 0)) {
      throw new StoreError('invalid_argument', `cacheMaxBytes must be a positive number: ${opts.cacheMaxBytes}`);
    }
    const high = opts.highWater ?? 0.85;
    const low = opts.lowWater ?? 0.7;
    if (!(low > 0 && low < high && high <= 1)) {
      throw new StoreError('invalid_argument', `need 0 < lowWater < highWater <= 1 (got ${low}, ${high})`);
    }
    const hasher = loadBlake3(opts.blake3 ?? 'auto');
    await fs.mkdir(opts.dir, { recursive: true });
    const workers = new ChunkWorkers(opts.workers ?? (os.availableParallelism() > 1 ? 1 : 0), hasher.name);
    // A store with a backing folder (the hub) keeps chunk files only until the folder holds their bytes (see ChunkFiles).
    const files = new ChunkFiles(opts.dir, hasher, opts.chunkIo, workers, { direct: opts.backingDir === undefined });
    await files.init();
    let idx: Indexes;
    try {
      idx = await Indexes.open(path.join(opts.dir, 'index'));
    } catch (err) {
      const e = err as { code?: string; cause?: { code?: string } };
      if (e.code === 'LEVEL_LOCKED' || e.cause?.code === 'LEVEL_LOCKED') {
        throw new StoreError('locked', `the store in ${opts.dir} is open in another process`, { cause: err, details: { dir: opts.dir } });
      }
      throw err;
    }
    try {
      let config = await idx.readConfig();
      if (!config) {
        const chunkParams = { ...(opts.chunkParams ?? DEFAULT_CHUNK_PARAMS) };
        checkChunkParams(chunkParams);
        const st = await fs.statfs(opts.dir);
        config = { format: 1, chunkParams, defaultBudget: Math.floor(st.bavail * st.bsize * 0.8) };
        await idx.putMetaSync('config', config);
      }
      const counters = await idx.readCounters();
      const saved = (await idx.meta.get('backingDir')) as string | undefined;
      const backingDir = opts.backingDir === undefined ? saved : path.resolve(opts.backingDir);
      if (backingDir !== saved) await idx.putMetaSync('backingDir', backingDir);
      return new Engine({ opts, idx, files, workers, blake3: hasher, config, counters, backingDir });
    } catch (err) {
      await workers.close();
      await idx.close().catch(() => {});
      throw err;
    }
  }

  assertOpen(): void {
    if (this.closed) throw new StoreError('closed', 'the store is closed');
  }

  /** Counts an operation as active for its duration (close() uses this to decide whether shutdown was clean). */
  async track<T>(fn: () => Promise<T>): Promise<T> {
    this.assertOpen();
    this.activeOps += 1;
    try {
      return await fn();
    } finally {
      this.activeOps -= 1;
    }
  }

  /**
   * Runs `fn` under the write lock and commits its transaction atomically. Resolves once its post-commit work is done
   * too, but that work (unlinking chunk files) no longer holds the lock: a note of 256 written files unlinked their
   * chunk files one after the other under it, and every upload's transaction of the moment waited behind them.
   */
  async transact<T>(fn: (tx: Tx) => Promise<T>, opts: { sync?: boolean } = {}): Promise<T> {
    let after: Promise<void> = Promise.resolve();
    const result = await this.lock.run(async () => {
      const done = await this.#commit(fn, opts);
      after = done.after;
      return done.result;
    });
    await after;
    return result;
  }

  /** transact() for a caller that holds the lock already; resolves after the post-commit work. */
  async transactLocked<T>(fn: (tx: Tx) => Promise<T>, opts: { sync?: boolean } = {}): Promise<T> {
    const done = await this.#commit(fn, opts);
    await done.after;
    return done.result;
  }

  async #commit<T>(fn: (tx: Tx) => Promise<T>, opts: { sync?: boolean }): Promise<{ result: T; after: Promise<void> }> {
    this.assertOpen();
    const tx = new Tx(this.idx, this.counters);
    const result = await fn(tx);
    await tx.write(opts.sync ?? true);
    this.counters = tx.counters;
    return { result, after: tx.runAfter() };
  }

  emitChange(record: FileRecord, previous?: FileRecord): void {
    this.events.emit('change', record, previous);
  }

  /** The absolute name of a store path in the backing folder. */
  backingPath(p: string): string {
    if (this.backingDir === undefined) throw new Error('this store has no backing folder');
    return path.join(this.backingDir, ...p.split('/'));
  }

  /**
   * A chunk's bytes, verified: from its chunk file, or else from the first of its backing-folder locations that still
   * holds them (a file there may have been changed since; its watcher brings the new version). `known`: the chunk's
   * row, when the caller has just read it.
   */
  async readChunk(hash: string, size: number, opts: ReadOpts = {}, known?: ChunkRow): Promise<Buffer> {
    if (this.backingDir === undefined) return this.files.read(hash, size, opts);
    const row = known ?? (await this.idx.getChunk(hash));
    let failure: unknown;
    if (row?.present || !row?.locs) {
      try {
        return await this.files.read(hash, size, opts);
      } catch (err) {
        if (!isStoreError(err, 'corrupt_chunk')) throw err;
        failure = err; // perhaps just replaced by a location (noteWritten): look there
      }
    }
    // the row's hint first; the iterator over every location only when it is absent or lost
    const hinted = row?.at;
    if (hinted) {
      try {
        return await this.readLocation(hinted, hash, size, opts);
      } catch (err) {
        if (!isLostLocation(err)) throw err;
        failure = err;
      }
    }
    for (const l of await this.idx.locationsOf(hash)) {
      if (hinted && l.path === hinted.path && l.offset === hinted.offset) continue;
      try {
        return await this.readLocation(l, hash, size, opts);
      } catch (err) {
        if (!isLostLocation(err)) throw err;
        failure = err;
      }
    }
    throw failure ?? new StoreError('corrupt_chunk', `chunk ${hash} is missing from disk`, { details: { hash } });
  }

  /** A chunk's bytes at one of its backing-folder locations, verified (see isLostLocation for what a failure means). */
  readLocation(l: Location, hash: string, size: number, opts: ReadOpts = {}): Promise<Buffer> {
    // always verified: a file of the backing folder can be edited behind the store's back
    return this.files.readFrom(this.backingPath(l.path), l.offset, hash, size, { ...opts, strict: false, verify: true });
  }

  /**
   * Reads and verifies a chunk into a reused buffer (read-buffers.ts) when the workers read; `release()` gives it back
   * (idempotent) and must come once nothing uses `data` any more. Without workers, or when a worker died mid-read and
   * read() fell back to a fresh buffer, `release` gives nothing back.
   */
  async readLeased(hash: string, size: number, known?: ChunkRow, opts: { verify?: boolean } = {}): Promise<{ data: Buffer; release: () => void }> {
    if (!this.workers.enabled) return { data: await this.readChunk(hash, size, opts, known), release: () => {} };
    const into = this.readBuffers.take(size);
    let data: Buffer;
    try {
      data = await this.readChunk(hash, size, { ...opts, into }, known);
    } catch (err) {
      this.readBuffers.give(into);
      throw err;
    }
    if (data.buffer !== into) {
      this.readBuffers.give(into);
      return { data, release: () => {} };
    }
    let released = false;
    return { data, release: () => void (released || ((released = true), this.readBuffers.give(into))) };
  }

  /**
   * Reserves budget for `bytes` of new chunk data. Above the high-water mark it first evicts clean, unpinned files
   * (coldest first) down to the low-water mark; if the budget still cannot take the bytes, everything left is dirty
   * or pinned and the operation fails with 'cache_full' rather than dropping data that exists nowhere else.
   */
  async reserve(bytes: number): Promise<void> {
    if (this.counters.storedBytes + this.reserved + bytes <= this.budget * this.highWater) {
      this.reserved += bytes;
      return;
    }
    await this.lock.run(() => evictLocked(this, Math.max(0, this.budget * this.lowWater - this.reserved - bytes)));
    if (this.counters.storedBytes + this.reserved + bytes > this.budget) {
      throw new StoreError(
        'cache_full',
        `cache full: ${formatBytes(this.counters.storedBytes + this.reserved)} of the ${formatBytes(this.budget)} budget are in use ` +
          `(${formatBytes(this.counters.dirtyBytes)} not yet synced to the hub, the rest pinned or in use) and nothing more can be evicted`,
        { details: { budget: this.budget, storedBytes: this.counters.storedBytes, dirtyBytes: this.counters.dirtyBytes, needed: bytes } },
      );
    }
    this.reserved += bytes;
  }

  unreserve(bytes: number): void {
    this.reserved = Math.max(0, this.reserved - bytes);
  }

  /** After a commit: if stored bytes passed the high-water mark, evict down to the low-water mark. */
  async maybeEvict(): Promise<void> {
    if (this.closed || this.counters.storedBytes + this.reserved <= this.budget * this.highWater) return;
    await this.lock.run(() => evictLocked(this, Math.max(0, this.budget * this.lowWater - this.reserved)));
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.events.emit('close');
    await this.writes.unlinksDone(); // the queued unlinks first: no file operation after close
    await this.lock.run(async () => {
      this.closed = true;
      // Unfinished operations may leave chunk files without index rows: record an unclean shutdown so the next open
      // runs the recovery scan. If even this marker cannot be written (a full disk), the one written at open says
      // "unclean" already, which is the right answer; the close goes on.
      await this.idx.putMetaSync('clean', this.activeOps === 0).catch(() => {});
    });
    this.events.removeAllListeners();
    await this.workers.close();
    await this.idx.close();
  }
}
