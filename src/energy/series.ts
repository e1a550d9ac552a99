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
  aggregateBucket, combine, isEmpty, toRollup, encodeRollup,
} from './rollup.ts';
import { KIND, MAX_DEVICE_ID, seriesKey, walKey } from './series-keys.ts';
import { SeriesStore, type SeriesBatch } from './series-store.ts';

export class EnergySeriesError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'EnergySeriesError';
    this.code = code;
  }
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
  logger?: EnergyLogger;
}

export interface RecomputeResult { hours: number; days: number; months: number }

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
  readonly #sync: boolean;
  readonly #now: () => number;
  readonly #retentionMs: number;
  readonly #maintainEveryMs: number;
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
    this.#log = opts.logger;
    this.#integ = { maxGapMs: this.maxGapMs, clock: this.calendar };
    this.#store = new SeriesStore(db);
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
   * Store one reading. Resolves once it is durable; rejects with ENERGY_OUT_OF_ORDER if its timestamp is not after
   * the device's previous sample, ENERGY_BAD_SAMPLE for invalid numbers.
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
    return this.#exclusive(() => this.#recompute(deviceId, range.from, range.to));
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
            : (await this.#cascade(deviceId, st.openStart, hour))[resolution === 'day' ? 0 : 1];
          replaceAt(stored, b, acc);
          partialStart = b;
        }
      }
      return stored.map(([start, acc]) =>
        toRollup(deviceId, resolution, start, cal.bucketEnd(resolution, start), acc, start === partialStart));
    });
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
    const rerolls: Array<[DeviceState, number]> = [];
    for (const { deviceId, sample: s } of items) {
      const st = this.#device(deviceId);
      if (st.open.length > 0 && s.at >= st.openEnd) {
        if (ops.length > 0) { await this.#store.write(ops, this.#sync); ops = this.#store.newBatch(); }
        await this.#seal(st, s);
      }
      if (st.open.length === 0) {
        // The previous hour was sealed with no successor; if this sample bridges into it, redo its rollup.
        const prev = st.stored;
        if (prev && s.at - prev.at <= this.maxGapMs && s.at >= this.calendar.hourEnd(prev.at)) {
          rerolls.push([st, this.calendar.hourStart(prev.at)]);
        }
        st.openStart = this.calendar.hourStart(s.at);
        st.openEnd = this.calendar.hourEnd(s.at);
      }
      st.open.push(s);
      ops.putWal(walKey(deviceId, s.at), encodeSample(s));
    }
    if (ops.length > 0) await this.#store.write(ops, this.#sync);
    for (const [st, hour] of rerolls) await this.#recompute(st.id, hour, hour + 1);
  }

  /** Seal the open block of `st` with `next` as the first sample after it (null: none within reach). */
  async #seal(st: DeviceState, next: RawSample | null): Promise<void> {
    const samples = st.open;
    const first = samples[0];
    if (!first) return;
    const hour = await this.#hourAcc(st, next);
    const [day, month] = await this.#cascade(st.id, st.openStart, hour);
    const b = this.#store.newBatch();
    b.putSeries(seriesKey(st.id, KIND.raw, first.at), encodeBlock(samples));
    for (const s of samples) b.delWal(walKey(st.id, s.at));
    this.#putOrDel(b, st.id, 'hour', st.openStart, hour);
    this.#putOrDel(b, st.id, 'day', this.calendar.dayStart(st.openStart), day);
    this.#putOrDel(b, st.id, 'month', this.calendar.monthStart(st.openStart), month);
    // Not synced: losing this batch in a power cut leaves the (synced) write-ahead entries, rebuilt on open.
    await this.#store.write(b, false);
    st.stored = samples[samples.length - 1]!;
    st.open = [];
  }

  #putOrDel(b: SeriesBatch, id: number, res: Resolution, start: number, acc: RollupAcc): void {
    const key = seriesKey(id, KIND[res], start);
    if (isEmpty(acc)) b.delSeries(key);
    else b.putSeries(key, encodeRollup(acc));
  }

  /** Aggregate of the open hour (with `next` after it, or none). */
  async #hourAcc(st: DeviceState, next: RawSample | null): Promise<RollupAcc> {
    if (!st.stored || st.stored.at < st.openStart) {
      // Common case: nothing of this hour is stored yet and the last stored sample is the predecessor.
      return aggregateBucket(st.open, st.stored, next, st.openStart, st.openEnd, this.#integ);
    }
    // A block of this same hour was sealed earlier (idle seal, then a late sample): aggregate everything.
    const accs = await this.#aggregateHours(st.id, st.openStart, st.openEnd, next);
    return accs.get(st.openStart) ?? aggregateBucket([], null, null, st.openStart, st.openEnd, this.#integ);
  }

  /** Day and month aggregates as they are with the hour `hourStart` replaced by `hour`. */
  async #cascade(id: number, hourStart: number, hour: RollupAcc): Promise<[RollupAcc, RollupAcc]> {
    const cal = this.calendar;
    const dayStart = cal.dayStart(hourStart);
    const hours = await this.#store.rollups(id, KIND.hour, dayStart, cal.dayEnd(hourStart));
    replaceAt(hours, hourStart, hour);
    const day = combine(hours.map((h) => h[1]));
    const days = await this.#store.rollups(id, KIND.day, cal.monthStart(hourStart), cal.monthEnd(hourStart));
    replaceAt(days, dayStart, day);
    return [day, combine(days.map((d) => d[1]))];
  }

  /**
   * Hour aggregates for every hour starting in [from, to) (from must be an hour start), from stored blocks plus the
   * open block in memory; `pendingNext` stands for a sample that is about to be committed after them.
   */
  async #aggregateHours(id: number, from: number, to: number, pendingNext: RawSample | null): Promise<Map<number, RollupAcc>> {
    const st = this.#devices.get(id);
    const open = st ? st.open : [];
    const prev = (await this.#store.lastBefore(id, from)) ?? null;
    // Read past the last hour's end far enough to see its successor sample.
    const reach = this.calendar.hourEnd(to - 1) + this.maxGapMs + 1;
    const list = await this.#store.samples(id, from, reach);
    for (const s of open) if (s.at >= from && s.at < reach) list.push(s);
    const openPrev = lastBelow(open, from);
    let before = openPrev ?? prev;
    if (pendingNext && (list.length === 0 || list[list.length - 1]!.at < pendingNext.at)) list.push(pendingNext);
    const out = new Map<number, RollupAcc>();
    let i = 0;
    for (let h = from; h < to; h = this.calendar.hourEnd(h)) {
      const end = this.calendar.hourEnd(h);
      const j0 = i;
      while (i < list.length && list[i]!.at < end) i++;
      const bucket = list.slice(j0, i);
      const acc = aggregateBucket(bucket, before, list[i] ?? null, h, end, this.#integ);
      if (!isEmpty(acc)) out.set(h, acc);
      if (bucket.length > 0) before = bucket[bucket.length - 1]!;
    }
    return out;
  }

  async #recompute(id: number, from: number, to: number): Promise<RecomputeResult> {
    const cal = this.calendar;
    const st = this.#devices.get(id);
    const result: RecomputeResult = { hours: 0, days: 0, months: 0 };
    // Rollups exist only where raw samples are (or were): clamp to the stored samples' hours.
    const first = await this.#store.firstSampleAt(id);
    const last = await this.#store.lastSample(id);
    if (first === null || last === null) return result;
    let lo = Math.max(cal.hourStart(Math.max(0, from)), cal.hourStart(first));
    let hi = Math.min(to, cal.hourEnd(last.at));
    if (st && st.open.length > 0) hi = Math.min(hi, st.openStart); // the open hour is never stored
    if ((await this.#store.retentionHorizon(id)) !== null) {
      // The first retained hour lost its predecessor sample: leave it (and everything before) as stored.
      lo = Math.max(lo, cal.hourEnd(first));
    }
    if (lo >= hi) return result;
    const touchedDays = new Set<number>();
    const touchedMonths = new Set<number>();
    // One local day per batch keeps memory bounded (≤ 25 hours of samples).
    for (let d = cal.dayStart(lo); d < hi; d = cal.dayEnd(d)) {
      const a = Math.max(d, lo), b = Math.min(cal.dayEnd(d), hi);
      const accs = await this.#aggregateHours(id, a, b, null);
      const batch = this.#store.newBatch();
      for (const start of await this.#store.rollupStarts(id, KIND.hour, a, b)) {
        if (!accs.has(start)) batch.delSeries(seriesKey(id, KIND.hour, start));
      }
      for (const [start, acc] of accs) batch.putSeries(seriesKey(id, KIND.hour, start), encodeRollup(acc));
      await this.#store.write(batch, false);
      result.hours += accs.size;
      touchedDays.add(d);
      touchedMonths.add(cal.monthStart(d));
    }
    for (const d of touchedDays) {
      const hours = await this.#store.rollups(id, KIND.hour, d, cal.dayEnd(d));
      const batch = this.#store.newBatch();
      this.#putOrDel(batch, id, 'day', d, combine(hours.map((h) => h[1])));
      await this.#store.write(batch, false);
      result.days++;
    }
    for (const m of touchedMonths) {
      const days = await this.#store.rollups(id, KIND.day, m, cal.monthEnd(m));
      const batch = this.#store.newBatch();
      this.#putOrDel(batch, id, 'month', m, combine(days.map((x) => x[1])));
      await this.#store.write(batch, false);
      result.months++;
    }
    return result;
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
    for await (const [id, s] of this.#store.walEntries()) {
      const st = this.#device(id);
      if (st.stored && s.at <= st.stored.at) { stale.delWal(walKey(id, s.at)); continue; }
      if (st.open.length > 0 && s.at >= st.openEnd) await this.#seal(st, s);
      if (st.open.length === 0) {
        st.openStart = this.calendar.hourStart(s.at);
        st.openEnd = this.calendar.hourEnd(s.at);
      }
      st.open.push(s);
      st.last = s;
    }
    if (stale.length > 0) await this.#store.write(stale, false);
    for (const st of this.#devices.values()) {
      st.last = st.open[st.open.length - 1] ?? st.stored;
      st.latest = st.last ? toReading(st.id, st.last) : null;
    }
  }
}

function replaceAt(list: Array<[number, RollupAcc]>, start: number, acc: RollupAcc): void {
  let i = 0;
  while (i < list.length && list[i]![0] < start) i++;
  const empty = isEmpty(acc);
  if (i < list.length && list[i]![0] === start) {
    if (empty) list.splice(i, 1);
    else list[i] = [start, acc];
  } else if (!empty) {
    list.splice(i, 0, [start, acc]);
  }
}

function lastBelow(samples: readonly RawSample[], t: number): RawSample | null {
  let found: RawSample | null = null;
  for (const s of samples) {
    if (s.at < t) found = s;
    else break;
  }
  return found;
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
