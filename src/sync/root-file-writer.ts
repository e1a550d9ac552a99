// Small root files written by a worker thread in batches. A push brings thousands of small files, and writeAtomic
// costs each one eight thread-pool round trips (open, write, permissions, mtime, fdatasync, close, rename, directory
// fsync), each a wake-up of the event loop that also serves the uploads: beside them the hub wrote ~700 small files a
// second, and its folder trailed the commits by seconds. Here the files waiting to be written go to the worker
// together (root-file-worker.js), which makes the same calls synchronously and flushes the batch as a whole (syncfs:
// once for the bytes, once for the renames); the event loop sees one message per batch. The bytes are copied into
// one buffer that travels to the worker and back; a file linked from a chunk file (link()) sends only its name.

import { Worker } from 'node:worker_threads';
import path from 'node:path';
import { newTempName, RootChanged, tempDone, type DiskStat, type Expected } from './root-files.ts';

/**
 * A batch holds up to this many files and bytes (more wait for the next one). The queue itself is bounded by the root
 * writer (HubRoot.followStore: 16 MiB of small files in flight); the batch buffer is kept for the next batch.
 */
const BATCH_FILES = 256;
const BATCH_BYTES = 8 * 1024 * 1024;

/** A chunk file to link into place as a root file (RootFileWriter.link). */
export interface LinkSource {
  file: string;
  /** Its chunk's BLAKE3 (hex) and size, checked by the worker before it links. */
  hash: string;
  size: number;
}

interface Item {
  tmp: string;
  final: string;
  offset: number;
  length: number;
  link?: LinkSource;
  mode: number;
  mtimeMs: number;
  /** What the path must still hold for the file to be put there (put-in-place.js); absent: anything. */
  expect?: Expected;
}

interface Queued {
  abs: string;
  /** The file's bytes, or (link) the chunk file holding them. */
  bytes: Uint8Array;
  link?: LinkSource;
  meta: { mtimeMs: number; mode: number };
  expect: Expected | undefined;
  resolve: (st: DiskStat) => void;
  reject: (err: Error) => void;
}

/** Link failures that say this file system takes no (such) links: the writer stops trying them. */
const NO_LINKS = new Set(['EXDEV', 'EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS']);
const NO_BYTES = new Uint8Array(0);

type Result = { ok: true; stat: DiskStat } | { ok: false; code?: string; message: string };

export class RootFileWriter {
  readonly #blake3: 'native' | 'wasm';
  #worker: Worker | undefined;
  /** False once a link was refused as such (another file system, or one without hard links). */
  #linkable = true;
  /** False once the worker could not start or died: callers write the ordinary way (writeAtomic). */
  #available = true;
  #queue: Queued[] = [];
  /** The batch the worker is writing (one at a time: what queues meanwhile makes the next, larger batch). */
  #inFlight: Queued[] | undefined;
  /** The buffer of the last batch, back from the worker for the next one. */
  #spare: ArrayBuffer | undefined;
  /** The temp names of the batch in the worker (live until it answers: root-files.ts newTempName). */
  #inFlightTemps: string[] = [];
  #scheduled = false;
  #batches = 0;

  /** `blake3`: the implementation the store uses (the worker checks linked chunk files with it). */
  constructor(opts: { blake3?: 'native' | 'wasm' } = {}) {
    this.#blake3 = opts.blake3 ?? 'wasm';
  }

  get available(): boolean {
    return this.#available;
  }

  /** Batches handed to the worker so far (each costs two flushes: how well writes are grouped shows here). */
  get batches(): number {
    return this.#batches;
  }

  /** Whether link() is worth a try (the worker runs, and no link was refused as such yet). */
  get linkable(): boolean {
    return this.#available && this.#linkable;
  }

  /**
   * Writes `parts` atomically at `abs` (checked with safePath) with permissions and mtime, durable when this resolves,
   * and returns the written file's stat, as writeAtomic does. The parts are copied before this returns, so the caller
   * may reuse their buffers at once; with `stable` (the caller leaves them unchanged until this settles) a single part
   * is only copied once, into the batch for the worker (3,000 small files pushed at once made 3,000 buffers of garbage
   * otherwise). With `expect`, the file is put in place only if `abs` still holds that (RootChanged, code ECHANGED,
   * otherwise). Rejects with the file system's error (its `code` set) for this file alone.
   */
  write(abs: string, parts: readonly Uint8Array[], meta: { mtimeMs: number; mode: number }, opts: { stable?: boolean; expect?: Expected } = {}): Promise<DiskStat> {
    let bytes: Uint8Array;
    if (opts.stable && parts.length === 1) {
      bytes = parts[0]!;
    } else {
      let length = 0;
      for (const p of parts) length += p.length;
      bytes = new Uint8Array(length);
      let at = 0;
      for (const p of parts) {
        bytes.set(p, at);
        at += p.length;
      }
    }
    return new Promise((resolve, reject) => {
      this.#queue.push({ abs, bytes, meta, expect: opts.expect, resolve, reject });
      this.#schedule();
    });
  }

  /**
   * Puts the chunk file `src` (a file's only chunk, durable already) in place at `abs` as a second name, with
   * permissions and mtime, as write() would the bytes: nothing is read into this thread or written again. Rejects
   * (the caller then writes the bytes) if the chunk file does not hold its chunk, or cannot be linked there.
   */
  link(abs: string, src: LinkSource, meta: { mtimeMs: number; mode: number }, expect?: Expected): Promise<DiskStat> {
    return new Promise<DiskStat>((resolve, reject) => {
      this.#queue.push({ abs, bytes: NO_BYTES, link: src, meta, expect, resolve, reject });
      this.#schedule();
    }).catch((err: NodeJS.ErrnoException) => {
      if (err.code && NO_LINKS.has(err.code)) this.#linkable = false;
      throw err;
    });
  }

  /**
   * Starts the worker now rather than at the first write: a push's first batch otherwise also waited for the thread
   * and its hasher to load (~50 ms on the dev VM). Its owner closes it (SyncRuntime.close): started this way, the
   * thread keeps the process from exiting.
   */
  warm(): void {
    this.#start();
  }

  /** Stops the worker; files still queued fail. */
  async close(): Promise<void> {
    this.#available = false;
    await this.#worker?.terminate();
    this.#fail(this.#queue.splice(0), new Error('root file writer closed'));
  }

  /**
   * Sends a batch once the caller's synchronous run is over: writes asked for in one loop (a CommitBatch's new files,
   * new-files.ts) then go to the worker together rather than the first alone.
   */
  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    queueMicrotask(() => {
      this.#scheduled = false;
      this.#send();
    });
  }

  #send(): void {
    if (this.#inFlight || this.#queue.length === 0) return;
    const worker = this.#start();
    if (!worker) return this.#fail(this.#queue.splice(0), new Error('root file worker unavailable'));
    let bytes = 0;
    let n = 0;
    while (n < this.#queue.length && n < BATCH_FILES && (n === 0 || bytes + this.#queue[n]!.bytes.length <= BATCH_BYTES)) bytes += this.#queue[n++]!.bytes.length;
    const batch = this.#queue.splice(0, n);
    const arena = this.#spare && this.#spare.byteLength >= bytes ? this.#spare : new ArrayBuffer(Math.max(bytes, BATCH_BYTES));
    this.#spare = undefined;
    const view = new Uint8Array(arena);
    let offset = 0;
    const items: Item[] = batch.map((q) => {
      view.set(q.bytes, offset);
      offset += q.bytes.length;
      const dir = path.dirname(q.abs);
      return { tmp: path.join(dir, newTempName()), final: q.abs, offset: offset - q.bytes.length, length: q.bytes.length, ...(q.link ? { link: q.link } : {}), ...(q.expect !== undefined ? { expect: q.expect } : {}), mode: q.meta.mode, mtimeMs: q.meta.mtimeMs };
    });
    this.#inFlight = batch;
    this.#inFlightTemps = items.map((it) => it.tmp);
    this.#batches += 1;
    worker.ref();
    worker.postMessage({ items, arena }, [arena]);
  }

  #start(): Worker | undefined {
    if (this.#worker || !this.#available) return this.#worker;
    try {
      this.#worker = new Worker(new URL('./root-file-worker.js', import.meta.url), { workerData: { blake3: this.#blake3 } });
    } catch {
      this.#available = false;
      return undefined;
    }
    const worker = this.#worker;
    worker.unref();
    worker.on('message', (out: { results: Result[]; arena: ArrayBuffer }) => {
      const batch = this.#inFlight ?? [];
      this.#inFlight = undefined;
      this.#tempsDone();
      this.#spare = out.arena;
      batch.forEach((q, i) => {
        const r = out.results[i]!;
        if (r.ok) q.resolve(r.stat);
        else if (r.code === 'ECHANGED') q.reject(new RootChanged(q.abs));
        else q.reject(Object.assign(new Error(r.message), { code: r.code }));
      });
      if (this.#queue.length === 0) worker.unref();
      this.#send();
    });
    const died = (err: Error): void => {
      this.#available = false;
      this.#worker = undefined;
      this.#tempsDone(); // what the worker left is the sweep's
      this.#fail([...(this.#inFlight ?? []), ...this.#queue.splice(0)], err);
      this.#inFlight = undefined;
    };
    worker.on('error', died);
    worker.on('exit', (code) => died(new Error(`root file worker exited (${code})`)));
    return worker;
  }

  #tempsDone(): void {
    for (const t of this.#inFlightTemps.splice(0)) tempDone(t);
  }

  #fail(items: Queued[], err: Error): void {
    for (const q of items) q.reject(err);
  }
}
