// The small chunk files of a batch written by a chunk worker (ChunkFiles.writeMany). The batch's bytes travel to the
// worker in one buffer that comes back afterwards; keeping those buffers for the next batches is this module's state,
// apart from ChunkFiles' own one-chunk writes.

import { mapIoError } from './errors.ts';
import type { ChunkWorkers, WriteOutcome } from './chunk-workers.ts';

/** writeMany's buffers: sizes rounded up to this, and at most this many kept for reuse (concurrent batches). */
const ARENA_STEP = 1024 * 1024;
const SPARE_ARENAS = 2;

/** What a batch needs of ChunkFiles: where each chunk's temp file and final file go, and the temps being written. */
export interface ChunkPlaces {
  tempOf(hash: string): string;
  pathOf(hash: string): string;
  /** Temp files being written right now (gc must not touch them). */
  readonly activeTemps: Set<string>;
}

export class WorkerWrites {
  readonly #workers: ChunkWorkers;
  readonly #places: ChunkPlaces;
  /** Buffers the chunk worker gave back after writing a batch (writeMany). */
  readonly #spareArenas: ArrayBuffer[] = [];

  constructor(workers: ChunkWorkers, places: ChunkPlaces) {
    this.#workers = workers;
    this.#places = places;
  }

  /** ChunkFiles.writeMany: false when there is nothing to write or no worker took the batch (or one died with it). */
  async write(items: { hash: string; data: Uint8Array }[]): Promise<boolean> {
    if (!this.#workers.enabled || items.length === 0) return false;
    // One copy of the bytes into a buffer that is handed over whole: posting the chunks' own views would copy each
    // one's entire underlying buffer (a pooled message buffer or a shared slab), not just the chunk. The worker hands
    // it back for the next batch, so a pull does not leave megabytes of garbage per batch on either thread.
    const total = items.reduce((n, it) => n + it.data.length, 0);
    const spare = this.#spareArenas.findIndex((b) => b.byteLength >= total);
    const arena = new Uint8Array(spare >= 0 ? this.#spareArenas.splice(spare, 1)[0]! : new ArrayBuffer(Math.ceil(total / ARENA_STEP) * ARENA_STEP), 0, total);
    let offset = 0;
    const files = items.map(({ hash, data }) => {
      arena.set(data, offset);
      offset += data.length;
      return { tmp: this.#places.tempOf(hash), final: this.#places.pathOf(hash), offset: offset - data.length, length: data.length };
    });
    const pending = this.#workers.write(files, arena.buffer);
    if (!pending) return false;
    const active = this.#places.activeTemps;
    for (const f of files) active.add(f.tmp);
    let out: WriteOutcome;
    try {
      out = await pending;
    } catch {
      // the worker died: whatever it wrote is either renamed into place or a temp file that gc removes
      return false;
    } finally {
      for (const f of files) active.delete(f.tmp);
    }
    if (out.arena && this.#spareArenas.length < SPARE_ARENAS) this.#spareArenas.push(out.arena);
    if (!out.ok) {
      const err = Object.assign(new Error(out.message), { code: out.code });
      throw mapIoError(err, `writing chunk ${items[out.index]!.hash}`);
    }
    return true;
  }
}
