// BaluHost's energy periods, computed from the Pi's own series: "today", "week" and "month" start at 00:00 UTC (the
// day, the Monday, the 1st), as BaluHost's energy service defines them, not at local midnight like the Pi's own
// /api/energy routes. Everything is read from the hour rollups (trapezoid energy, sample counts, min/max, covered
// time) and the cost report; nothing here integrates samples again.
//
// Hour buckets are local hours. In every zone with a whole-hour UTC offset they are UTC hours too, so UTC periods
// are exact sums of buckets; in a half-hour-offset zone (Asia/Kolkata) a period starts at the local hour that
// contains its UTC start.

import { HOUR_MS } from './calendar.ts';
import { costReport } from './cost.ts';
import type { Rollup } from './rollup.ts';
import type { EnergySeries } from './series.ts';
import type { TariffBook } from './tariff.ts';

export type UtcPeriod = 'today' | 'week' | 'month';
export const UTC_PERIODS: readonly UtcPeriod[] = ['today', 'week', 'month'];

const DAY_MS = 24 * HOUR_MS;

/** Start of the current UTC day, week (Monday) or month. */
export function utcPeriodStart(period: UtcPeriod, now: number): number {
  const d = new Date(now);
  const day = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
  if (period === 'today') return day;
  if (period === 'week') return day - ((d.getUTCDay() + 6) % 7) * DAY_MS;
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
}

export interface PeriodFigures {
  from: number;
  to: number;
  samples: number;
  /** Mean of the sampled power values. */
  avgW: number;
  minW: number;
  maxW: number;
  energyWh: number;
  /** Time the readings cover (gaps longer than the series' bridge limit are not covered). */
  coveredMs: number;
  /** From the first reading in the period to `to`: the time the plug was expected to answer. */
  observedMs: number;
}

/** Figures of one device over [from, to), or null when it has no reading there. */
export async function periodFigures(series: EnergySeries, deviceId: number, from: number, to: number): Promise<PeriodFigures | null> {
  const hours = (await series.rollups(deviceId, 'hour', from, to)).filter((h) => h.samples > 0);
  if (hours.length === 0) return null;
  let samples = 0, sumW = 0, minW = Infinity, maxW = -Infinity, energyWh = 0, coveredMs = 0;
  for (const h of hours) {
    samples += h.samples;
    sumW += (h.avgW ?? 0) * h.samples;
    minW = Math.min(minW, h.minW ?? Infinity);
    maxW = Math.max(maxW, h.maxW ?? -Infinity);
    energyWh += h.energyWh;
    coveredMs += h.coveredMs;
  }
  // The first reading bounds the observed time: a plug added at noon was not "down" in the morning.
  let firstAt = hours[0]!.start;
  for await (const r of series.iterateRaw(deviceId, Math.max(from, hours[0]!.start), to)) {
    firstAt = r.at;
    break;
  }
  return { from, to, samples, avgW: sumW / samples, minW, maxW, energyWh, coveredMs: Math.min(coveredMs, to - firstAt), observedMs: Math.max(0, to - firstAt) };
}

/** Hour buckets with readings over [from, to), oldest first. */
export async function hourlyMeans(series: EnergySeries, deviceId: number, from: number, to: number): Promise<Rollup[]> {
  return (await series.rollups(deviceId, 'hour', from, to)).filter((h) => h.samples > 0 && h.avgW !== null);
}

export interface CumulativePoint {
  /** End of the hour (or now, for the open hour). */
  at: number;
  cumulativeWh: number;
  cumulativeCost: number;
  /** Mean power of that hour. */
  meanW: number;
}

export interface Cumulative {
  energyWh: number;
  cost: number;
  points: CumulativePoint[];
}

/**
 * Running energy and cost, hour by hour, of the given devices over [from, to): costs under the tariff history
 * (time of use included), summed across devices hour by hour.
 */
export async function cumulative(series: EnergySeries, book: TariffBook, deviceIds: readonly number[], from: number, to: number): Promise<Cumulative> {
  const report = await costReport(series, book, { deviceIds, from, to, resolution: 'hour' });
  const meanW = new Map<number, number>();
  for (const id of deviceIds) {
    for (const h of await hourlyMeans(series, id, from, to)) meanW.set(h.start, (meanW.get(h.start) ?? 0) + h.avgW!);
  }
  let wh = 0, cost = 0;
  const points: CumulativePoint[] = [];
  for (const b of report.total.buckets) {
    wh += b.energyWh;
    cost += b.cost;
    if (!meanW.has(b.start)) continue;
    points.push({ at: Math.min(b.end, to), cumulativeWh: wh, cumulativeCost: cost, meanW: meanW.get(b.start)! });
  }
  return { energyWh: report.total.energyWh, cost: report.total.cost, points };
}
