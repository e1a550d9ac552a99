// The per-device hour blocks behind the series' write path: which block a sample joins, when the open block is
// sealed (block, write-ahead deletes and rollups in one batch), and how the blocks are rebuilt from the write-ahead
// entries on open. Split from series.ts so that the series itself only orders, queues and reads; every method here
// runs inside the series' exclusive chain.

import type { PlugReading } from './types.ts';
import { type Calendar, HOUR_MS } from './calendar.ts';
import { type RawSample, toReading, encodeBlock, encodeSample } from './sample-codec.ts';
import { type RollupAcc, type IntegrationOptions, aggregateBucket } from './rollup.ts';
import { KIND, seriesKey, walKey } from './series-keys.ts';
import type { SeriesStore, SeriesBatch } from './series-store.ts';
import { RollupBuilder } from './series-rollups.ts';

export interface DeviceState {
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

/** One sample to commit, already validated and ordered by the series. */
export interface BlockSample {
  deviceId: number;
  sample: RawSample;
}

export class HourBlocks {
  readonly rollups: RollupBuilder;
  readonly #store: SeriesStore;
  readonly #calendar: Calendar;
  readonly #maxGapMs: number;
  readonly #sync: boolean;
  readonly #integ: IntegrationOptions;
  readonly #devices = new Map<number, DeviceState>();

  constructor(store: SeriesStore, calendar: Calendar, maxGapMs: number, sync: boolean) {
    this.#store = store;
    this.#calendar = calendar;
    this.#maxGapMs = maxGapMs;
    this.#sync = sync;
    this.#integ = { maxGapMs, clock: calendar };
    this.rollups = new RollupBuilder(store, calendar, this.#integ, (id) => {
      const st = this.#devices.get(id);
      return st && st.open.length > 0 ? { samples: st.open, start: st.openStart } : null;
    });
  }

  get(id: number): DeviceState | undefined {
    return this.#devices.get(id);
  }

  ids(): IterableIterator<number> {
    return this.#devices.keys();
  }

  device(id: number): DeviceState {
    let st = this.#devices.get(id);
    if (!st) {
      st = { id, open: [], openStart: 0, openEnd: 0, stored: null, last: null, latest: null };
      this.#devices.set(id, st);
    }
    return st;
  }

  /** Write the samples' write-ahead entries, sealing the blocks they close. */
  async apply(items: readonly BlockSample[]): Promise<void> {
    let ops = this.#store.newBatch();
    const rerolls: Array<[number, number]> = [];
    for (const { deviceId, sample: s } of items) {
      const st = this.device(deviceId);
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
    for (const [id, hour] of rerolls) await this.rollups.recompute(id, hour, hour + 1);
  }

  /** Seal hours that ended without a successor sample. */
  async sealIdle(now: number): Promise<void> {
    for (const st of this.#devices.values()) {
      const tail = st.open[st.open.length - 1];
      // Only seal once the hour is over and no further sample can bridge into it; a pending append
      // (st.last newer than the tail) will seal it itself.
      if (tail && st.last === tail && now >= st.openEnd && now - tail.at > 2 * this.#maxGapMs) {
        await this.#seal(st, null);
      }
    }
  }

  async applyRetention(cutoff: number): Promise<void> {
    for (const id of this.#devices.keys()) {
      // Whole blocks only: a block starting two hours before the cutoff ended before it.
      const removed = await this.#store.clearBlocksBefore(id, cutoff - 2 * HOUR_MS);
      if (removed) await this.#store.setRetentionHorizon(id, cutoff - 2 * HOUR_MS);
    }
  }

  /** Aggregate of the open hour (with `next` after it, or none). */
  async hourAcc(st: DeviceState, next: RawSample | null): Promise<RollupAcc> {
    if (!st.stored || st.stored.at < st.openStart) {
      // Common case: nothing of this hour is stored yet and the last stored sample is the predecessor.
      return aggregateBucket(st.open, st.stored, next, st.openStart, st.openEnd, this.#integ);
    }
    // A block of this same hour was sealed earlier (idle seal, then a late sample): aggregate everything.
    const accs = await this.rollups.aggregateHours(st.id, st.openStart, st.openEnd, next);
    return accs.get(st.openStart) ?? aggregateBucket([], null, null, st.openStart, st.openEnd, this.#integ);
  }

  /** (Re)build the in-memory state from disk, sealing complete hours left in the write-ahead entries. */
  async load(): Promise<void> {
    this.#devices.clear();
    for (const id of await this.#store.deviceIds()) {
      const st = this.device(id);
      st.stored = await this.#store.lastSample(id);
      st.last = st.stored;
    }
    const stale = this.#store.newBatch();
    const rerolls: Array<[number, number]> = [];
    for await (const [id, s] of this.#store.walEntries()) {
      const st = this.device(id);
      if (st.stored && s.at <= st.stored.at) { stale.delWal(walKey(id, s.at)); continue; }
      const sealing = st.open.length > 0 && s.at >= st.openEnd;
      if (sealing) await this.#seal(st, s);
      // A crash may have come between a sample's commit and the redo of the idle-sealed hour it bridges into.
      this.#startBlock(st, s, !sealing, rerolls);
      st.last = s;
    }
    if (stale.length > 0) await this.#store.write(stale, false);
    for (const [id, hour] of rerolls) await this.rollups.recompute(id, hour, hour + 1);
    for (const st of this.#devices.values()) {
      st.last = st.open[st.open.length - 1] ?? st.stored;
      st.latest = st.last ? toReading(st.id, st.last) : null;
    }
  }

  /**
   * Add s to the device's open block (opening one if needed). When a new block starts right after an hour that was
   * sealed without a successor (idle seal) and s is close enough to bridge into it, that hour must be redone.
   */
  #startBlock(st: DeviceState, s: RawSample, mayBridge: boolean, rerolls: Array<[number, number]>): void {
    if (st.open.length === 0) {
      const prev = st.stored;
      if (mayBridge && prev && s.at - prev.at <= this.#maxGapMs && s.at >= this.#calendar.hourEnd(prev.at)) {
        rerolls.push([st.id, this.#calendar.hourStart(prev.at)]);
      }
      st.openStart = this.#calendar.hourStart(s.at);
      st.openEnd = this.#calendar.hourEnd(s.at);
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
    const hour = await this.hourAcc(st, next);
    const cascade = await this.rollups.cascade(st.id, st.openStart, hour);
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
}
