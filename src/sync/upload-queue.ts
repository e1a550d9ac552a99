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
      if (item.state === 'uploading') await q.rows.put(item.path, { ...item, state: 'pending', updatedAt: q.now() });
    }
    return q;
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
  async enqueue(path: string, bytes: number, seq?: number): Promise<void> {
    await this.enqueueMany([{ path, bytes, ...(seq === undefined ? {} : { seq }) }]);
  }

  /** enqueueMany() of everything `items` yields, in writes of 1,024 rows (a new hub index queues every local file). */
  async enqueueAll(items: AsyncIterable<{ path: string; bytes: number; seq?: number }>): Promise<void> {
    let batch: { path: string; bytes: number; seq?: number }[] = [];
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
  async enqueueMany(items: { path: string; bytes: number; seq?: number }[]): Promise<void> {
    const now = this.now();
    const ops = [];
    for (const { path, bytes, seq } of items) {
      const prev = this.rows.getSync(path);
      if (prev?.state === 'pending' && seq !== undefined && prev.seq === seq) continue;
      const value: QueueItem = { path, state: 'pending', attempts: 0, lastError: null, nextAttemptAt: now, bytes, gen: (prev?.gen ?? 0) + 1, updatedAt: now, ...(seq === undefined ? {} : { seq }) };
      ops.push({ type: 'put' as const, key: path, value });
    }
    if (ops.length > 0) await this.rows.batch(ops);
    for (const op of ops) this.events.emit('enqueued', op.key);
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
    const gens = new Map<string, number>();
    const ops = [];
    for (const path of paths) {
      const item = this.rows.getSync(path);
      if (!item) continue;
      gens.set(path, item.gen);
      if (item.seq !== undefined) seqs?.set(path, item.seq);
      ops.push({ type: 'put' as const, key: path, value: { ...item, state: 'uploading' as const, updatedAt: this.now() } });
    }
    if (ops.length > 0) await this.rows.batch(ops);
    return gens;
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
    const ops = [];
    let counted = 0;
    for (const d of done) {
      const item = this.rows.getSync(d.path);
      if (!item) continue;
      if (item.gen !== d.gen) {
        ops.push({ type: 'put', sublevel: this.rows, key: d.path, value: { ...item, state: 'pending', updatedAt: this.now() } });
        continue;
      }
      ops.push({ type: 'del', sublevel: this.rows, key: d.path });
      if (d.counted) counted += 1;
    }
    // Counted here, not read back from the database: uploads finishing at the same time each added to the same old total.
    this.syncedTotal += counted;
    if (counted > 0) ops.push({ type: 'put', sublevel: this.meta, key: 'synced', value: this.syncedTotal });
    if (ops.length > 0) await this.rows.db.batch(ops as never);
  }

  /** The upload failed: retry after a backoff (or, for a permanent error, only when asked to). */
  async failed(path: string, gen: number, error: string, permanent = false): Promise<QueueItem | undefined> {
    const item = this.rows.getSync(path);
    if (!item) return undefined;
    if (item.gen !== gen) {
      await this.rows.put(path, { ...item, state: 'pending', updatedAt: this.now() });
      return item;
    }
    const attempts = item.attempts + 1;
    const next: QueueItem = {
      ...item,
      state: 'failed',
      attempts,
      lastError: error,
      nextAttemptAt: permanent ? null : this.now() + backoffDelay(attempts, this.opts),
      updatedAt: this.now(),
    };
    await this.rows.put(path, next);
    return next;
  }

  /**
   * Makes every failed row that waits for its backoff due now (the hub is back, so the wait is pointless). Rows that
   * failed permanently stay as they are. Returns how many rows were made due.
   */
  async retryFailedNow(): Promise<number> {
    const now = this.now();
    const ops = [];
    for await (const [path, item] of this.rows.iterator()) {
      if (item.state === 'failed' && item.nextAttemptAt !== null && item.nextAttemptAt > now) ops.push({ type: 'put' as const, key: path, value: { ...item, nextAttemptAt: now } });
    }
    if (ops.length) await this.rows.batch(ops);
    return ops.length;
  }

  /** A failed row that is no longer wanted (its path is back in step with the hub). */
  async drop(path: string): Promise<void> {
    await this.rows.del(path);
  }

  async list(limit = 1000): Promise<QueueItem[]> {
    return this.rows.values({ limit }).all();
  }

  async counts(): Promise<QueueCounts> {
    const c: QueueCounts = { pending: 0, uploading: 0, failed: 0, synced: this.syncedTotal, bytesPending: 0 };
    for await (const item of this.rows.values()) {
      c[item.state] += 1;
      c.bytesPending += item.bytes;
    }
    return c;
  }
}
