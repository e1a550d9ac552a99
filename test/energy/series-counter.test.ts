import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Calendar } from '../../src/energy/calendar.ts';
import { counterDeltaWh, counterEnergyWh, compareCounter, RESET_GRACE_MS } from '../../src/energy/plug-counter.ts';
import { EnergySeries } from '../../src/energy/series.ts';
import { tempDb, reading, rng } from './series-testbed.ts';

const cal = new Calendar('Europe/Berlin');
const H = 3_600_000;
const midnight = cal.localToInstant(2026, 6, 2); // 2026-06-01T22:00Z

describe('plug counter (today_energy) with its midnight reset', () => {
  test('deltas: increase, reset at midnight, reset mid-day, skewed plug clock, long gap across midnight', () => {
    const c = (at: number, wh: number | null) => ({ at, todayWh: wh });
    assert.equal(counterDeltaWh(c(midnight - 60_000, 100), c(midnight - 30_000, 103), cal), 3);
    // The plug reset at its midnight: energy since the reset is the new value.
    assert.equal(counterDeltaWh(c(midnight - 15_000, 1450), c(midnight + 15_000, 1), cal), 1);
    // A reset in the middle of the day (plug reboot) is a drop, never a negative delta.
    assert.equal(counterDeltaWh(c(midnight + 5 * H, 300), c(midnight + 5 * H + 30_000, 0), cal), 0);
    // Plug clock a few seconds behind: after our midnight it still shows yesterday's total → not a reset yet.
    assert.equal(counterDeltaWh(c(midnight - 20_000, 1450), c(midnight + 10_000, 1451), cal), 1);
    // Unreachable from 20:00 to 03:00: the counter reset and climbed back above the old value.
    assert.equal(counterDeltaWh(c(midnight - 4 * H, 10), c(midnight + 3 * H, 50), cal), 50);
    // Within the grace period the same situation is read as "no reset yet".
    assert.equal(counterDeltaWh(c(midnight - 4 * H, 10), c(midnight + RESET_GRACE_MS, 50), cal), 40);
    assert.equal(counterDeltaWh(c(midnight, null), c(midnight + 30_000, 5), cal), null);
  });

  test('no negative delta for any random counter sequence with resets and gaps', () => {
    const rand = rng(5);
    let at = midnight - 10 * H, wh = 0;
    const seq: { at: number; todayWh: number }[] = [];
    for (let i = 0; i < 20_000; i++) {
      at += rand() < 0.01 ? Math.floor(rand() * 6 * H) : 30_000;
      wh = rand() < 0.003 ? 0 : wh + Math.floor(rand() * 3);
      seq.push({ at, todayWh: wh });
    }
    for (let i = 1; i < seq.length; i++) {
      const d = counterDeltaWh(seq[i - 1]!, seq[i]!, cal)!;
      assert.ok(d >= 0, `delta ${d} at ${i}`);
    }
  });

  test('a day across the reset: counter energy per day and hour agrees with the integrated power', async () => {
    const t = await tempDb();
    try {
      const s = new EnergySeries(t.db.sublevel('energy'), { timeZone: 'Europe/Berlin', maintainEveryMs: 0, sync: false });
      await s.open();
      // A constant 60 W load; the plug's today_energy is the whole Wh since local midnight (its own reset).
      const start = midnight - 2 * H;
      const end = midnight + 26 * H;
      let dayStart = cal.dayStart(start);
      for (let at = start; at <= end; at += 30_000) {
        if (at >= cal.dayEnd(dayStart)) dayStart = cal.dayEnd(dayStart);
        const todayWh = Math.floor((60 * (at - dayStart)) / H);
        await s.append(reading(1, at, 60, { todayWh }));
      }
      const [day] = await s.rollups(1, 'day', midnight, midnight + 1);
      assert.equal(day!.energyWh, 1440);
      // Counter: 1440 Wh of the day, less the ≤ 1 Wh not yet counted at the first post-midnight reading.
      assert.ok(day!.counterWh! >= 1439 && day!.counterWh! <= 1440, `counter ${day!.counterWh}`);
      const [cmp] = compareCounter([day!]);
      assert.equal(cmp!.agrees, true);
      const hours = await s.rollups(1, 'hour', midnight, midnight + 24 * H);
      for (const c of compareCounter(hours)) assert.ok(c.agrees, `hour ${new Date(c.start).toISOString()}: ${c.diffWh}`);
      // The samples' own counter sum gives the same figure as the rollups.
      const raw = await s.raw(1, midnight, midnight + 24 * H);
      const prev = (await s.raw(1, midnight - 30_000, midnight))[0]!;
      assert.equal(counterEnergyWh([prev, ...raw], cal), day!.counterWh);
      await s.close();
    } finally {
      await t.cleanup();
    }
  });

  test('a polling gap: the integral misses the unpolled energy, the counter does not, and the comparison says so', async () => {
    const t = await tempDb();
    try {
      const s = new EnergySeries(t.db.sublevel('energy'), { timeZone: 'Europe/Berlin', maintainEveryMs: 0, sync: false });
      await s.open();
      const from = midnight + 10 * H;
      for (let at = from; at < from + 3 * H; at += 30_000) {
        if (at > from + H && at < from + 2 * H) continue; // one hour unreachable
        await s.append(reading(1, at, 120, { todayWh: Math.floor((120 * (at - midnight)) / H) }));
      }
      const [day] = await s.rollups(1, 'day', midnight, midnight + 1);
      const [cmp] = await s.counterCheck(1, 'day', midnight, midnight + 1);
      assert.ok(Math.abs(day!.counterWh! - 360) <= 1, `counter ${day!.counterWh}`);
      assert.ok(Math.abs(day!.energyWh - 240) < 1.1, `integrated ${day!.energyWh}`);
      assert.equal(cmp!.agrees, false);
      assert.ok(cmp!.diffWh! < -100);
      await s.close();
    } finally {
      await t.cleanup();
    }
  });
});
