import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Calendar } from '../../src/energy/calendar.ts';
import { TariffBook, TariffStore, TariffError, parseTariffInput, type Tariff, type Tier } from '../../src/energy/tariff.ts';
import { costReport, estimateMonth, type HourlySource } from '../../src/energy/cost.ts';
import { EnergySeries } from '../../src/energy/series.ts';
import { toRollup, type Rollup } from '../../src/energy/rollup.ts';
import { tempDb, reading } from './series-testbed.ts';

const cal = new Calendar('Europe/Berlin');
const H = 3_600_000;

const tiers = (spec: Array<[Tier, number]>): Tier[] => spec.flatMap(([t, n]) => new Array<Tier>(n).fill(t));
// Weekday: off 0–5, mid 6–16, on 17–20, off 21–23. Weekend: off 0–7, mid 8–16, on 17–19, off 20–23.
const WEEKDAY = tiers([['off', 6], ['mid', 11], ['on', 4], ['off', 3]]);
const WEEKEND = tiers([['off', 8], ['mid', 9], ['on', 3], ['off', 4]]);
const CONSTANT = { kind: 'constant', validFrom: '2026-03-01', pricePerKwh: 0.30, currency: 'EUR' } as const;
const TOU = {
  kind: 'tou', validFrom: '2026-03-29', currency: 'EUR', onPeak: 0.45, midPeak: 0.30, offPeak: 0.20,
  weekday: WEEKDAY, weekend: WEEKEND,
} as const;

function tariff(input: object, createdAt: number): Tariff {
  return { id: `t${createdAt}`, name: 'x', currency: 'EUR', createdAt, ...parseTariffInput(input, cal) } as Tariff;
}

const close = (a: number, b: number, what: string): void => assert.ok(Math.abs(a - b) < 1e-9, `${what}: ${a} ≠ ${b}`);

describe('tariffs', () => {
  test('validation names the bad field: tier map length, unknown tier, negative price, bad date, bad currency', () => {
    const bad: Array<[object, RegExp]> = [
      [{ ...TOU, weekday: WEEKDAY.slice(1) }, /weekday must list 24/],
      [{ ...TOU, weekend: [...WEEKEND.slice(1), 'peak'] }, /weekend\[23\]/],
      [{ ...CONSTANT, pricePerKwh: -0.1 }, /pricePerKwh/],
      [{ ...CONSTANT, validFrom: '2026-02-30' }, /validFrom/],
      [{ ...CONSTANT, currency: 'euro' }, /currency/],
      [{ ...CONSTANT, kind: 'dynamic' }, /kind/],
    ];
    for (const [input, msg] of bad) {
      assert.throws(() => parseTariffInput(input, cal), (e: unknown) =>
        e instanceof TariffError && e.code === 'ENERGY_TARIFF_INVALID' && msg.test(e.message), JSON.stringify(input));
    }
  });

  test('the tariff in force switches at local midnight of validFrom; TOU tiers follow local hour and weekday', () => {
    const book = new TariffBook([tariff(TOU, 2), tariff(CONSTANT, 1)], cal);
    assert.equal(book.priceAt(cal.localToInstant(2026, 2, 28, 23))?.pricePerKwh, undefined);
    assert.equal(book.priceAt(cal.localToInstant(2026, 3, 28, 23, 59))!.pricePerKwh, 0.30);
    // 2026-03-29 is the DST Sunday: weekend map from its local midnight (23:00 UTC on the 28th).
    const p = book.priceAt(Date.UTC(2026, 2, 28, 23))!;
    assert.deepEqual([p.pricePerKwh, p.tier, p.tariff.kind], [0.20, 'off', 'tou']);
    assert.equal(book.priceAt(cal.localToInstant(2026, 3, 29, 17))!.tier, 'on');
    assert.equal(book.priceAt(cal.localToInstant(2026, 3, 29, 20))!.tier, 'off'); // weekend on-peak ends at 20
    assert.equal(book.priceAt(cal.localToInstant(2026, 3, 30, 20))!.tier, 'on'); // weekday on-peak includes 20
    assert.deepEqual(book.periods().map((p) => [p.tariff.kind, p.from, p.to]), [
      ['constant', Date.UTC(2026, 1, 28, 23), Date.UTC(2026, 2, 28, 23)],
      ['tou', Date.UTC(2026, 2, 28, 23), null],
    ]);
    // Two tariffs from the same date: the later created wins.
    const again = new TariffBook([tariff(CONSTANT, 1), tariff({ ...CONSTANT, pricePerKwh: 0.35 }, 5)], cal);
    assert.equal(again.priceAt(Date.UTC(2026, 5, 1))!.pricePerKwh, 0.35);
  });

  test('tariffs persist in LevelDB and survive a reopen; removal takes effect in the next book', async () => {
    const t = await tempDb();
    try {
      const store = new TariffStore(t.db.sublevel('energy'), { calendar: cal, now: () => 1000 });
      const a = await store.add(CONSTANT);
      await store.add(TOU);
      await assert.rejects(store.add({ ...TOU, onPeak: 'x' }), { code: 'ENERGY_TARIFF_INVALID' });
      assert.equal((await store.book()).priceAt(Date.UTC(2026, 2, 20))!.tariff.id, a.id);
      await t.reopen();
      const again = new TariffStore(t.db.sublevel('energy'), { calendar: cal });
      assert.deepEqual((await again.list()).map((x) => [x.kind, x.validFrom, x.currency]),
        [['constant', '2026-03-01', 'EUR'], ['tou', '2026-03-29', 'EUR']]);
      assert.equal(await again.remove(a.id), true);
      assert.equal(await again.remove(a.id), false);
      assert.equal((await again.book()).priceAt(Date.UTC(2026, 2, 20)), null);
    } finally {
      await t.cleanup();
    }
  });
});

describe('costs', () => {
  test('TOU across a tariff change on the March DST day and the 25-hour October day, per device and total', async () => {
    const t = await tempDb();
    try {
      const series = new EnergySeries(t.db.sublevel('energy'), { timeZone: 'Europe/Berlin', maintainEveryMs: 0, sync: false });
      await series.open();
      const book = new TariffBook([tariff(CONSTANT, 1), tariff(TOU, 2)], cal);
      const from = cal.localToInstant(2026, 3, 28); // Saturday, constant price
      const to = cal.localToInstant(2026, 3, 31); // Sun 29 (23 h, weekend TOU), Mon 30 (weekday TOU)
      const octFrom = cal.localToInstant(2026, 10, 25), octTo = cal.localToInstant(2026, 10, 26);
      for (const [a, b] of [[from, to], [octFrom, octTo]] as const) {
        for (let at = a - 60_000; at <= b + 60_000; at += 30_000) {
          await series.append(reading(1, at, 100));
          await series.append(reading(2, at, 50));
        }
      }
      const r = await costReport(series, book, { deviceIds: [1, 2], from, to, resolution: 'day' });
      // Device 1, 0.1 kWh per hour. Sat: 24 × 0.1 × 0.30 = 0.72.
      // Sun (no 02:00): off 0,1,3–7,20–23 = 11 h × 0.02 = 0.22; mid 8–16 = 9 h × 0.03 = 0.27; on 17–19 = 3 × 0.045.
      // Mon: off 0–5,21–23 = 9 × 0.02 = 0.18; mid 6–16 = 11 × 0.03 = 0.33; on 17–20 = 4 × 0.045 = 0.18.
      const d1 = r.devices[0]!, d2 = r.devices[1]!;
      assert.deepEqual(d1.buckets.map((b) => b.energyWh), [2400, 2300, 2400]);
      close(d1.buckets[0]!.cost, 0.72, 'Saturday');
      close(d1.buckets[1]!.cost, 0.625, 'DST Sunday');
      close(d1.buckets[2]!.cost, 0.69, 'Monday');
      close(d1.cost, 2.035, 'device 1');
      close(d2.cost, 2.035 / 2, 'device 2');
      close(r.total.cost, 3.0525, 'total');
      assert.equal(r.total.energyWh, 10_650);
      assert.equal(r.currency, 'EUR');
      assert.equal(r.total.unpricedWh, 0);
      // Same hours as one month bucket and as hours: the sums do not depend on the grouping.
      const m = await costReport(series, book, { deviceIds: [1, 2], from, to, resolution: 'month' });
      close(m.total.buckets[0]!.cost, 3.0525, 'month bucket');
      const h = await costReport(series, book, { deviceIds: [1], from, to, resolution: 'hour' });
      assert.equal(h.devices[0]!.buckets.length, 71);
      // October Sunday, 25 h: off 0,1,2,2,3–7,20–23 = 13 h; mid 9 h; on 3 h → 0.26 + 0.27 + 0.135.
      const oct = await costReport(series, book, { deviceIds: [1], from: octFrom, to: octTo, resolution: 'day' });
      assert.equal(oct.devices[0]!.energyWh, 2500);
      close(oct.devices[0]!.cost, 0.665, 'October DST Sunday');
      // Before the first tariff nothing is priced, and the report says how much energy that was.
      const early = await costReport(series, new TariffBook([tariff(TOU, 2)], cal), { deviceIds: [1], from, to, resolution: 'day' });
      assert.equal(early.devices[0]!.unpricedWh, 2400);
      close(early.devices[0]!.cost, 0.625 + 0.69, 'only TOU days priced');
      await series.close();
    } finally {
      await t.cleanup();
    }
  });

  /** An in-memory hourly source: `wh(hourStart)` Wh in every hour up to `until` (exclusive). */
  function source(wh: (h: number) => number, until: number): HourlySource {
    return {
      calendar: cal,
      async rollups(deviceId, _res, from, to) {
        const out: Rollup[] = [];
        for (let h = cal.hourStart(from); h < Math.min(to, until); h = cal.hourEnd(h)) {
          out.push(toRollup(deviceId, 'hour', h, cal.hourEnd(h),
            { samples: 120, sumMw: 0, minMw: 0, maxMw: 0, energyWh: wh(h), coveredMs: H, counterWh: null }, false));
        }
        return out;
      },
    };
  }

  test('monthly estimate = month-to-date actual + hour-of-day profile of the last 7 days priced hour by hour', async () => {
    const now = cal.localToInstant(2026, 6, 15, 12); // June: 30 days, no DST change
    const flat = await estimateMonth(source(() => 100, now), new TariffBook([tariff(CONSTANT, 1)], cal),
      { deviceIds: [1], now });
    // Actual: 14 days + 12 h = 348 h × 0.1 kWh; remaining 15.5 days = 372 h.
    close(flat.actualWh, 34_800, 'actual Wh');
    close(flat.actualCost, 34.8 * 0.30, 'actual cost');
    close(flat.projectedWh, 37_200, 'projected Wh');
    close(flat.estimateCost, 72 * 0.30, 'estimate');
    assert.equal(flat.basisDays, 7);
    close(flat.basisDailyWh!, 2400, 'daily mean');
    // A load that runs only 18:00–19:00 (1 kWh) under TOU with 18:00 on-peak: the remaining 16 evenings
    // (15th … 30th) cost 16 × 0.45, not 16 × the day's mean price.
    const evening = (h: number) => (cal.parts(h).hour === 18 ? 1000 : 0);
    const est = await estimateMonth(source(evening, now), new TariffBook([tariff(TOU, 1)], cal), { deviceIds: [1], now });
    close(est.projectedWh, 16_000, 'projected evenings');
    close(est.projectedCost, 16 * 0.45, 'projected at on-peak');
    close(est.actualCost, 14 * 0.45, 'actual evenings (1st … 14th)');
    // Without any history there is no projection, only the actual.
    const none = await estimateMonth(source(() => 0, 0), new TariffBook([], cal), { deviceIds: [1], now });
    assert.deepEqual([none.basisDays, none.projectedWh, none.estimateCost, none.basisDailyWh], [0, 0, 0, null]);
  });
});
