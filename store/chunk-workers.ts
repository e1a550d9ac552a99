// A small pool of worker threads (store/chunk-worker.js) that do the store's hashing away from the event loop:
// reading + verifying chunk files, and the chunk and whole-file BLAKE3 of an ingest; and writing the small chunk files
// of a received batch, and removing chunk files in batches.
//
// Why, measured with bench/store.ts on the 2-vCPU dev VM:
// - Read-back: on the main thread every 256 KiB piece costs a thread-pool round trip (~10 us, a cross-thread
//   wake-up) on top of the hash; in a worker it is a plain readSync + hash loop and the main thread sees one message
//   per chunk. Read-back went from ~0.7x to ~0.9x of a raw file read (one worker; two were no better).
// - Ingest: the main thread only chunks and copies; both hashes run in a worker (each chunk buffer is transferred
//   there and back, no copies). On the Pi, where chunking and hashing each take a core's worth of time, this should
//   be the difference between one core and two (not measured on hardware); on the 2-vCPU VM it is neutral, so it is
//   only on by default with 4+ cores (StoreOptions.ingestInWorker).
// Workers start on first use. If one cannot start, callers fall back to the main thread.

import { Worker } from 'node:worker_threads';
import type { Blake3Choice } from './hasher.ts';

/** Messages to and from store/chunk-worker.js. */
export interface ReadRequest {
  kind: 'read';
  id: number;
  file: string;
  /** Where the chunk starts in the file (0 for chunk files; elsewhere in a backing-folder file). */
  offset: number;
  hash: string;
  size: number;
  strict: boolean;
  /** Read into this buffer (shared, so nothing is transferred) instead of a new one. */
  into?: SharedArrayBuffer;
  /** false: the size is checked, the hash is not (ReadOpts.verify). */
  verify?: boolean;
}

/** Several reads in one message (small chunks asked for in the same turn of the event loop). */
export interface ReadsRequest {
  kind: 'reads';
  id: number;
  reads: Omit<ReadRequest, 'id' | 'kind'>[];
}

/** Per read of a ReadsRequest, its outcome (their `id`s are the reads' indexes). */
export interface ReadsOutcome {
  id: number;
  ok: true;
  outcomes: ReadOutcome[];
}

/** Small chunk files of one batch, written and renamed in order; their bytes lie one after another in `arena`. */
export interface WriteRequest {
  kind: 'write';
  id: number;
  items: { tmp: string; final: string; offset: number; length: number }[];
  /** Transferred to the worker. */
  arena: ArrayBuffer;
}

/** Files to remove, one after another (chunk files the index no longer wants); a missing one counts as removed. */
export interface UnlinkRequest {
  kind: 'unlink';
  id: number;
  files: string[];
}

/** Per file of the request: null once it is gone, else why it could not be removed. */
export interface UnlinkOutcome {
  id: number;
  ok: true;
  errors: ({ code?: string; message: string } | null)[];
}

/** `arena`: the request's buffer, transferred back for reuse. */
export type WriteOutcome = { id: number; arena?: ArrayBuffer } & ({ ok: true } | { ok: false; kind: 'io'; index: number; code?: string; message: string });

export type HashRequest =
  | { kind: 'hash'; id: number; session: number; buffer: ArrayBuffer; offset?: number; length: number; sha256?: boolean }
  | { kind: 'digest'; id: number; session: number }
  | { kind: 'drop'; id: number; session: number };

export type ReadOutcome =
  | { id: number; ok: true; bytes?: ArrayBuffer }
  | { id: number; ok: false; kind: 'missing' | 'size' | 'mismatch'; actualSize?: number; actual?: string }
  | { id: number; ok: false; kind: 'io'; code?: string; message: string };

export interface HashOutcome {
  id: number;
  ok: true;
  hash: string;
  /** SHA-256 hex of the whole file (answers to 'digest' only). */
  sha256?: string;
  /** The chunk buffer, transferred back. */
  buffer?: ArrayBuffer;
}

interface Slot {
  worker: Worker;
  outstanding: number;
  /** Answered at least once (a worker that dies before that could not start: stop trying). */
  started: boolean;
}

interface Pending {
  resolve: (o: Outcome) => void;
  reject: (err: Error) => void;
  slot: Slot;
}

type Request = Omit<ReadRequest, 'id'> | Omit<ReadsRequest, 'id'> | Omit<WriteRequest, 'id'> | Omit<UnlinkRequest, 'id'> | DistributiveOmit<HashRequest, 'id'>;
type Outcome = ReadOutcome | ReadsOutcome | WriteOutcome | UnlinkOutcome | HashOutcome;
type DistributiveOmit<T, K extends keyof T> = T extends unknown ? Omit<T, K> : never;

/** The chunk and whole-file hashes of one ingest, all computed by one worker in submission order. */
export interface HashSession {
  /**
   * BLAKE3 of the first `length` bytes of `buf`; also feeds the file hash, in call order. `buf`'s whole ArrayBuffer
   * (nothing else may use it) is transferred to the worker: use the Buffer that comes back instead (the same bytes at
   * the same offset in it).
   */
  chunk(buf: Buffer, length: number): Promise<{ hash: string; buf: Buffer }>;
  /** The whole-file BLAKE3 and SHA-256 of every chunk submitted so far; ends the session. */
  digest(): Promise<{ hash: string; sha256: string }>;
  /** The whole-file BLAKE3 alone, for a session opened with `sha256: false`; ends the session. */
  digestBlake3(): Promise<string>;
  /** Ends the session without a digest (a failed ingest). */
  drop(): void;
}

/** Reads of chunks up to this size are sent to a worker together (at most READS_PER_MESSAGE per message). */
const COALESCE_READ_BYTES = 256 * 1024;
const READS_PER_MESSAGE = 64;

export class ChunkWorkers {
  private readonly max: number;
  private readonly blake3: Blake3Choice;
  private readonly slots: Slot[] = [];
  private readonly pending = new Map<number, Pending>();
  /** Small reads waiting for this turn's message (read()). */
  private reads: { req: Omit<ReadRequest, 'id' | 'kind'>; resolve: (o: ReadOutcome) => void; reject: (err: Error) => void }[] = [];
  private nextId = 1;
  private nextSession = 1;
  private unavailable = false;
  private closed = false;

  constructor(max: number, blake3: Blake3Choice) {
    this.max = max;
    this.blake3 = blake3;
  }

  /** Whether work may go to workers at all (they may still fail to start; callers then fall back). */
  get enabled(): boolean {
    return this.max > 0 && !this.unavailable && !this.closed;
  }

  /**
   * null when the pool cannot serve (disabled, closed, or workers failed to start): read on the main thread. Reads of
   * small chunks asked for in the same turn of the event loop go to a worker in one message: a push or pull of
   * thousands of small files read them one message (and two thread wake-ups) each.
   */
  read(req: Omit<ReadRequest, 'id' | 'kind'>): Promise<ReadOutcome> | null {
    if (!this.enabled) return null;
    if (req.size > COALESCE_READ_BYTES) {
      const slot = this.pick();
      return slot && (this.send(slot, { kind: 'read', ...req }) as Promise<ReadOutcome>);
    }
    return new Promise((resolve, reject) => {
      this.reads.push({ req, resolve, reject });
      if (this.reads.length === 1) setImmediate(() => this.sendReads());
    });
  }

  private sendReads(): void {
    while (this.reads.length > 0) {
      const batch = this.reads.splice(0, READS_PER_MESSAGE);
      const slot = this.pick();
      if (!slot) {
        for (const r of batch) r.reject(new Error('chunk workers unavailable'));
        continue;
      }
      this.send(slot, { kind: 'reads', reads: batch.map((r) => r.req) }).then(
        (out) => (out as ReadsOutcome).outcomes.forEach((o, i) => batch[i]!.resolve(o)),
        (err: Error) => {
          for (const r of batch) r.reject(err);
        },
      );
    }
  }

  /** null when the pool cannot serve: write on the main thread. */
  write(items: WriteRequest['items'], arena: ArrayBuffer): Promise<WriteOutcome> | null {
    const slot = this.pick();
    return slot && (this.send(slot, { kind: 'write', items, arena }, [arena]) as Promise<WriteOutcome>);
  }

  /** null when the pool cannot serve: unlink on the main thread. */
  unlink(files: string[]): Promise<UnlinkOutcome> | null {
    const slot = this.pick();
    return slot && (this.send(slot, { kind: 'unlink', files }) as Promise<UnlinkOutcome>);
  }

  /** null when there are no workers: hash on the main thread. */
  session(opts: { sha256?: boolean } = {}): HashSession | null {
    const slot = this.pick();
    if (!slot) return null;
    const session = this.nextSession++;
    const sha256 = opts.sha256 === false ? { sha256: false } : {};
    const digest = async () => (await this.send(slot, { kind: 'digest', session })) as HashOutcome;
    return {
      chunk: async (buf, length) => {
        const offset = buf.byteOffset;
        const out = (await this.send(slot, { kind: 'hash', session, buffer: buf.buffer as ArrayBuffer, offset, length, ...sha256 }, [buf.buffer as ArrayBuffer])) as HashOutcome;
        return { hash: out.hash, buf: offset === 0 ? Buffer.from(out.buffer!) : Buffer.from(out.buffer!, offset, length) };
      },
      digest: async () => {
        const out = await digest();
        return { hash: out.hash, sha256: out.sha256! };
      },
      digestBlake3: async () => (await digest()).hash,
      drop: () => void this.send(slot, { kind: 'drop', session }).catch(() => {}),
    };
  }

  private send(slot: Slot, req: Request, transfer: ArrayBuffer[] = []): Promise<Outcome> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      if (!this.slots.includes(slot)) return reject(new Error('chunk worker is gone'));
      this.pending.set(id, { resolve, reject, slot });
      if (slot.outstanding++ === 0) slot.worker.ref();
      slot.worker.postMessage({ ...req, id }, transfer);
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
      worker = new Worker(new URL('./chunk-worker.js', import.meta.url), { workerData: { blake3: this.blake3 } });
    } catch {
      this.unavailable = true;
      return null;
    }
    const slot: Slot = { worker, outstanding: 0, started: false };
    worker.unref();
    worker.on('message', (out: Outcome) => {
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
    worker.on('exit', (code) => fail(new Error(`chunk worker exited (${code})`)));
    this.slots.push(slot);
    return slot;
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }
}
