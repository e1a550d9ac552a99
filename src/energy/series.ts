// The energy time series of all plugs, in LevelDB.
//
// Write path (acknowledged means durable):
//   append(reading) → validated and ordered synchronously → queued → the next group commit writes the sample as
//   one write-ahead entry (wal sublevel) with `sync: true` (every append queued while a commit is in flight joins
//   the next commit) → the promise resolves. The samples of the current local hour stay in memory as the open block.
//   When a sample of a later hour arrives, the open block is *sealed* in one atomic batch: the encoded block is
//   put, its write-ahead entries are deleted, and the hour / day / month rollups are rewritten. A crash before that
//   batch leaves the write-ahead entries, and open() rebuilds (and seals) the blocks from them.
//
// Rollups: the hour rollup is a pure function of raw samples (rollup.ts); the day rollup is the combination of the
// day's stored hour rollups, the month the combination of its day rollups, rebuilt from those keys at every seal.
// recompute() runs the same functions over a range, so it reproduces the incremental records byte for byte.
// The open hour is never stored; queries add it on the fly and flag the bucket `partial`.
// The hour blocks themselves (sealing, rebuild from the write-ahead entries) live in series-blocks.ts; this module
// validates, orders and group-commits appends and answers queries.

import type { AbstractLevel } from 'abstract-level';
import type { PlugReading } from './types.ts';
import { Calendar, HOUR_MS, DAY_MS } from './calendar.ts';
import { type RawSample, quantize, toReading } from './sample-codec.ts';
import { type Resolution, type Rollup, toRollup } from './rollup.ts';
import { KIND, MAX_DEVICE_ID } from './series-keys.ts';
import { SeriesStore } from './series-store.ts';
import { compareCounter, type CompareOptions, type CounterComparison } from './plug-counter.ts';
import { replaceAt, type RecomputeResult } from './series-rollups.ts';
import { HourBlocks, type BlockSample } from './series-blocks.ts';
import { CodedError } from '../errors.ts';

export type { RecomputeResult };

export class EnergySeriesError extends CodedError<string> {
  override name = 'EnergySeriesError';
}

export interface EnergyLogger {
  warn(obj: object, msg?: string): void;
}

export interface EnergySeriesOptions {
  /** IANA zone for hour/day/month buckets (default: the system zone). */
  timeZone?: string;
  /** Nominal poll interval (default 30 000 ms). */
  intervalMs?: number;
  /** Gaps longer than this many intervals are not bridged by the energy integral (default 3). */
  maxGapIntervals?: number;
  /** Raw samples older than this are deleted; rollups are kept (default 365; 0 = keep forever). */
  rawRetentionDays?: number;
  /** fsync each group commit (default true). */
  sync?: boolean;
  now?: () => number;
  /** Period of the maintenance timer (idle seal + retention); default 60 000 ms, 0 = no timer. */
  maintainEveryMs?: number;
  /** Appends waiting for their commit beyond this are rejected with ENERGY_BUSY (default 65 536). */
  maxPending?: number;
  logger?: EnergyLogger;
}

interface Pending extends BlockSample {
  reading: PlugReading;
  resolve: () => void;
  reject: (err: unknown) => void;
}

const MAX_COMMIT = 4096;
const RETENTION_EVERY_MS = HOUR_MS;

export class EnergySeries {
  readonly calendar: Calendar;
  readonly intervalMs: number;
  readonly maxGapMs: number;
  readonly #store: SeriesStore;
  readonly #blocks: HourBlocks;
  readonly #now: () => number;
  readonly #retentionMs: number;
  readonly #maintainEveryMs: number;
  readonly #maxPending: number;
  readonly #log: EnergyLogger | undefined;
  #inbox: Pending[] = [];
  #drainScheduled = false;
  #chain: Promise<unknown> = Promise.resolve();
  #state: 'new' | 'open' | 'closed' = 'new';
  #timer: NodeJS.Timeout | null = null;
  #lastRetention = 0;

  constructor(db: AbstractLevel<any, any, any>, opts: EnergySeriesOptions = {}) {
    this.calendar = new Calendar(opts.timeZone);
    this.intervalMs = positive(opts.intervalMs ?? 30_000, 'intervalMs');
    this.maxGapMs = this.intervalMs * positive(opts.maxGapIntervals ?? 3, 'maxGapIntervals');
    if (this.maxGapMs > HOUR_MS) {
      // A bridged interval may then skip a whole hour bucket, which the per-hour rollups do not model.
      throw new EnergySeriesError('ENERGY_BAD_OPTION', 'intervalMs × maxGapIntervals must not exceed one hour');
    }
    const days = opts.rawRetentionDays ?? 365;
    if (!(days >= 0)) throw new EnergySeriesError('ENERGY_BAD_OPTION', 'rawRetentionDays must be ≥ 0');
    this.#retentionMs = days * DAY_MS;
    this.#now = opts.now ?? Date.now;
    this.#maintainEveryMs = opts.maintainEveryMs ?? 60_000;
    this.#maxPending = opts.maxPending ?? 65_536;
    this.#log = opts.logger;
    this.#store = new SeriesStore(db);
    this.#blocks = new HourBlocks(this.#store, this.calendar, this.maxGapMs, opts.sync ?? true);
  }

  // ---- lifecycle ------------------------------------------------------------------------------------------

  async open(): Promise<void> {
    if (this.#state !== 'new') throw new EnergySeriesError('ENERGY_STATE', `series is ${this.#state}`);
    await this.#exclusive(() => this.#blocks.load());
    this.#state = 'open';
    await this.maintain();
    if (this.#maintainEveryMs > 0) {
      this.#timer = setInterval(() => {
        this.maintain().catch((err: unknown) => this.#log?.warn({ err }, 'energy maintenance failed'));
      }, this.#maintainEveryMs);
      this.#timer.unref();
    }
  }

  /** Waits for queued appends; leaves the open hour in the write-ahead entries (nothing is lost or sealed early). */
  async close(): Promise<void> {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    await this.#exclusive(async () => {});
  }

  // ---- writes ---------------------------------------------------------------------------------------------

  /**
   * Store one reading. Resolves once it is durable (fsync'd unless the series was opened with sync: false);
   * rejects with ENERGY_OUT_OF_ORDER if its timestamp is not after the device's previous sample, ENERGY_BAD_SAMPLE
   * for invalid numbers, ENERGY_BAD_DEVICE, ENERGY_BUSY when too many appends wait, ENERGY_STATE if not open.
   */
  append(reading: PlugReading): Promise<void> {
    if (this.#state !== 'open') {
      return Promise.reject(new EnergySeriesError('ENERGY_STATE', `series is ${this.#state}`));
    }
    let sample: RawSample;
    try {
      checkDeviceId(reading.deviceId);
      sample = quantize(reading);
    } catch (err) {
      return Promise.reject(err);
    }
    if (this.#inbox.length >= this.#maxPending) {
      return Promise.reject(new EnergySeriesError('ENERGY_BUSY', `${this.#inbox.length} appends already waiting for the disk`));
    }
    const st = this.#blocks.device(reading.deviceId);
    if (st.last && sample.at <= st.last.at) {
      return Promise.reject(new EnergySeriesError('ENERGY_OUT_OF_ORDER',
        `device ${reading.deviceId}: sample at ${sample.at} is not after ${st.last.at}`));
    }
    st.last = sample;
    return new Promise<void>((resolve, reject) => {
      this.#inbox.push({ deviceId: reading.deviceId, sample, reading, resolve, reject });
      if (!this.#drainScheduled) {
        this.#drainScheduled = true;
        void this.#exclusive(() => this.#drainOnce());
      }
    });
  }

  /** Seal hours that ended without a successor sample, and apply raw retention. Called by the timer too. */
  async maintain(now: number = this.#now()): Promise<void> {
    if (this.#state !== 'open') return;
    await this.#exclusive(async () => {
      await this.#blocks.sealIdle(now);
      if (this.#retentionMs > 0 && now - this.#lastRetention >= RETENTION_EVERY_MS) {
        this.#lastRetention = now;
        await this.#blocks.applyRetention(now - this.#retentionMs);
      }
    });
  }

  /** Rebuild the stored rollups of [from, to) from raw samples (clamped to retained raw data and sealed hours). */
  async recompute(deviceId: number, range: { from: number; to: number }): Promise<RecomputeResult> {
    checkDeviceId(deviceId);
    return this.#exclusive(() => this.#blocks.rollups.recompute(deviceId, range.from, range.to));
  }

  /** Compact the series' key ranges on disk (tests and benchmarks measure bytes after this). */
  async compact(): Promise<void> {
    await this.#exclusive(() => this.#store.compact());
  }

  // ---- reads ----------------------------------------------------------------------------------------------

  /** The latest durable reading of a device (from memory; null if none since the data began). */
  latest(deviceId: number): PlugReading | null {
    return this.#blocks.get(deviceId)?.latest ?? null;
  }

  deviceIds(): number[] {
    return [...this.#blocks.ids()].sort((a, b) => a - b);
  }

  /** Raw samples with from ≤ at < to, oldest first, streamed block by block. */
  async *iterateRaw(deviceId: number, from: number, to: number): AsyncGenerator<PlugReading> {
    checkDeviceId(deviceId);
    const st = this.#blocks.get(deviceId);
    // Copy the open block and open the iterator in the same tick: the iterator's snapshot and the copy then agree.
    const open = st ? st.open.slice() : [];
    let lastStored = -1;
    for await (const block of this.#store.blocks(deviceId, from, to)) {
      for (const s of block) {
        lastStored = s.at;
        if (s.at >= from && s.at < to) yield toReading(deviceId, s);
      }
    }
    // A seal may commit between its batch and its memory update: then the copy repeats the new block's samples.
    for (const s of open) if (s.at > lastStored && s.at >= from && s.at < to) yield toReading(deviceId, s);
  }

  async raw(deviceId: number, from: number, to: number): Promise<PlugReading[]> {
    const out: PlugReading[] = [];
    for await (const r of this.iterateRaw(deviceId, from, to)) out.push(r);
    return out;
  }

  /** Rollups of buckets starting in [bucketStart(from), to), oldest first; includes the open hour as partial. */
  async rollups(deviceId: number, resolution: Resolution, from: number, to: number): Promise<Rollup[]> {
    checkDeviceId(deviceId);
    return this.#exclusive(async () => {
      const cal = this.calendar;
      const lo = cal.bucketStart(resolution, from);
      const stored = await this.#store.rollups(deviceId, KIND[resolution], lo, to);
      const st = this.#blocks.get(deviceId);
      let partialStart = -1;
      if (st && st.open.length > 0) {
        const b = cal.bucketStart(resolution, st.openStart);
        if (b >= lo && b < to) {
          const hour = await this.#blocks.hourAcc(st, null);
          const acc = resolution === 'hour' ? hour
            : (await this.#blocks.rollups.cascade(deviceId, st.openStart, hour))[resolution];
          replaceAt(stored, b, acc);
          partialStart = b;
        }
      }
      return stored.map(([start, acc]) =>
        toRollup(deviceId, resolution, start, cal.bucketEnd(resolution, start), acc, start === partialStart));
    });
  }

  /**
   * The plug's own counter energy next to the integrated energy, bucket by bucket (hour or day): the cross-check
   * of the integral against today_energy, resets handled (see plug-counter.ts).
   */
  async counterCheck(deviceId: number, resolution: Resolution, from: number, to: number, opts?: CompareOptions): Promise<CounterComparison[]> {
    return compareCounter(await this.rollups(deviceId, resolution, from, to), opts);
  }

  // ---- internals: commit ------------------------------------------------------------------------------------

  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#chain.then(fn);
    this.#chain = run.catch(() => undefined);
    return run;
  }

  async #drainOnce(): Promise<void> {
    this.#drainScheduled = false;
    const items = this.#inbox.splice(0, MAX_COMMIT);
    if (this.#inbox.length > 0) {
      this.#drainScheduled = true;
      void this.#exclusive(() => this.#drainOnce());
    }
    if (items.length === 0) return;
    try {
      await this.#blocks.apply(items);
    } catch (err) {
      this.#log?.warn({ err }, 'energy series commit failed; reloading state');
      for (const it of items) it.reject(err);
      // Memory may be ahead of the disk: rebuild it from what is durable.
      try { await this.#blocks.load(); } catch (e) { this.#log?.warn({ err: e }, 'energy series reload failed'); }
      for (const it of this.#inbox) this.#blocks.device(it.deviceId).last = it.sample; // still-queued appends stay ordered
      return;
    }
    for (const it of items) {
      const st = this.#blocks.get(it.deviceId);
      if (st) st.latest = it.reading;
      it.resolve();
    }
  }
}

function positive(v: number, name: string): number {
  if (!(v > 0) || !Number.isFinite(v)) throw new EnergySeriesError('ENERGY_BAD_OPTION', `${name} must be > 0`);
  return v;
}

function checkDeviceId(id: number): void {
  if (!Number.isInteger(id) || id < 0 || id > MAX_DEVICE_ID) {
    throw new EnergySeriesError('ENERGY_BAD_DEVICE', `device id must be an integer in [0, 2^32), got ${id}`);
  }
}
