// Energy costs per device and in total, for any hour / day / month range, under the tariff history.
//
// Costs are always computed on hourly energy: each hour's energy × the price in force at the start of that local
// hour. Tariff changes happen at local midnight and TOU tiers change on local hour edges, so every price boundary
// coincides with an hour boundary and the result is exact (no pro-rating). Coarser buckets are sums of their hours.
//
// Monthly estimate (estimateMonth):
//   estimate = actual(month start → now)
//            + Σ over the remaining local hours h of the month of  profile[hour-of-day(h)] × f(h) × price(h)
//   where profile[k] = mean energy of the device's stored hours with local hour-of-day k over the last
//   `profileDays` (default 7) complete local days (hours with no data are skipped, not counted as zero; if a
//   device has no hour k in the window, its mean over all its hours in the window is used), summed over devices,
//   and f(h) = the not-yet-elapsed fraction of h (1 except for the current hour).
//   Pricing each projected hour with the tariff in force then makes on/off-peak mixes and tariff changes already
//   entered for later this month count, which a flat "mean daily cost × days" would miss.

import type { Calendar } from './calendar.ts';
import type { Resolution, Rollup } from './rollup.ts';
import type { TariffBook } from './tariff.ts';

/** What cost computations need from the series (EnergySeries satisfies it). */
export interface HourlySource {
  readonly calendar: Calendar;
  rollups(deviceId: number, resolution: Resolution, from: number, to: number): Promise<Rollup[]>;
}

export interface CostBucket {
  start: number;
  end: number;
  energyWh: number;
  cost: number;
  /** Energy in hours before the first tariff (not priced). */
  unpricedWh: number;
  partial: boolean;
}

export interface DeviceCost {
  deviceId: number;
  energyWh: number;
  cost: number;
  unpricedWh: number;
  buckets: CostBucket[];
}

export interface CostReport {
  from: number;
  to: number;
  resolution: Resolution;
  /** The currency of every tariff used, or null if none was used or they differ. */
  currency: string | null;
  devices: DeviceCost[];
  total: { energyWh: number; cost: number; unpricedWh: number; buckets: CostBucket[] };
}

export interface CostQuery {
  deviceIds: readonly number[];
  from: number;
  to: number;
  resolution: Resolution;
}

/** Costs of the hours starting in [hourStart(from), to), grouped into buckets of `resolution`. */
export async function costReport(src: HourlySource, book: TariffBook, q: CostQuery): Promise<CostReport> {
  const cal = src.calendar;
  const currencies = new Set<string | null>();
  const totals = new Map<number, CostBucket>();
  const devices: DeviceCost[] = [];
  for (const deviceId of q.deviceIds) {
    const hours = await src.rollups(deviceId, 'hour', q.from, q.to);
    const buckets = new Map<number, CostBucket>();
    const dev: DeviceCost = { deviceId, energyWh: 0, cost: 0, unpricedWh: 0, buckets: [] };
    for (const h of hours) {
      const price = book.priceAt(h.start);
      const cost = price ? (h.energyWh / 1000) * price.pricePerKwh : 0;
      const unpriced = price ? 0 : h.energyWh;
      if (price) currencies.add(price.tariff.currency);
      const start = cal.bucketStart(q.resolution, h.start);
      for (const map of [buckets, totals]) {
        let b = map.get(start);
        if (!b) {
          b = { start, end: cal.bucketEnd(q.resolution, start), energyWh: 0, cost: 0, unpricedWh: 0, partial: false };
          map.set(start, b);
        }
        b.energyWh += h.energyWh;
        b.cost += cost;
        b.unpricedWh += unpriced;
        b.partial ||= h.partial;
      }
      dev.energyWh += h.energyWh;
      dev.cost += cost;
      dev.unpricedWh += unpriced;
    }
    dev.buckets = [...buckets.values()].sort((a, b) => a.start - b.start);
    devices.push(dev);
  }
  const totalBuckets = [...totals.values()].sort((a, b) => a.start - b.start);
  return {
    from: q.from,
    to: q.to,
    resolution: q.resolution,
    currency: currencies.size === 1 ? [...currencies][0]! : null,
    devices,
    total: {
      energyWh: devices.reduce((s, d) => s + d.energyWh, 0),
      cost: devices.reduce((s, d) => s + d.cost, 0),
      unpricedWh: devices.reduce((s, d) => s + d.unpricedWh, 0),
      buckets: totalBuckets,
    },
  };
}

export interface MonthEstimate {
  monthStart: number;
  monthEnd: number;
  now: number;
  currency: string | null;
  actualWh: number;
  actualCost: number;
  projectedWh: number;
  projectedCost: number;
  estimateWh: number;
  estimateCost: number;
  /** Complete local days in the profile window that had any data (0 = no projection possible). */
  basisDays: number;
  /** Mean total energy per complete day with data in the window (for "average daily kWh"). */
  basisDailyWh: number | null;
}

export async function estimateMonth(
  src: HourlySource, book: TariffBook,
  opts: { deviceIds: readonly number[]; now: number; profileDays?: number },
): Promise<MonthEstimate> {
  const cal = src.calendar;
  const now = opts.now;
  const monthStart = cal.monthStart(now);
  const monthEnd = cal.monthEnd(now);
  const actual = await costReport(src, book, { deviceIds: opts.deviceIds, from: monthStart, to: now, resolution: 'month' });
  const today = cal.dayStart(now);
  const windowStart = cal.shiftLocalDays(today, -(opts.profileDays ?? 7));

  const profiles: number[][] = [];
  const dayTotals = new Map<number, number>();
  for (const id of opts.deviceIds) {
    const hours = (await src.rollups(id, 'hour', windowStart, today)).filter((h) => h.samples > 0);
    if (hours.length === 0) continue;
    const sum = new Array<number>(24).fill(0), count = new Array<number>(24).fill(0);
    let all = 0;
    for (const h of hours) {
      const k = cal.parts(h.start).hour;
      sum[k]! += h.energyWh;
      count[k]!++;
      all += h.energyWh;
      const d = cal.dayStart(h.start);
      dayTotals.set(d, (dayTotals.get(d) ?? 0) + h.energyWh);
    }
    const mean = all / hours.length;
    profiles.push(sum.map((s, k) => (count[k]! > 0 ? s / count[k]! : mean)));
  }

  let projectedWh = 0, projectedCost = 0;
  const currencies = new Set<string | null>();
  if (actual.currency !== null || actual.total.energyWh > 0) currencies.add(actual.currency);
  if (profiles.length > 0) {
    for (let h = cal.hourStart(now); h < monthEnd; h = cal.hourEnd(h)) {
      const end = cal.hourEnd(h);
      const f = h < now ? (end - now) / (end - h) : 1;
      const k = cal.parts(h).hour;
      let wh = 0;
      for (const p of profiles) wh += p[k]! * f;
      const price = book.priceAt(h);
      projectedWh += wh;
      if (price) { projectedCost += (wh / 1000) * price.pricePerKwh; currencies.add(price.tariff.currency); }
    }
  }
  const basisDays = dayTotals.size;
  const basisDailyWh = basisDays > 0 ? [...dayTotals.values()].reduce((a, b) => a + b, 0) / basisDays : null;
  return {
    monthStart, monthEnd, now,
    currency: currencies.size === 1 ? [...currencies][0]! : null,
    actualWh: actual.total.energyWh,
    actualCost: actual.total.cost,
    projectedWh,
    projectedCost,
    estimateWh: actual.total.energyWh + projectedWh,
    estimateCost: actual.total.cost + projectedCost,
    basisDays,
    basisDailyWh,
  };
}
