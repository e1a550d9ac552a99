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

import type { AbstractLevel } from 'abstract-level';
import type { PlugReading } from './types.ts';
import { Calendar, HOUR_MS, DAY_MS } from './calendar.ts';
import { type RawSample, quantize, toReading, encodeBlock, encodeSample } from './sample-codec.ts';
import {
  type Resolution, type RollupAcc, type Rollup, type IntegrationOptions,
  aggregateBucket, toRollup,
} from './rollup.ts';
import { KIND, MAX_DEVICE_ID, seriesKey, walKey } from './series-keys.ts';
import { SeriesStore, type SeriesBatch } from './series-store.ts';
import { compareCounter, type CompareOptions, type CounterComparison } from './plug-counter.ts';
import { RollupBuilder, replaceAt, type RecomputeResult } from './series-rollups.ts';
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


interface DeviceState {
  id: number;
  open: RawSample[];
  openStart: number;
  openEnd: number;
  /** Last sample in a sealed block. */
  stored: RawSample | null;
  /** Last accepted sample, including ones still waiting for their commit (the ordering reference). */
  last: RawSample | null;
  latest: PlugReading | null;
}

interface Pending {
  deviceId: number;
  sample: RawSample;
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
  readonly #rollups: RollupBuilder;
  readonly #sync: boolean;
  readonly #now: () => number;
  readonly #retentionMs: number;
  readonly #maintainEveryMs: number;
  readonly #maxPending: number;
  readonly #log: EnergyLogger | undefined;
  readonly #integ: IntegrationOptions;
  readonly #devices = new Map<number, DeviceState>();
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
    this.#sync = opts.sync ?? true;
    this.#now = opts.now ?? Date.now;
    this.#maintainEveryMs = opts.maintainEveryMs ?? 60_000;
    this.#maxPending = opts.maxPending ?? 65_536;
    this.#log = opts.logger;
    this.#integ = { maxGapMs: this.maxGapMs, clock: this.calendar };
    this.#store = new SeriesStore(db);
    this.#rollups = new RollupBuilder(this.#store, this.calendar, this.#integ, (id) => {
      const st = this.#devices.get(id);
      return st && st.open.length > 0 ? { samples: st.open, start: st.openStart } : null;
    });
  }

  // ---- lifecycle ------------------------------------------------------------------------------------------

  async open(): Promise<void> {
    if (this.#state !== 'new') throw new EnergySeriesError('ENERGY_STATE', `series is ${this.#state}`);
    await this.#exclusive(() => this.#load());
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
    const st = this.#device(reading.deviceId);
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
      for (const st of this.#devices.values()) {
        const tail = st.open[st.open.length - 1];
        // Only seal once the hour is over and no further sample can bridge into it; a pending append
        // (st.last newer than the tail) will seal it itself.
        if (tail && st.last === tail && now >= st.openEnd && now - tail.at > 2 * this.maxGapMs) {
          await this.#seal(st, null);
        }
      }
      if (this.#retentionMs > 0 && now - this.#lastRetention >= RETENTION_EVERY_MS) {
        this.#lastRetention = now;
        await this.#applyRetention(now - this.#retentionMs);
      }
    });
  }

  /** Rebuild the stored rollups of [from, to) from raw samples (clamped to retained raw data and sealed hours). */
  async recompute(deviceId: number, range: { from: number; to: number }): Promise<RecomputeResult> {
    checkDeviceId(deviceId);
    return this.#exclusive(() => this.#rollups.recompute(deviceId, range.from, range.to));
  }

  /** Compact the series' key ranges on disk (tests and benchmarks measure bytes after this). */
  async compact(): Promise<void> {
    await this.#exclusive(() => this.#store.compact());
  }

  // ---- reads ----------------------------------------------------------------------------------------------

  /** The latest durable reading of a device (from memory; null if none since the data began). */
  latest(deviceId: number): PlugReading | null {
    return this.#devices.get(deviceId)?.latest ?? null;
  }

  deviceIds(): number[] {
    return [...this.#devices.keys()].sort((a, b) => a - b);
  }

  /** Raw samples with from ≤ at < to, oldest first, streamed block by block. */
  async *iterateRaw(deviceId: number, from: number, to: number): AsyncGenerator<PlugReading> {
    checkDeviceId(deviceId);
    const st = this.#devices.get(deviceId);
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
      const st = this.#devices.get(deviceId);
      let partialStart = -1;
      if (st && st.open.length > 0) {
        const b = cal.bucketStart(resolution, st.openStart);
        if (b >= lo && b < to) {
          const hour = await this.#hourAcc(st, null);
          const acc = resolution === 'hour' ? hour
            : (await this.#rollups.cascade(deviceId, st.openStart, hour))[resolution];
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
      await this.#apply(items);
    } catch (err) {
      this.#log?.warn({ err }, 'energy series commit failed; reloading state');
      for (const it of items) it.reject(err);
      // Memory may be ahead of the disk: rebuild it from what is durable.
      try { await this.#load(); } catch (e) { this.#log?.warn({ err: e }, 'energy series reload failed'); }
      for (const it of this.#inbox) this.#device(it.deviceId).last = it.sample; // still-queued appends stay ordered
      return;
    }
    for (const it of items) {
      const st = this.#devices.get(it.deviceId);
      if (st) st.latest = it.reading;
      it.resolve();
    }
  }

  async #apply(items: Pending[]): Promise<void> {
    let ops = this.#store.newBatch();
    const rerolls: Array<[number, number]> = [];
    for (const { deviceId, sample: s } of items) {
      const st = this.#device(deviceId);
      const wal = encodeSample(s);
      if (st.open.length > 0 && s.at >= st.openEnd) {
        // The sample that closes the hour is committed in the seal's own batch: the sealed rollup includes the
        // interval up to it, so the two must survive a crash together.
        ops.putWal(walKey(deviceId, s.at), wal);
        await this.#seal(st, s, ops);
        ops = this.#store.newBatch();
        this.#startBlock(st, s, false, rerolls);
        continue;
      }
      this.#startBlock(st, s, true, rerolls);
      ops.putWal(walKey(deviceId, s.at), wal);
    }
    if (ops.length > 0) await this.#store.write(ops, this.#sync);
    for (const [id, hour] of rerolls) await this.#rollups.recompute(id, hour, hour + 1);
  }

  /**
   * Add s to the device's open block (opening one if needed). When a new block starts right after an hour that was
   * sealed without a successor (idle seal) and s is close enough to bridge into it, that hour must be redone.
   */
  #startBlock(st: DeviceState, s: RawSample, mayBridge: boolean, rerolls: Array<[number, number]>): void {
    if (st.open.length === 0) {
      const prev = st.stored;
      if (mayBridge && prev && s.at - prev.at <= this.maxGapMs && s.at >= this.calendar.hourEnd(prev.at)) {
        rerolls.push([st.id, this.calendar.hourStart(prev.at)]);
      }
      st.openStart = this.calendar.hourStart(s.at);
      st.openEnd = this.calendar.hourEnd(s.at);
    }
    st.open.push(s);
  }

  /**
   * Seal the open block of `st` with `next` as the first sample after it (null: none within reach), in one batch
   * together with `pending` (write-ahead entries not yet written).
   */
  async #seal(st: DeviceState, next: RawSample | null, pending?: SeriesBatch): Promise<void> {
    const samples = st.open;
    const first = samples[0];
    if (!first) return;
    const hour = await this.#hourAcc(st, next);
    const cascade = await this.#rollups.cascade(st.id, st.openStart, hour);
    const b = pending ?? this.#store.newBatch();
    b.putSeries(seriesKey(st.id, KIND.raw, first.at), encodeBlock(samples));
    for (const s of samples) b.delWal(walKey(st.id, s.at));
    cascade.apply(b);
    // A seal alone need not be synced: losing it in a power cut leaves the (synced) write-ahead entries, rebuilt on
    // open. With pending entries it carries acknowledgements and is synced like any commit.
    await this.#store.write(b, pending ? this.#sync : false);
    st.stored = samples[samples.length - 1]!;
    st.open = [];
  }

  /** Aggregate of the open hour (with `next` after it, or none). */
  async #hourAcc(st: DeviceState, next: RawSample | null): Promise<RollupAcc> {
    if (!st.stored || st.stored.at < st.openStart) {
      // Common case: nothing of this hour is stored yet and the last stored sample is the predecessor.
      return aggregateBucket(st.open, st.stored, next, st.openStart, st.openEnd, this.#integ);
    }
    // A block of this same hour was sealed earlier (idle seal, then a late sample): aggregate everything.
    const accs = await this.#rollups.aggregateHours(st.id, st.openStart, st.openEnd, next);
    return accs.get(st.openStart) ?? aggregateBucket([], null, null, st.openStart, st.openEnd, this.#integ);
  }

  async #applyRetention(cutoff: number): Promise<void> {
    for (const id of this.#devices.keys()) {
      // Whole blocks only: a block starting two hours before the cutoff ended before it.
      const removed = await this.#store.clearBlocksBefore(id, cutoff - 2 * HOUR_MS);
      if (removed) await this.#store.setRetentionHorizon(id, cutoff - 2 * HOUR_MS);
    }
  }

  // ---- internals: state -----------------------------------------------------------------------------------

  #device(id: number): DeviceState {
    let st = this.#devices.get(id);
    if (!st) {
      st = { id, open: [], openStart: 0, openEnd: 0, stored: null, last: null, latest: null };
      this.#devices.set(id, st);
    }
    return st;
  }

  /** (Re)build the in-memory state from disk, sealing complete hours left in the write-ahead entries. */
  async #load(): Promise<void> {
    this.#devices.clear();
    for (const id of await this.#store.deviceIds()) {
      const st = this.#device(id);
      st.stored = await this.#store.lastSample(id);
      st.last = st.stored;
    }
    const stale = this.#store.newBatch();
    const rerolls: Array<[number, number]> = [];
    for await (const [id, s] of this.#store.walEntries()) {
      const st = this.#device(id);
      if (st.stored && s.at <= st.stored.at) { stale.delWal(walKey(id, s.at)); continue; }
      const sealing = st.open.length > 0 && s.at >= st.openEnd;
      if (sealing) await this.#seal(st, s);
      // A crash may have come between a sample's commit and the redo of the idle-sealed hour it bridges into.
      this.#startBlock(st, s, !sealing, rerolls);
      st.last = s;
    }
    if (stale.length > 0) await this.#store.write(stale, false);
    for (const [id, hour] of rerolls) await this.#rollups.recompute(id, hour, hour + 1);
    for (const st of this.#devices.values()) {
      st.last = st.open[st.open.length - 1] ?? st.stored;
      st.latest = st.last ? toReading(st.id, st.last) : null;
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
