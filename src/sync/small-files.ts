// How the hub's root writer puts a small file (up to SMALL_FILE_BYTES) in place; a push brings thousands of them, so
// each goes the cheapest way that applies:
//   link    a file of one chunk whose chunk file the store holds: the worker links that file into place
//           (root-file-writer.ts), when the store drops its chunk files once the root holds their bytes (so the two
//           names do not share the inode for long). Reading each one back here and writing it again cost the event
//           loop and the disk twice what the link does.
//   batch   otherwise its chunks are read whole (each verified, into the store's reused buffers) and the worker writes
//           the bytes, in batches with two flushes each;
//   here    without a worker (it could not start, or died): writeAtomic on this thread.

import type { FileRecord, Lease, Store } from '../../store/index.ts';
import { RootChanged, writeAtomic, type DirectWrites, type DirSyncs, type DiskStat, type Expected } from './root-files.ts';
import type { RootFileWriter } from './root-file-writer.ts';

/** Files up to this size are written from their chunks read whole, without a stream. */
export const SMALL_FILE_BYTES = 256 * 1024;

export interface SmallFileOptions {
  store: Store;
  writer: RootFileWriter;
  /** The store keeps the root's bytes in the root (its chunk files go once the root holds them). */
  located: boolean;
  dirs: DirSyncs;
  direct: DirectWrites;
}

export class SmallFiles {
  readonly #o: SmallFileOptions;

  constructor(opts: SmallFileOptions) {
    this.#o = opts;
  }

  /**
   * Writes `rec` (at most SMALL_FILE_BYTES) atomically at `abs` with its mtime and mode, if `abs` still holds `expect`
   * then (RootChanged otherwise); the written file's stat.
   */
  async write(abs: string, rec: FileRecord, expect: Expected): Promise<DiskStat> {
    const meta = { mtimeMs: Math.floor(rec.mtimeMs), mode: rec.mode, size: rec.size };
    const written = (await this.#link(abs, rec, meta, expect)) ?? (await this.#batched(abs, rec, meta, expect));
    return written ?? this.#withChunks(rec, (parts) => writeAtomic(abs, parts, meta, { dirs: this.#o.dirs, direct: this.#o.direct, expect }));
  }

  /** Undefined when linking does not apply or failed (a chunk file that does not hold its chunk, another file system). */
  async #link(abs: string, rec: FileRecord, meta: { mtimeMs: number; mode: number }, expect: Expected): Promise<DiskStat | undefined> {
    const { store, writer } = this.#o;
    if (!this.#o.located || rec.chunks.length !== 1 || !writer.linkable) return undefined;
    const chunk = rec.chunks[0]!;
    const held = await store.holdChunkFile(chunk.hash);
    if (!held) return undefined;
    try {
      return await writer.link(abs, { file: held.file, hash: chunk.hash, size: held.size }, meta, expect);
    } catch (err) {
      if (err instanceof RootChanged) throw err; // the bytes would not be put there either
      return undefined;
    } finally {
      held.release();
    }
  }

  /**
   * Writes `parts` (the bytes of a file of at most SMALL_FILE_BYTES) atomically at `abs` with `meta`; the caller leaves
   * them unchanged until this settles. `expect` as for write().
   */
  async writeBytes(abs: string, parts: readonly Uint8Array[], meta: { mtimeMs: number; mode: number; size: number }, expect: Expected): Promise<DiskStat> {
    return (await this.#inWorker(abs, parts, meta, { stable: true, expect })) ?? writeAtomic(abs, parts, meta, { dirs: this.#o.dirs, direct: this.#o.direct, expect });
  }

  /** Undefined when there is no worker (it could not start, or died meanwhile). */
  async #batched(abs: string, rec: FileRecord, meta: { mtimeMs: number; mode: number }, expect: Expected): Promise<DiskStat | undefined> {
    if (!this.#o.writer.available) return undefined;
    // The writer copies the bytes before write() returns: the chunks go back then, not once the file is written.
    const { written } = await this.#withChunks(rec, async (parts) => ({ written: this.#inWorker(abs, parts, meta, { expect }) }));
    return written;
  }

  /** The worker's write of `parts`; undefined when there is no worker. See RootFileWriter.write for `stable`. */
  #inWorker(abs: string, parts: readonly Uint8Array[], meta: { mtimeMs: number; mode: number }, opts: { stable?: boolean; expect?: Expected }): Promise<DiskStat | undefined> {
    const { writer } = this.#o;
    if (!writer.available) return Promise.resolve(undefined);
    return writer.write(abs, parts, meta, opts).catch((err: unknown) => {
      if (writer.available) throw err; // this file's own failure
      return undefined;
    });
  }

  /** `use` with a file's chunks read whole (verified, in reused buffers); they go back once what it returns settles. */
  async #withChunks<T>(rec: FileRecord, use: (parts: Buffer[]) => Promise<T>): Promise<T> {
    const leases = await Promise.allSettled(rec.chunks.map((c) => this.#o.store.leaseChunk(c.hash)));
    try {
      const failed = leases.find((l) => l.status === 'rejected');
      if (failed) throw failed.reason;
      return await use(leases.map((l) => (l as PromiseFulfilledResult<Lease>).value.data));
    } finally {
      for (const l of leases) if (l.status === 'fulfilled') l.value.release();
    }
  }
}
