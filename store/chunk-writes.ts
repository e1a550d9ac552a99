// Chunk files written and unlinked by many operations at once (ingests, uploads, commits, gc). A chunk is never
// unlinked while an operation writes it, nor written twice at the same time: a second writer waits for the first,
// and an unlink waits for the write and the chunk's holds.

import type { ChunkFiles } from './chunk-files.ts';
import type { ChunkHolds } from './holds.ts';
import { Mutex } from './lock.ts';
import { mapLimit } from './map-limit.ts';

export class ChunkWrites {
  readonly #files: ChunkFiles;
  readonly #holds: ChunkHolds;
  readonly #concurrency: number;
  /** Whether the index still does not want a chunk file once its last hold went (and the store is open). */
  readonly #stillUnwanted: (hash: string) => boolean;
  readonly #pendingWrites = new Map<string, Promise<void>>();
  readonly #pendingUnlinks = new Map<string, Promise<void>>();
  /**
   * Unlinks run in batches, one batch at a time, outside the write lock (transact): a note of 256 written files started
   * all their unlinks at once, which queued every other file operation of the moment behind them in the thread pool.
   */
  readonly #unlinks = new Mutex();
  /** Unlinks waiting for the next batch (queueUnlink). */
  #queuedUnlinks: { hash: string; resolve: () => void; reject: (err: Error) => void }[] = [];

  constructor(files: ChunkFiles, holds: ChunkHolds, concurrency: number, stillUnwanted: (hash: string) => boolean) {
    this.#files = files;
    this.#holds = holds;
    this.#concurrency = concurrency;
    this.#stillUnwanted = stillUnwanted;
  }

  /**
   * Writes a chunk file unless another operation is writing the same chunk right now, in which case it waits for that
   * write instead. Returns true if this call wrote the file.
   */
  async write(hash: string, data: Uint8Array): Promise<boolean> {
    const unlinking = this.#pendingUnlinks.get(hash);
    if (unlinking) await unlinking;
    const other = this.#pendingWrites.get(hash);
    if (other) {
      await other;
      return false;
    }
    const p = this.#files.write(hash, data);
    this.#pendingWrites.set(hash, p);
    try {
      await p;
      return true;
    } finally {
      this.#pendingWrites.delete(hash);
    }
  }

  /**
   * Writes the chunk files of a batch, at most `concurrency` at once, and makes all of them durable, names
   * included: small ones are flushed together after the batch (ChunkFiles.makeDurable), larger ones as they are
   * written. A chunk another operation is writing is waited for instead; each chunk of this batch counts as being
   * written (write() callers wait for it, unlinks hold off) until it is durable. Returns the hashes it wrote.
   */
  async writeBatch(items: { hash: string; data: Uint8Array }[]): Promise<string[]> {
    let settle!: (err?: unknown) => void;
    const durable = new Promise<void>((resolve, reject) => (settle = (err) => (err === undefined ? resolve() : reject(err))));
    durable.catch(() => {}); // waiters see the failure; nobody else needs to
    const mine: { hash: string; data: Uint8Array }[] = [];
    const others = new Map<string, Promise<void>>();
    for (const it of items) {
      const unlinking = this.#pendingUnlinks.get(it.hash);
      if (unlinking) await unlinking;
      const other = this.#pendingWrites.get(it.hash);
      if (other) others.set(it.hash, other); // a hash listed twice lands here too: it waits for this batch, settled first
      else {
        this.#pendingWrites.set(it.hash, durable);
        mine.push(it);
      }
    }
    try {
      const small = mine.filter((m) => this.#files.groupSyncs(m.data.length));
      const large = mine.filter((m) => !this.#files.groupSyncs(m.data.length));
      let failure: unknown;
      // After the first failure no further write starts; the ones running finish.
      const writeEach = (list: typeof mine, later: boolean) =>
        mapLimit(list, this.#concurrency, async (it) => {
          if (failure === undefined) await this.#files.write(it.hash, it.data, later).catch((err: unknown) => void (failure ??= err));
        });
      // The small ones go to a chunk worker as one message while the large ones are written here; one by one if no
      // worker can take them.
      const byWorker = this.#files.writeMany(small).catch((err: unknown) => ((failure ??= err), true));
      await writeEach(large, false);
      if (!(await byWorker)) await writeEach(small, true);
      if (failure !== undefined) throw failure;
      await this.#files.makeDurable(mine.map((m) => m.hash), small.map((m) => m.hash));
      settle();
    } catch (err) {
      settle(err);
      throw err;
    } finally {
      for (const m of mine) if (this.#pendingWrites.get(m.hash) === durable) this.#pendingWrites.delete(m.hash);
    }
    // Only now: two batches may each be waiting for a chunk of the other. A chunk write() wrote has its own name
    // made durable by its writer, but maybe not yet, and this batch's rows are about to refer to it.
    if (others.size > 0) {
      await Promise.all(others.values());
      await this.#files.syncDirsOf(others.keys());
    }
    return mine.map((m) => m.hash);
  }

  isBeingWritten(hash: string): boolean {
    return this.#pendingWrites.has(hash);
  }

  /**
   * Unlinks a chunk file the committed index no longer wants. While an operation holds it, that waits until the last
   * hold goes, and happens only if the index still does not want the file then (gc removes what a crash left).
   */
  async unlinkUnheld(hash: string): Promise<void> {
    if (this.#holds.has(hash)) {
      this.#holds.whenFree(hash, () => {
        // Runs inside the releasing operation's release(): it must not throw there (a closed index, say).
        try {
          if (this.#stillUnwanted(hash)) void this.unlinkUnheld(hash).catch(() => {});
        } catch {
          // left to gc
        }
      });
      return;
    }
    if (this.#pendingWrites.has(hash)) return;
    const p = this.#queueUnlink(hash);
    this.#pendingUnlinks.set(hash, p);
    try {
      await p;
    } finally {
      this.#pendingUnlinks.delete(hash);
    }
  }

  /** Resolves once the unlinks queued so far are done. */
  unlinksDone(): Promise<void> {
    return this.#unlinks.run(async () => {});
  }

  /**
   * Unlinks `hash`'s chunk file with the others queued meanwhile: one batch at a time (unlinkMany), the next one made
   * of everything queued while it ran.
   */
  #queueUnlink(hash: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#queuedUnlinks.push({ hash, resolve, reject });
      if (this.#queuedUnlinks.length > 1) return; // a batch is already scheduled and will take this one
      void this.#unlinks.run(async () => {
        const batch = this.#queuedUnlinks.splice(0);
        try {
          const errors = await this.#files.unlinkMany(batch.map((b) => b.hash));
          batch.forEach((b, i) => (errors[i] ? b.reject(errors[i]) : b.resolve()));
        } catch (err) {
          for (const b of batch) b.reject(err as Error);
        }
      });
    });
  }
}
