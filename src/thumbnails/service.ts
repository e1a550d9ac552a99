// Thumbnails of the images in the store, cached on disk by content: <cacheDir>/<hash[0..2]>/<hash>-<size>.<ext>, where
// hash is the file's BLAKE3 (FileRecord.hash). The same photo under two names, or renamed, or evicted from the
// chunk cache, keeps its thumbnails; a new version gets new ones.
//
// A request for a thumbnail that is not cached joins the job already making it, or starts one on the bounded job
// queue (job-queue.ts). New local versions of images (uploads, hot files pulled from the hub) get the default size
// made in the background, through the queue's small background lane, which drops work when full.
//
// Reading the original through store.openRead counts as an access to it (the store has no uncounted read); for
// eager generation that is an access right after the upload, which the ingest already counted as recent.

import { EventEmitter } from 'node:events';
import { mkdir, stat } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import type { FileRecord, Store } from '../../store/index.ts';
import { isStoreError } from '../../store/index.ts';
import { DEFAULT_SIZE, isImagePath, type ThumbFormat } from './formats.ts';
import { JobQueue, QueueFullError } from './job-queue.ts';
import { MAX_INPUT_BYTES, renderThumbnail } from './render.ts';
import { CodedError } from '../errors.ts';

export type ThumbnailErrorCode = 'thumbnail_unsupported' | 'thumbnail_not_local' | 'thumbnail_busy' | 'not_found';

/** Mapped to HTTP in src/http/errors.ts: 415, 404, 503, 404. */
export class ThumbnailError extends CodedError<ThumbnailErrorCode> {
  override name = 'ThumbnailError';
}

export interface Thumbnail {
  /** The cached file; stream it, it is never rewritten in place. */
  file: string;
  bytes: number;
  format: ThumbFormat;
  size: number;
  /** BLAKE3 of the original: with size and format, a strong validator. */
  hash: string;
}

export interface ThumbnailEvent {
  path: string;
  hash: string;
  size: number;
  format: ThumbFormat;
  /** Made in the background after a new version, not for a request. */
  eager: boolean;
}

export interface ThumbnailStats {
  /** sharp runs started (successful or not): the cost. */
  jobs: number;
  generated: number;
  failed: number;
  /** Requests served from the disk cache. */
  hits: number;
  /** Requests that joined a job already running for the same thumbnail. */
  joined: number;
  /** Background jobs dropped because the background queue was full. */
  dropped: number;
  running: number;
  waiting: number;
}

export interface ThumbnailServiceOptions {
  /** Directory of the cache (created if missing). */
  cacheDir: string;
  /** sharp jobs at once; default one per core. */
  concurrency?: number;
  /** Requests that may wait for a job slot before the next is refused with 'thumbnail_busy'. */
  maxWaiting?: number;
  /** Background jobs that may wait before new ones are dropped. */
  maxBackground?: number;
  /** Sizes and formats made in the background for a new image version; default the default size in both formats. */
  eager?: { size: number; format: ThumbFormat }[];
}

interface InFlight {
  promise: Promise<Thumbnail>;
  eager: boolean;
  started: boolean;
}

/** How many hashes whose decode failed are remembered, so a broken file is not decoded again on every request. */
const FAILED_MEMORY = 256;

export class ThumbnailService extends EventEmitter<{ generated: [ThumbnailEvent]; failed: [ThumbnailEvent & { error: Error }]; dropped: [ThumbnailEvent] }> {
  readonly #store: Store;
  readonly #dir: string;
  readonly #queue: JobQueue;
  readonly #eager: { size: number; format: ThumbFormat }[];
  readonly #inflight = new Map<string, InFlight>();
  /** Hashes sharp could not decode (insertion order = age), so they are answered 415 without another try. */
  readonly #undecodable = new Map<string, string>();
  readonly #counts = { jobs: 0, generated: 0, failed: 0, hits: 0, joined: 0, dropped: 0 };
  readonly #onChange = (rec: FileRecord): void => this.#maybeEager(rec);
  #started = false;
  #closed = false;

  constructor(store: Store, opts: ThumbnailServiceOptions) {
    super();
    this.#store = store;
    this.#dir = opts.cacheDir;
    const concurrency = opts.concurrency ?? availableParallelism();
    this.#queue = new JobQueue({ concurrency, maxWaiting: opts.maxWaiting ?? 64, maxBackground: opts.maxBackground ?? 32, backgroundConcurrency: 1 });
    this.#eager = opts.eager ?? [{ size: DEFAULT_SIZE, format: 'jpeg' }, { size: DEFAULT_SIZE, format: 'webp' }];
  }

  /** Subscribes to the store's new versions for eager generation. */
  async start(): Promise<void> {
    await mkdir(this.#dir, { recursive: true });
    if (this.#started) return;
    this.#started = true;
    this.#store.on('change', this.#onChange);
  }

  /** Stops eager generation and waits for jobs in flight (they read from the store, which closes after this). */
  async close(): Promise<void> {
    this.#closed = true;
    this.#store.off('change', this.#onChange);
    await Promise.allSettled([...this.#inflight.values()].map((e) => e.promise));
  }

  stats(): ThumbnailStats {
    return { ...this.#counts, running: this.#queue.running, waiting: this.#queue.waiting };
  }

  /**
   * The thumbnail of the store file `path` (a store name: the caller has resolved and authorised it), made now if it
   * is not cached. A file whose bytes are only on the NAS is not fetched: 'thumbnail_not_local'.
   */
  async get(path: string, size: number, format: ThumbFormat): Promise<Thumbnail> {
    if (this.#closed) throw new ThumbnailError('thumbnail_busy', 'Thumbnails are shutting down');
    let rec: FileRecord;
    try {
      rec = await this.#store.stat(path);
    } catch (err) {
      if (isStoreError(err, 'not_found') || isStoreError(err, 'invalid_name')) throw new ThumbnailError('not_found', 'File not found', { cause: err });
      throw err;
    }
    if (!isImagePath(path)) throw new ThumbnailError('thumbnail_unsupported', 'Thumbnails exist for images only');
    const cached = await this.#cached(rec.hash, size, format);
    if (cached) {
      this.#counts.hits += 1;
      return cached;
    }
    return this.#make(rec, size, format, false);
  }

  #file(hash: string, size: number, format: ThumbFormat): string {
    return join(this.#dir, hash.slice(0, 2), `${hash}-${size}.${format === 'jpeg' ? 'jpg' : 'webp'}`);
  }

  async #cached(hash: string, size: number, format: ThumbFormat): Promise<Thumbnail | undefined> {
    const file = this.#file(hash, size, format);
    try {
      const st = await stat(file);
      return { file, bytes: st.size, format, size, hash };
    } catch {
      return undefined;
    }
  }

  /**
   * Shares one job per (hash, size, format) among everyone who asks while it runs. A request that finds only a
   * background job still waiting in the background lane does not wait behind it: it runs its own, and the background
   * job, when its turn comes, finds the thumbnail made (or in the making) and does nothing.
   */
  #make(rec: FileRecord, size: number, format: ThumbFormat, eager: boolean): Promise<Thumbnail> {
    const key = `${rec.hash}-${size}-${format}`;
    const running = this.#inflight.get(key);
    if (running && (eager || !running.eager || running.started)) {
      if (!eager) this.#counts.joined += 1;
      return running.promise;
    }
    const undecodable = this.#undecodable.get(rec.hash);
    if (undecodable !== undefined) return Promise.reject(new ThumbnailError('thumbnail_unsupported', undecodable));
    if (rec.size > MAX_INPUT_BYTES) {
      return Promise.reject(new ThumbnailError('thumbnail_unsupported', `Image too large for a thumbnail (over ${MAX_INPUT_BYTES / 1024 / 1024} MiB)`));
    }
    let resolve!: (t: Thumbnail) => void;
    let reject!: (e: unknown) => void;
    const entry: InFlight = { eager, started: false, promise: new Promise<Thumbnail>((res, rej) => ((resolve = res), (reject = rej))) };
    const job = async (): Promise<void> => {
      entry.started = true;
      try {
        if (this.#closed) throw new ThumbnailError('thumbnail_busy', 'Thumbnails are shutting down');
        const current = this.#inflight.get(key);
        // A request took over while this background job waited: its result is ours.
        if (current && current !== entry) return resolve(await current.promise);
        // Made meanwhile (by a job that finished between our cache check and now): never run sharp twice.
        resolve((await this.#cached(rec.hash, size, format)) ?? (await this.#render(rec, size, format, eager)));
      } catch (err) {
        reject(err);
      }
    };
    if (eager) {
      if (!this.#queue.offer(job)) {
        this.#counts.dropped += 1;
        this.emit('dropped', { path: rec.path, hash: rec.hash, size, format, eager });
        return Promise.reject(new ThumbnailError('thumbnail_busy', 'Background thumbnail queue full'));
      }
    } else {
      this.#queue.run(job).catch((err: unknown) => {
        reject(err instanceof QueueFullError ? new ThumbnailError('thumbnail_busy', 'Too many thumbnail requests; try again shortly', { cause: err }) : err);
      });
    }
    this.#inflight.set(key, entry);
    const forget = (): void => {
      if (this.#inflight.get(key) === entry) this.#inflight.delete(key);
    };
    entry.promise.then(forget, forget);
    return entry.promise;
  }

  async #render(rec: FileRecord, size: number, format: ThumbFormat, eager: boolean): Promise<Thumbnail> {
    let opened;
    try {
      opened = await this.#store.openRead(rec.path);
    } catch (err) {
      if (isStoreError(err, 'not_local')) throw new ThumbnailError('thumbnail_not_local', 'Thumbnail not available: the file is on the NAS only', { cause: err });
      if (isStoreError(err, 'not_found')) throw new ThumbnailError('not_found', 'File not found', { cause: err });
      throw err;
    }
    // The path may hold a newer version than the one asked about: name the thumbnail after what is actually read.
    const hash = opened.record.hash;
    const file = this.#file(hash, size, format);
    await mkdir(join(this.#dir, hash.slice(0, 2)), { recursive: true });
    this.#counts.jobs += 1;
    const event: ThumbnailEvent = { path: rec.path, hash, size, format, eager };
    try {
      const bytes = await renderThumbnail(opened.stream, file, size, format);
      this.#counts.generated += 1;
      this.emit('generated', event);
      return { file, bytes, format, size, hash };
    } catch (err) {
      opened.stream.destroy();
      this.#counts.failed += 1;
      this.emit('failed', { ...event, error: err as Error });
      if (isStoreError(err)) throw err;
      // sharp's own errors mean the bytes are not an image it can decode (or one over the pixel limit).
      const detail = /pixel limit/i.test(String((err as Error).message)) ? 'Image too large for a thumbnail' : 'Cannot decode this image';
      this.#undecodable.set(hash, detail);
      if (this.#undecodable.size > FAILED_MEMORY) this.#undecodable.delete(this.#undecodable.keys().next().value!);
      throw new ThumbnailError('thumbnail_unsupported', detail, { cause: err });
    }
  }

  #maybeEager(rec: FileRecord): void {
    if (this.#closed || rec.deleted || rec.state !== 'local' || rec.size === 0 || !isImagePath(rec.path)) return;
    for (const { size, format } of this.#eager) {
      this.#make(rec, size, format, true).catch(() => {}); // failures are counted and emitted; nobody waits here
    }
  }
}
