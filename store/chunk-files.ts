// Chunk bytes on disk: <root>/chunks/<first two hex chars>/<64-hex hash>, one file per chunk. Writes go to
// <root>/tmp/, are fsynced, then renamed into place, so a chunk file under its final name is complete; the fan-out
// directories are fsynced before an index batch may reference the renamed files. The small chunks of a batch are
// the exception: written plainly and renamed, then flushed together (makeDurable) before the batch's rows are
// written, so a crash can leave such a file incomplete under its final name, but never one the index refers to
// (recovery removes files the index does not want). Every read re-hashes the bytes: a chunk that rotted on disk is an
// error, never wrong bytes.

import fs from 'node:fs/promises';
import fsCb from 'node:fs';
import path from 'node:path';
import type { Blake3 } from './hasher.ts';
import { isHexHash, toHex } from './hasher.ts';
import { mapIoError } from './errors.ts';
import type { ChunkWorkers } from './chunk-workers.ts';
import type { ReadOutcome } from './chunk-workers.ts';
import { WorkerWrites } from './worker-writes.ts';
import { GROUP_SYNC_BYTES, SyncFsUnavailable, syncFileSystem } from './syncfs.ts';
import { mapLimit } from './map-limit.ts';
import { uniqueSuffix } from './temp-names.ts';
import { callFs, closeAfter, openFd } from './fd-calls.ts';
import { corruptChunk, readChunkHere } from './chunk-read.ts';
import { AlignedArena, DIRECT_CREATE_FLAGS, DirectWriter, directUnsupported, O_DIRECT, writeAll, type AlignedSlot } from './direct-io.ts';

/** The filesystem calls the chunk writer makes, injectable so tests can make the disk "full" at a chosen point. */
export interface ChunkIo {
  /** Opens a new temp file for writing and returns its fd (default: create-exclusive, with O_DSYNC when `dsync`). */
  openTemp(tmpPath: string, dsync: boolean): Promise<number>;
  /** Makes everything written to the file system holding `dir` durable: syncfs(2) (default: coreutils' `sync -f`). */
  syncFs(dir: string): Promise<void>;
  /** Opens a new temp file for durable direct writes (default: create-exclusive, O_DIRECT | O_DSYNC). */
  openDirect(tmpPath: string): Promise<number>;
}

// O_DSYNC: the write itself returns only once the data is durable, which is fdatasync's guarantee without a second
// system call and thread-pool round trip per chunk (~15 % more ingest throughput on the dev VM).
const { O_WRONLY, O_CREAT, O_EXCL, O_DSYNC } = fsCb.constants;
const defaultIo: ChunkIo = {
  openTemp: (p, dsync) => openFd(p, O_WRONLY | O_CREAT | O_EXCL | (dsync ? O_DSYNC : 0)),
  syncFs: syncFileSystem,
  openDirect: (p) => openFd(p, DIRECT_CREATE_FLAGS),
};

/**
 * Chunks of at least this size that are made durable as they are written go around the page cache (direct-io.ts),
 * each through a slot of an arena of DIRECT_ARENA_BYTES (waiting for room); smaller ones go through the page cache.
 */
const DIRECT_MIN_BYTES = 256 * 1024;
const DIRECT_ARENA_BYTES = 16 * 1024 * 1024;

/** Hash in slices of this size, yielding to the event loop between them, so reading a large chunk stays fair. */
const HASH_SLICE = 1024 * 1024;

export interface ReadOpts {
  /** Also refuse a file longer than the chunk (fsck). */
  strict?: boolean;
  into?: SharedArrayBuffer;
  /**
   * false: a chunk worker checks the size but not the hash (the main-thread fallback checks both). Only for bytes
   * that go to a peer which hashes every chunk it receives (an upload): on the Pi that check is a second BLAKE3 of
   * every pushed byte, and a rotted chunk is refused there as a wrong one, named, with nothing of it stored.
   */
  verify?: boolean;
}

export class ChunkFiles {
  readonly chunkDir: string;
  readonly tmpDir: string;
  private readonly blake3: Blake3;
  private readonly io: ChunkIo;
  private readonly dsync: boolean;
  /** Whether durable large chunks are written with O_DIRECT (false once the file system refused it). */
  private direct: boolean;
  /** The aligned memory direct writes go through (none without direct writes: 16 MiB the hub would never use). */
  private readonly arena: AlignedArena | undefined;
  /** Whether syncFs works here (false once it could not be run at all: no `sync` program). */
  private groupSync: boolean;
  private readonly workers: ChunkWorkers | undefined;
  /** writeMany's batches, by a chunk worker (none without workers). */
  private readonly workerWrites: WorkerWrites | undefined;
  private readonly madeDirs = new Set<string>();
  /** Temp files being written right now (gc must not touch them). */
  private readonly activeTemps = new Set<string>();

  /**
   * `direct: false`: large chunks go through the page cache too. For a store whose chunk files are only a stop on the
   * way into its backing folder (the hub: a pushed file's chunks are read back at once, for the commit's whole-file
   * check and the copy into the root, and then dropped): written around the cache, each was read back from the disk.
   */
  constructor(root: string, blake3: Blake3, io?: Partial<ChunkIo>, workers?: ChunkWorkers, opts: { direct?: boolean } = {}) {
    this.chunkDir = path.join(root, 'chunks');
    this.tmpDir = path.join(root, 'tmp');
    this.blake3 = blake3;
    this.io = { ...defaultIo, ...io };
    // An injected opener may not use O_DSYNC, so those writes are fdatasync'd explicitly.
    this.dsync = io?.openTemp === undefined;
    // An injected opener sees every write, unless direct writes are injected as well.
    this.direct = opts.direct !== false && O_DIRECT !== undefined && (io?.openTemp === undefined || io.openDirect !== undefined);
    this.arena = this.direct ? new AlignedArena(DIRECT_ARENA_BYTES) : undefined;
    this.groupSync = true;
    this.workers = workers;
    this.workerWrites = workers && new WorkerWrites(workers, { tempOf: (h) => this.tempOf(h), pathOf: (h) => this.pathOf(h), activeTemps: this.activeTemps });
  }

  /** A fresh temp file name for chunk `hash`. */
  private tempOf(hash: string): string {
    return path.join(this.tmpDir, `${hash.slice(0, 16)}.${uniqueSuffix()}.tmp`);
  }

  async init(): Promise<void> {
    await fs.mkdir(this.chunkDir, { recursive: true });
    await fs.mkdir(this.tmpDir, { recursive: true });
  }

  pathOf(hash: string): string {
    // concatenated, not path.join: a hash is two hex fan-out characters and hex (isHexHash), nothing to normalize
    return `${this.chunkDir}${path.sep}${hash.slice(0, 2)}${path.sep}${hash}`;
  }

  /**
   * temp -> write (durable: O_DSYNC or fdatasync) -> rename. The caller has verified `hash` is the BLAKE3 of `data`.
   * Plain fds and callbacks rather than FileHandle: per chunk, the promise wrappers and FileHandle objects cost more
   * main-thread time than the write itself (a sync of 1 GB writes ~4,000 chunk files).
   * `later`: not durable yet (nor its name); the caller calls makeDurable() before anything may refer to it.
   */
  async write(hash: string, data: Uint8Array, later = false): Promise<void> {
    const slot = !later && this.direct && this.arena && data.length >= DIRECT_MIN_BYTES ? await this.arena.acquire(data.length) : undefined;
    try {
      if (slot && (await this.writeTemp(hash, (tmp) => this.fillDirect(tmp, data, slot)))) return;
      await this.writeTemp(hash, (tmp) => this.fillBuffered(tmp, data, later));
    } finally {
      slot?.release();
    }
  }

  /**
   * A temp file filled by `fill`, then renamed to the chunk's name; false (and no temp left) when `fill` answered
   * false, meaning: this way of writing does not work here, try the other.
   */
  private async writeTemp(hash: string, fill: (tmp: string) => Promise<boolean>): Promise<boolean> {
    const tmp = this.tempOf(hash);
    this.activeTemps.add(tmp);
    try {
      if (!(await fill(tmp))) {
        await fs.rm(tmp, { force: true });
        return false;
      }
      const dir = path.dirname(this.pathOf(hash));
      if (!this.madeDirs.has(dir)) {
        await fs.mkdir(dir, { recursive: true });
        this.madeDirs.add(dir);
      }
      await callFs<void>((cb) => fsCb.rename(tmp, this.pathOf(hash), cb));
      return true;
    } catch (err) {
      await fs.rm(tmp, { force: true }).catch(() => {});
      throw mapIoError(err, `writing chunk ${hash}`);
    } finally {
      this.activeTemps.delete(tmp);
    }
  }

  private async fillBuffered(tmp: string, data: Uint8Array, later: boolean): Promise<boolean> {
    const fd = await this.io.openTemp(tmp, !later);
    await closeAfter([fd], async () => {
      await writeAll(fd, data, 0);
      if (!this.dsync && !later) await callFs<void>((cb) => fsCb.fdatasync(fd, cb));
    });
    return true;
  }

  /**
   * The whole blocks from an aligned copy with O_DIRECT | O_DSYNC, the last partial block through an ordinary O_DSYNC
   * descriptor. EINVAL (no O_DIRECT on this file system, or an alignment it does not take) turns direct writes off
   * for good and answers false; the chunk is then written the ordinary way.
   */
  private async fillDirect(tmp: string, data: Uint8Array, slot: AlignedSlot): Promise<boolean> {
    try {
      const fd = await this.io.openDirect(tmp);
      const fds = [fd];
      await closeAfter(fds, async () => {
        const w = new DirectWriter(fd, slot);
        await w.write(data);
        const rest = await w.end();
        if (rest.tail.length === 0) return;
        const tail = await openFd(tmp, fsCb.constants.O_WRONLY | fsCb.constants.O_DSYNC);
        fds.push(tail);
        await writeAll(tail, rest.tail, rest.at);
      });
      return true;
    } catch (err) {
      if (!directUnsupported(err)) throw err;
      this.direct = false;
      return false;
    }
  }

  /**
   * write(…, later) for many small chunks at once, by a chunk worker with synchronous calls: one message instead of
   * four thread-pool round trips per chunk on this thread. Resolves false when no worker can take it (or an injected
   * opener must be used): the caller writes them one by one instead (again, if a worker died while writing them). On
   * a failure, the chunks before the failing one are in place (unreferenced, like any chunk of a failed batch).
   */
  async writeMany(items: { hash: string; data: Uint8Array }[]): Promise<boolean> {
    return this.dsync && this.workerWrites ? this.workerWrites.write(items) : false;
  }

  /** Whether write() of a chunk of `size` bytes in a batch should leave its flush to makeDurable(). */
  groupSyncs(size: number): boolean {
    return this.groupSync && size <= GROUP_SYNC_BYTES;
  }

  /**
   * Makes a batch of written chunks durable, contents and names: `later` are those written with `later` (contents not
   * flushed yet), `written` all of them. One syncfs covers both; where syncfs cannot run at all, each `later` chunk is
   * fdatasync'd and the fan-out directories are fsynced, and later batches flush each chunk as it is written.
   */
  async makeDurable(written: string[], later: string[]): Promise<void> {
    if (later.length > 0 && this.groupSync) {
      try {
        await this.io.syncFs(this.chunkDir);
        return;
      } catch (err) {
        if (!(err instanceof SyncFsUnavailable)) throw mapIoError(err, 'flushing chunk files');
        this.groupSync = false;
      }
    }
    await mapLimit(later, 16, async (h) => {
      const fd = await openFd(this.pathOf(h), fsCb.constants.O_RDONLY);
      try {
        await callFs<void>((cb) => fsCb.fdatasync(fd, cb));
      } finally {
        fsCb.close(fd, () => {});
      }
    });
    await this.syncDirsOf(written);
  }

  /** Makes renames into these chunks' fan-out directories durable. */
  async syncDirsOf(hashes: Iterable<string>): Promise<void> {
    const dirs = new Set<string>();
    for (const h of hashes) dirs.add(path.dirname(this.pathOf(h)));
    await Promise.all(
      [...dirs].map(async (dir) => {
        const fh = await fs.open(dir, 'r');
        try {
          await fh.sync();
        } finally {
          await fh.close();
        }
      }),
    );
  }

  /**
   * Reads a chunk and verifies it against its hash (and size, when known). Missing or altered -> 'corrupt_chunk'.
   * Done by the chunk workers when there are any (see chunk-workers.ts), else on this thread. With `into` a worker
   * reads into that buffer and the result is a view of it (the main-thread fallback still returns a new buffer).
   */
  read(hash: string, expectedSize?: number, opts: ReadOpts = {}): Promise<Buffer> {
    return this.readFrom(this.pathOf(hash), 0, hash, expectedSize, opts);
  }

  /** read() of a chunk's bytes at `offset` in any file (a chunk file, or a file of the store's backing folder). */
  async readFrom(file: string, offset: number, hash: string, expectedSize?: number, opts: ReadOpts = {}): Promise<Buffer> {
    if (this.workers && expectedSize !== undefined) {
      const into = opts.into && opts.into.byteLength >= expectedSize ? opts.into : undefined;
      const pending = this.workers.read({ file, offset, hash, size: expectedSize, strict: opts.strict ?? false, ...(into ? { into } : {}), ...(opts.verify === false ? { verify: false } : {}) });
      if (pending) {
        let out: ReadOutcome | undefined;
        try {
          out = await pending;
        } catch {
          // the worker died: read here instead
        }
        if (out?.ok) return out.bytes ? Buffer.from(out.bytes) : Buffer.from(into!, 0, expectedSize);
        if (out && out.kind !== 'io') throw corruptChunk(hash, expectedSize, out);
      }
    }
    return readChunkHere(this.blake3, file, offset, hash, expectedSize, opts);
  }

  /** BLAKE3 hex of `data`, yielding to the event loop between 1 MiB slices. */
  async hashSliced(data: Uint8Array): Promise<string> {
    if (data.length <= HASH_SLICE) return toHex(this.blake3.hash(data));
    const h = this.blake3.create();
    try {
      for (let off = 0; off < data.length; off += HASH_SLICE) {
        if (off > 0) await new Promise<void>((resolve) => setImmediate(resolve));
        h.update(data.subarray(off, off + HASH_SLICE));
      }
      return toHex(h.digest());
    } finally {
      h.dispose();
    }
  }

  async exists(hash: string): Promise<boolean> {
    try {
      await fs.access(this.pathOf(hash));
      return true;
    } catch {
      return false;
    }
  }

  async unlink(hash: string): Promise<void> {
    // unlink(2), not fs.rm: rm lstats first and goes through its recursive machinery, twice the main thread's work for
    // the thousands of chunk files a push frees on the hub.
    await fs.unlink(this.pathOf(hash)).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
  }

  /**
   * Removes these chunk files (a missing one counts as removed); per hash, null or why it could not be removed. By a
   * chunk worker in one message when there is one: each unlink through the thread pool cost the main thread ~40 us
   * (a cross-thread wake-up on this VM), ~0.13 s per push of 3,000 small files to the hub.
   */
  async unlinkMany(hashes: string[]): Promise<(Error | null)[]> {
    const pending = this.workers?.unlink(hashes.map((h) => this.pathOf(h)));
    if (pending) {
      try {
        const out = await pending;
        return out.errors.map((e) => (e ? (mapIoError(Object.assign(new Error(e.message), { code: e.code }), 'removing a chunk file') as Error) : null));
      } catch {
        // the worker died: remove them here
      }
    }
    return Promise.all(hashes.map((h) => this.unlink(h).then(() => null, (err: Error) => err)));
  }

  /** Every file under chunks/, with whether its name is a valid chunk name in the right fan-out directory. */
  async *scan(): AsyncGenerator<{ file: string; hash: string | null; size: number }> {
    let fanouts: string[];
    try {
      fanouts = (await fs.readdir(this.chunkDir)).sort();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    for (const fan of fanouts) {
      const dir = path.join(this.chunkDir, fan);
      let names: string[];
      try {
        names = (await fs.readdir(dir)).sort();
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOTDIR') {
          yield { file: dir, hash: null, size: 0 };
          continue;
        }
        throw err;
      }
      for (const name of names) {
        const file = path.join(dir, name);
        const st = await fs.stat(file).catch(() => null);
        if (!st) continue;
        const ok = st.isFile() && isHexHash(name) && name.startsWith(fan);
        yield { file, hash: ok ? name : null, size: st.size };
      }
    }
  }

  /** Removes temp files not being written right now; returns how many and their bytes. */
  async cleanTemp(): Promise<{ files: number; bytes: number }> {
    let files = 0;
    let bytes = 0;
    for (const name of await fs.readdir(this.tmpDir).catch(() => [] as string[])) {
      const p = path.join(this.tmpDir, name);
      if (this.activeTemps.has(p)) continue;
      const st = await fs.stat(p).catch(() => null);
      await fs.rm(p, { force: true, recursive: true });
      files += 1;
      bytes += st?.size ?? 0;
    }
    return { files, bytes };
  }

  /** Temp files present that no writer owns (fsck reports them). */
  async strayTemps(): Promise<string[]> {
    const names = await fs.readdir(this.tmpDir).catch(() => [] as string[]);
    return names.map((n) => path.join(this.tmpDir, n)).filter((p) => !this.activeTemps.has(p));
  }
}

