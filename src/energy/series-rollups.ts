// Rollup maintenance over the stored series: hour aggregates from raw samples, the day/month cascade, and
// recompute. Used by the incremental write path (at every seal) and by recompute() alike, which is what makes their
// records identical: the same functions run over the same samples in the same order.

import type { Calendar } from './calendar.ts';
import type { RawSample } from './sample-codec.ts';
import {
  type RollupAcc, type IntegrationOptions, aggregateBucket, combine, isEmpty, encodeRollup,
} from './rollup.ts';
import { KIND, seriesKey } from './series-keys.ts';
import type { SeriesStore, SeriesBatch, HourPack } from './series-store.ts';

export interface RecomputeResult { hours: number; days: number; months: number }

/** The device's open (unsealed) hour block, kept in memory by the series. */
export type OpenBlockLookup = (deviceId: number) => { samples: readonly RawSample[]; start: number } | null;

export class RollupBuilder {
  readonly #store: SeriesStore;
  readonly #cal: Calendar;
  readonly #integ: IntegrationOptions;
  readonly #openBlock: OpenBlockLookup;

  constructor(store: SeriesStore, calendar: Calendar, integ: IntegrationOptions, openBlock: OpenBlockLookup) {
    this.#store = store;
    this.#cal = calendar;
    this.#integ = integ;
    this.#openBlock = openBlock;
  }

  putOrDel(b: SeriesBatch, id: number, res: 'day' | 'month', start: number, acc: RollupAcc): void {
    const key = seriesKey(id, KIND[res], start);
    if (isEmpty(acc)) b.delSeries(key);
    else b.putSeries(key, encodeRollup(acc));
  }

  /**
   * Day and month aggregates as they are with the hour `hourStart` replaced by `hour`, plus the writes that store
   * that hour (`apply` adds the hour pack, day and month records to a batch).
   */
  async cascade(id: number, hourStart: number, hour: RollupAcc): Promise<Cascade> {
    const cal = this.#cal;
    const dayStart = cal.dayStart(hourStart), dayEnd = cal.dayEnd(hourStart);
    const packs = await this.#store.hourPacks(id, dayStart, dayEnd);
    const hours = hoursIn(packs, dayStart, dayEnd);
    replaceAt(hours, hourStart, hour);
    const day = combine(hours.map((h) => h[1]));
    const monthStart = cal.monthStart(hourStart);
    const days = await this.#store.rollups(id, KIND.day, monthStart, cal.monthEnd(hourStart));
    replaceAt(days, dayStart, day);
    const month = combine(days.map((d) => d[1]));
    return {
      day,
      month,
      apply: (b) => {
        this.#writeDayHours(b, id, dayStart, dayEnd, packs, hours);
        this.putOrDel(b, id, 'day', dayStart, day);
        this.putOrDel(b, id, 'month', monthStart, month);
      },
    };
  }

  /**
   * Store `hours` as the hours of the local day [dayStart, dayEnd): in the pack keyed dayStart, removing any of
   * them from other packs (only possible after a time-zone change).
   */
  #writeDayHours(b: SeriesBatch, id: number, dayStart: number, dayEnd: number, packs: HourPack[],
    hours: Array<[number, RollupAcc]>): void {
    let own: Array<[number, RollupAcc]> = [];
    for (const p of packs) {
      const outside = p.hours.filter(([t]) => t < dayStart || t >= dayEnd);
      if (p.key === dayStart) own = outside;
      else if (p.corrupt || outside.length !== p.hours.length) this.#store.putHourPack(b, id, p.key, outside);
    }
    const all = [...own, ...hours].sort((x, y) => x[0] - y[0]);
    this.#store.putHourPack(b, id, dayStart, all);
  }

  /**
   * Hour aggregates for every hour starting in [from, to) (from must be an hour start), from stored blocks plus the
   * open block in memory; `pendingNext` stands for a sample that is about to be committed after them.
   */
  async aggregateHours(id: number, from: number, to: number, pendingNext: RawSample | null): Promise<Map<number, RollupAcc>> {
    const open = this.#openBlock(id)?.samples ?? [];
    const prev = (await this.#store.lastBefore(id, from)) ?? null;
    // Read past the last hour's end far enough to see its successor sample.
    const reach = this.#cal.hourEnd(to - 1) + this.#integ.maxGapMs + 1;
    const list = await this.#store.samples(id, from, reach);
    for (const s of open) if (s.at >= from && s.at < reach) list.push(s);
    const openPrev = lastBelow(open, from);
    let before = openPrev ?? prev;
    if (pendingNext && (list.length === 0 || list[list.length - 1]!.at < pendingNext.at)) list.push(pendingNext);
    const out = new Map<number, RollupAcc>();
    let i = 0;
    for (let h = from; h < to; h = this.#cal.hourEnd(h)) {
      const end = this.#cal.hourEnd(h);
      const j0 = i;
      while (i < list.length && list[i]!.at < end) i++;
      const bucket = list.slice(j0, i);
      const acc = aggregateBucket(bucket, before, list[i] ?? null, h, end, this.#integ);
      if (!isEmpty(acc)) out.set(h, acc);
      if (bucket.length > 0) before = bucket[bucket.length - 1]!;
    }
    return out;
  }

  async recompute(id: number, from: number, to: number): Promise<RecomputeResult> {
    const cal = this.#cal;
    const openBlock = this.#openBlock(id);
    const result: RecomputeResult = { hours: 0, days: 0, months: 0 };
    // Rollups exist only where raw samples are (or were): clamp to the stored samples' hours.
    const first = await this.#store.firstSampleAt(id);
    const last = await this.#store.lastSample(id);
    if (first === null || last === null) return result;
    let lo = Math.max(cal.hourStart(Math.max(0, from)), cal.hourStart(first));
    let hi = Math.min(to, cal.hourEnd(last.at));
    if (openBlock && openBlock.samples.length > 0) hi = Math.min(hi, openBlock.start); // the open hour is never stored
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
      const accs = await this.aggregateHours(id, a, b, null);
      const dayEnd = cal.dayEnd(d);
      const packs = await this.#store.hourPacks(id, d, dayEnd, true);
      // Keep the day's hours outside [a, b), replace those inside with the recomputed ones.
      const hours = hoursIn(packs, d, dayEnd).filter(([t]) => t < a || t >= b);
      for (const [start, acc] of accs) hours.push([start, acc]);
      hours.sort((x, y) => x[0] - y[0]);
      const batch = this.#store.newBatch();
      this.#writeDayHours(batch, id, d, dayEnd, packs, hours);
      await this.#store.write(batch, false);
      result.hours += accs.size;
      touchedDays.add(d);
      touchedMonths.add(cal.monthStart(d));
    }
    for (const d of touchedDays) {
      const hours = await this.#store.rollups(id, KIND.hour, d, cal.dayEnd(d));
      const batch = this.#store.newBatch();
      this.putOrDel(batch, id, 'day', d, combine(hours.map((h) => h[1])));
      await this.#store.write(batch, false);
      result.days++;
    }
    for (const m of touchedMonths) {
      const days = await this.#store.rollups(id, KIND.day, m, cal.monthEnd(m));
      const batch = this.#store.newBatch();
      this.putOrDel(batch, id, 'month', m, combine(days.map((x) => x[1])));
      await this.#store.write(batch, false);
      result.months++;
    }
    return result;
  }
}

export interface Cascade {
  day: RollupAcc;
  month: RollupAcc;
  /** Add the writes of the hour, its day and its month to a batch. */
  apply(b: SeriesBatch): void;
}

function hoursIn(packs: readonly HourPack[], from: number, to: number): Array<[number, RollupAcc]> {
  const out: Array<[number, RollupAcc]> = [];
  for (const p of packs) for (const h of p.hours) if (h[0] >= from && h[0] < to) out.push(h);
  return out.sort((x, y) => x[0] - y[0]);
}

/** Insert, replace or (for an empty aggregate) remove the bucket `start` in a time-ordered list. */
export function replaceAt(list: Array<[number, RollupAcc]>, start: number, acc: RollupAcc): void {
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
