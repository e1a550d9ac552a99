// A small pool of worker threads that read and verify chunk files (store/read-worker.ts).
//
// Why: every read re-hashes its chunks. On the main thread that costs the event loop the hash time plus one
// thread-pool round trip per 256 KiB piece (each a cross-thread wake-up: ~10 us on the 2-vCPU dev VM); in a worker
// the read is a plain loop of readSync + hash and the main thread only sees one message per chunk. Measured with
// bench/store.ts: read-back went from ~0.6x to ~0.8x of a raw file read, and the event loop stays free for other
// clients while a large file streams. Workers start on first use, so an ingest-only process never pays for them.
// If a worker cannot be started the store reads on the main thread instead (ChunkFiles.readInThread).

import { Worker } from 'node:worker_threads';
import type { Blake3Choice } from './hasher.ts';
import type { ReadOutcome, ReadRequest } from './read-worker.ts';

interface Slot {
  worker: Worker;
  outstanding: number;
  /** Answered at least once (a worker that dies before that could not start: stop trying). */
  started: boolean;
}

interface Pending {
  resolve: (o: ReadOutcome) => void;
  reject: (err: Error) => void;
  slot: Slot;
}

export class ReadWorkers {
  private readonly max: number;
  private readonly blake3: Blake3Choice;
  private readonly slots: Slot[] = [];
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private unavailable = false;
  private closed = false;

  constructor(max: number, blake3: Blake3Choice) {
    this.max = max;
    this.blake3 = blake3;
  }

  /** null when the pool cannot serve (disabled, closed, or workers failed to start): read on the main thread. */
  read(req: Omit<ReadRequest, 'id'>): Promise<ReadOutcome> | null {
    const slot = this.pick();
    if (!slot) return null;
    const id = this.nextId++;
    return new Promise<ReadOutcome>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, slot });
      if (slot.outstanding++ === 0) slot.worker.ref();
      slot.worker.postMessage({ ...req, id } satisfies ReadRequest);
    });
  }

  private pick(): Slot | null {
    if (this.max <= 0 || this.unavailable || this.closed) return null;
    let best = this.slots.reduce<Slot | null>((b, s) => (!b || s.outstanding < b.outstanding ? s : b), null);
    if ((!best || best.outstanding > 0) && this.slots.length < this.max) best = this.spawn() ?? best;
    return best;
  }

  private spawn(): Slot | null {
    let worker: Worker;
    try {
      worker = new Worker(new URL('./read-worker.ts', import.meta.url), { workerData: { blake3: this.blake3 } });
    } catch {
      this.unavailable = true;
      return null;
    }
    const slot: Slot = { worker, outstanding: 0, started: false };
    worker.unref();
    worker.on('message', (out: ReadOutcome) => {
      slot.started = true;
      const p = this.pending.get(out.id);
      if (!p) return;
      this.pending.delete(out.id);
      if (--slot.outstanding === 0) worker.unref();
      p.resolve(out);
    });
    const fail = (err: Error): void => {
      if (!slot.started) this.unavailable = true;
      const i = this.slots.indexOf(slot);
      if (i >= 0) this.slots.splice(i, 1);
      for (const [id, p] of this.pending) {
        if (p.slot !== slot) continue;
        this.pending.delete(id);
        p.reject(err);
      }
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`chunk read worker exited (${code})`)));
    this.slots.push(slot);
    return slot;
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }
}
