// The Pi's persistent upload queue (LevelDB sublevel `sync-queue`, one row per path):
//
//   pending ──take──► uploading ──► synced (row removed, counted)
//      ▲                  │
//      │                  └──► failed (attempts, last error, next attempt after exponential backoff with jitter)
//      └── a new local change, or the retry time of a failed row
//
// A row names a path, not a version: the pusher reads the path's current local record when it takes the row, so
// several edits before an upload cost one upload. `gen` increases with every enqueue; finishing an upload only
// removes the row if no newer change arrived meanwhile. Rows left 'uploading' by a crash are pending again at open.

import { EventEmitter } from 'node:events';
import type { ClassicLevel } from 'classic-level';
import type { AbstractSublevel } from 'abstract-level';
import { Mutex } from '../../store/index.ts';
import { backoffDelay, type BackoffOptions } from './backoff.ts';

type Db = ClassicLevel<string, string>;

export type QueueState = 'pending' | 'uploading' | 'failed';

export interface QueueItem {
  path: string;
  state: QueueState;
  /** Failed attempts since the last success or new change. */
  attempts: number;
  lastError: string | null;
  /** Epoch ms before which a failed row is not retried; null: not retried automatically (a permanent error). */
  nextAttemptAt: number | null;
  /** Bytes of the file when it was queued (for "bytes pending"). */
  bytes: number;
  gen: number;
  updatedAt: number;
  /** The store record's sequence number the row was queued for, where the caller said. */
  seq?: number;
  /** The change is a deletion (push lanes hold deletions until a run's other pushes are done). */
  deleted?: true;
}

/** A change to queue: the path, its size, and where known the store record's sequence number and whether it deletes. */
export interface Enqueued {
  path: string;
  bytes: number;
  seq?: number;
  deleted?: boolean;
}

export interface QueueCounts {
  pending: number;
  uploading: number;
  failed: number;
  /** Uploads completed since the queue was created. */
  synced: number;
  bytesPending: number;
}

export interface UploadQueueOptions extends BackoffOptions {
  now?: () => number;
}

export class UploadQueue {
  /** 'enqueued' whenever a row becomes pending. */
  readonly events = new EventEmitter();
  private readonly rows: AbstractSublevel<Db, string | Buffer | Uint8Array, string, QueueItem>;
  private readonly meta: AbstractSublevel<Db, string | Buffer | Uint8Array, string, number>;
  private readonly opts: UploadQueueOptions;
  /** The queue's clock (injectable in tests). */
  readonly now: () => number;
  /** Uploads completed since the queue was created (kept in `meta` too). */
  private syncedTotal = 0;
  /**
   * Every change of rows runs under this lock, from reading the rows it replaces to its write: so that `live`, the
   * counts by state, can follow each write exactly (status and BaluHost's handshake ask for them often, and counting
   * the rows each time cost the Pi 50-75 ms per ask with 3,000 files queued).
   */
  private readonly lock = new Mutex();
  private readonly live = { pending: 0, uploading: 0, failed: 0, bytesPending: 0 };

  private constructor(db: Db, opts: UploadQueueOptions) {
    this.rows = db.sublevel<string, QueueItem>('sync-queue', { valueEncoding: 'json' });
    this.meta = db.sublevel<string, number>('sync-queue-meta', { valueEncoding: 'json' });
    this.opts = opts;
    this.now = opts.now ?? Date.now;
    this.events.setMaxListeners(0);
  }

  static async open(db: Db, opts: UploadQueueOptions): Promise<UploadQueue> {
    const q = new UploadQueue(db, opts);
    q.syncedTotal = (await q.meta.get('synced')) ?? 0;
    for await (const item of q.rows.values()) {
      const now = item.state === 'uploading' ? { ...item, state: 'pending' as const, updatedAt: q.now() } : item;
      if (now !== item) await q.rows.put(item.path, now);
      q.count(undefined, now);
    }
    return q;
  }

  /** `live` follows a row going from `prev` to `next` (undefined: no row). */
  private count(prev: QueueItem | undefined, next: QueueItem | undefined): void {
    if (prev) {
      this.live[prev.state] -= 1;
      this.live.bytesPending -= prev.bytes;
    }
    if (next) {
      this.live[next.state] += 1;
      this.live.bytesPending += next.bytes;
    }
  }

  /**
   * Runs `change` under the lock: it reads the rows it replaces and returns the write, as operations on `rows` (with
   * the row each replaces) plus other operations of the same batch; `live` follows once the write is done.
   */
  private change<T>(change: () => { rows: { path: string; prev: QueueItem | undefined; next: QueueItem | undefined }[]; other?: object[]; result: T }): Promise<T> {
    return this.lock.run(async () => {
      const { rows, other = [], result } = change();
      const ops = [
        ...rows.map((r) => (r.next ? { type: 'put', sublevel: this.rows, key: r.path, value: r.next } : { type: 'del', sublevel: this.rows, key: r.path })),
        ...other,
      ];
      if (ops.length > 0) await this.rows.db.batch(ops as never);
      for (const r of rows) this.count(r.prev, r.next);
      return result;
    });
  }

  async get(path: string): Promise<QueueItem | undefined> {
    return this.rows.getSync(path); // synchronous: see SyncState's point reads
  }

  /**
   * A local change of `path`: pending now (a failed row's retry count starts over), for the store record with
   * sequence number `seq` if given. A row still pending for that very record is left as it is: a pi starting up
   * queues its backlog both from its local feed and, on a new hub index, from its whole store, and a second write
   * would date the row after the push run that began meanwhile, which then leaves it for the next run (push lanes
   * take only rows queued before a run began).
   */
  async enqueue(path: string, bytes: number, seq?: number, deleted = false): Promise<void> {
    await this.enqueueMany([{ path, bytes, ...(seq === undefined ? {} : { seq }), deleted }]);
  }

  /** enqueueMany() of everything `items` yields, in writes of 1,024 rows (a new hub index queues every local file). */
  async enqueueAll(items: AsyncIterable<Enqueued>): Promise<void> {
    let batch: Enqueued[] = [];
    for await (const it of items) {
      batch.push(it);
      if (batch.length >= 1024) {
        await this.enqueueMany(batch);
        batch = [];
      }
    }
    await this.enqueueMany(batch);
  }

  /** enqueue() for many paths in one write. */
  async enqueueMany(items: Enqueued[]): Promise<void> {
    const rows = await this.change(() => {
      const now = this.now();
      const rows = [];
      for (const { path, bytes, seq, deleted } of items) {
        const prev = this.rows.getSync(path);
        if (prev?.state === 'pending' && seq !== undefined && prev.seq === seq) continue;
        const next: QueueItem = {
          path, state: 'pending', attempts: 0, lastError: null, nextAttemptAt: now, bytes, gen: (prev?.gen ?? 0) + 1, updatedAt: now,
          ...(seq === undefined ? {} : { seq }), ...(deleted ? { deleted: true as const } : {}),
        };
        rows.push({ path, prev, next });
      }
      return { rows, result: rows };
    });
    for (const r of rows) this.events.emit('enqueued', r.path);
  }

  /**
   * Rows to work on now: pending, and failed ones whose retry time has come (`all`: every failed row). `bytes`: only
   * rows of at least `min` and below `below` bytes; `skip`: rows already being worked on; `until`: only rows last
   * changed at or before that time (by this queue's clock, `now()`).
   */
  async due(limit: number, opts: { all?: boolean; bytes?: { min?: number; below?: number }; skip?: ReadonlySet<string>; until?: number } = {}): Promise<QueueItem[]> {
    const now = this.now();
    const { all = false, bytes = {}, skip, until = Infinity } = opts;
    const out: QueueItem[] = [];
    for await (const item of this.rows.values()) {
      const ready = item.state === 'pending' || (item.state === 'failed' && (all || (item.nextAttemptAt !== null && item.nextAttemptAt <= now)));
      const sized = item.bytes >= (bytes.min ?? 0) && item.bytes < (bytes.below ?? Infinity);
      if (ready && sized && item.updatedAt <= until && !skip?.has(item.path)) out.push(item);
      if (out.length >= limit) break;
    }
    return out;
  }

  /** Earliest retry time of a failed row (null if none will be retried automatically). */
  async nextRetryAt(): Promise<number | null> {
    let next: number | null = null;
    for await (const item of this.rows.values()) {
      if (item.state === 'failed' && item.nextAttemptAt !== null) next = next === null ? item.nextAttemptAt : Math.min(next, item.nextAttemptAt);
    }
    return next;
  }

  /**
   * pending/failed -> uploading; returns the generation the upload works on (undefined if the row vanished). `seqs`:
   * as for takeMany().
   */
  async take(path: string, seqs?: Map<string, number>): Promise<number | undefined> {
    return (await this.takeMany([path], seqs)).get(path);
  }

  /**
   * take() for many paths in one write (a batch of small files): the generation of each row that exists. `seqs`, if
   * given, receives the record sequence number each taken row was queued for, where known.
   */
  async takeMany(paths: string[], seqs?: Map<string, number>): Promise<Map<string, number>> {
    return this.change(() => {
      const gens = new Map<string, number>();
      const rows = [];
      for (const path of paths) {
        const prev = this.rows.getSync(path);
        if (!prev) continue;
        gens.set(path, prev.gen);
        if (prev.seq !== undefined) seqs?.set(path, prev.seq);
        rows.push({ path, prev, next: { ...prev, state: 'uploading' as const, updatedAt: this.now() } });
      }
      return { rows, result: gens };
    });
  }

  /**
   * The upload of generation `gen` completed (`counted`: something was sent; false when the path turned out to be in
   * step with the hub already): the row goes, unless a newer change made it pending again.
   */
  async synced(path: string, gen: number, counted = true): Promise<void> {
    await this.syncedMany([{ path, gen, counted }]);
  }

  /** synced() for many rows in one write. */
  async syncedMany(done: { path: string; gen: number; counted: boolean }[]): Promise<void> {
    await this.change(() => {
      const rows = [];
      let counted = 0;
      for (const d of done) {
        const prev = this.rows.getSync(d.path);
        if (!prev) continue;
        if (prev.gen !== d.gen) {
          rows.push({ path: d.path, prev, next: { ...prev, state: 'pending' as const, updatedAt: this.now() } });
          continue;
        }
        rows.push({ path: d.path, prev, next: undefined });
        if (d.counted) counted += 1;
      }
      // Counted here, not read back from the database: uploads finishing at the same time each added to the same old total.
      this.syncedTotal += counted;
      return { rows, other: counted > 0 ? [{ type: 'put', sublevel: this.meta, key: 'synced', value: this.syncedTotal }] : [], result: undefined };
    });
  }

  /** The upload failed: retry after a backoff (or, for a permanent error, only when asked to). */
  async failed(path: string, gen: number, error: string, permanent = false): Promise<QueueItem | undefined> {
    return this.change(() => {
      const prev = this.rows.getSync(path);
      if (!prev) return { rows: [], result: undefined };
      if (prev.gen !== gen) return { rows: [{ path, prev, next: { ...prev, state: 'pending' as const, updatedAt: this.now() } }], result: prev };
      const attempts = prev.attempts + 1;
      const next: QueueItem = {
        ...prev,
        state: 'failed',
        attempts,
        lastError: error,
        nextAttemptAt: permanent ? null : this.now() + backoffDelay(attempts, this.opts),
        updatedAt: this.now(),
      };
      return { rows: [{ path, prev, next }], result: next };
    });
  }

  /**
   * Makes every failed row that waits for its backoff due now (the hub is back, so the wait is pointless). Rows that
   * failed permanently stay as they are. Returns how many rows were made due.
   */
  retryFailedNow(): Promise<number> {
    const now = this.now();
    return this.#makeDue((item) => item.nextAttemptAt !== null && item.nextAttemptAt > now);
  }

  /**
   * Makes the rows that failed permanently due now where `retry` says so (the hub's ignore rules changed: what it
   * refused may be taken now). Returns how many rows were made due.
   */
  retryPermanent(retry: (path: string) => boolean): Promise<number> {
    return this.#makeDue((item, path) => item.nextAttemptAt === null && retry(path));
  }

  /** The failed rows `pick` names, due now. */
  #makeDue(pick: (item: QueueItem, path: string) => boolean): Promise<number> {
    // Under the lock (no state changes, so no counting): a row made pending meanwhile is not overwritten as failed.
    return this.lock.run(async () => {
      const now = this.now();
      const ops = [];
      for await (const [path, item] of this.rows.iterator()) {
        if (item.state === 'failed' && pick(item, path)) ops.push({ type: 'put' as const, key: path, value: { ...item, nextAttemptAt: now } });
      }
      if (ops.length) await this.rows.batch(ops);
      return ops.length;
    });
  }

  /** A failed row that is no longer wanted (its path is back in step with the hub). */
  async drop(path: string): Promise<void> {
    await this.change(() => {
      const prev = this.rows.getSync(path);
      return { rows: prev ? [{ path, prev, next: undefined }] : [], result: undefined };
    });
  }

  async list(limit = 1000): Promise<QueueItem[]> {
    return this.rows.values({ limit }).all();
  }

  /** Failed rows, up to `limit` (a scan of the rows until as many are found: only asked for when counts say some failed). */
  async failedItems(limit: number): Promise<QueueItem[]> {
    const out: QueueItem[] = [];
    for await (const item of this.rows.values()) {
      if (item.state !== 'failed') continue;
      out.push(item);
      if (out.length >= limit) break;
    }
    return out;
  }

  /** Rows by state and their bytes, as the queue's writes left them (no rows are read). */
  async counts(): Promise<QueueCounts> {
    return { ...this.live, synced: this.syncedTotal };
  }
}
