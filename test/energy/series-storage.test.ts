import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { EnergySeries, EnergySeriesError } from '../../src/energy/series.ts';
import type { PlugReading } from '../../src/energy/types.ts';
import { encodeRollup } from '../../src/energy/rollup.ts';
import { tempDb, reading, dirBytes, rng, gaussian } from './series-testbed.ts';

const TZ = 'Europe/Berlin';
const H = 3_600_000;

function openSeries(db: { sublevel(name: string): unknown }, extra: Record<string, unknown> = {}): EnergySeries {
  return new EnergySeries(db.sublevel('energy') as never, { timeZone: TZ, maintainEveryMs: 0, ...extra });
}

describe('energy series: durability', () => {
  test('close and reopen loses no acknowledged sample; the open hour is rebuilt from the write-ahead entries', async () => {
    const t = await tempDb();
    try {
      const start = Date.UTC(2026, 5, 1, 8, 0, 10);
      const sent: PlugReading[] = [];
      let s = openSeries(t.db, { now: () => start });
      await s.open();
      for (let i = 0; i < 250; i++) { // 2 h 5 min: two sealed hours, one open
        const r = reading(7, start + i * 30_000, 50 + (i % 5), { todayWh: i, deviceOn: i % 50 !== 0 });
        await s.append(r);
        sent.push(r);
      }
      await s.close();
      await t.reopen();
      s = openSeries(t.db, { now: () => start });
      await s.open();
      assert.deepEqual(await s.raw(7, 0, Number.MAX_SAFE_INTEGER), sent);
      assert.deepEqual(s.latest(7), sent[sent.length - 1]);
      // The sample before the last is rejected (ordering survives the restart), a later one is accepted.
      await assert.rejects(s.append(reading(7, sent[248]!.at, 1)), { code: 'ENERGY_OUT_OF_ORDER' });
      await s.append(reading(7, sent[249]!.at + 30_000, 1));
      const hours = await s.rollups(7, 'hour', start, start + 3 * H);
      assert.deepEqual(hours.map((h) => [h.samples, h.partial]), [[120, false], [120, false], [11, true]]);
      await s.close();
    } finally {
      await t.cleanup();
    }
  });

  test('kill -9 of a writing process loses no acknowledged sample and leaves consistent rollups', async () => {
    const t = await tempDb();
    await t.db.close();
    try {
      const start = Date.UTC(2026, 9, 24, 23, 50); // runs through the October DST night
      const nodeBin = path.resolve('node_modules/.bin/node');
      const child = spawn(nodeBin, [path.resolve('test/energy/series-crash-child.ts'), t.dir, String(start)], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      const acked = new Map<number, number[]>();
      const target = 600 + Math.floor(rng(Date.now())() * 900);
      let count = 0;
      let buf = '';
      const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
      await new Promise<void>((resolve, reject) => {
        child.on('exit', (code) => reject(new Error(`child exited early (${code})`)));
        child.stdout!.on('data', (chunk: Buffer) => {
          buf += chunk.toString();
          let nl;
          while ((nl = buf.indexOf('\n')) >= 0) {
            const line = buf.slice(0, nl);
            buf = buf.slice(nl + 1);
            if (line === 'ready') continue;
            const [id, at] = line.split(' ').map(Number) as [number, number];
            (acked.get(id) ?? acked.set(id, []).get(id)!).push(at);
            if (++count === target) { child.kill('SIGKILL'); resolve(); }
          }
        });
      });
      await exited;
      const db = await t.reopen();
      const s = openSeries(db, { now: () => start });
      await s.open();
      for (const [id, ats] of acked) {
        const stored = new Set((await s.raw(id, 0, Number.MAX_SAFE_INTEGER)).map((r) => r.at));
        const missing = ats.filter((at) => !stored.has(at));
        assert.deepEqual(missing, [], `device ${id}: ${missing.length} acknowledged samples lost of ${ats.length}`);
      }
      // Whatever the crash point, the stored rollups equal a recompute from the raw samples.
      for (const id of [1, 2, 3]) {
        const before = await s.rollups(id, 'hour', 0, Number.MAX_SAFE_INTEGER);
        await s.recompute(id, { from: 0, to: Number.MAX_SAFE_INTEGER });
        assert.deepEqual(await s.rollups(id, 'hour', 0, Number.MAX_SAFE_INTEGER), before);
      }
      await s.close();
    } finally {
      await t.cleanup();
    }
  });

  test('rejects out-of-order, duplicate and invalid samples without storing them', async () => {
    const t = await tempDb();
    try {
      const s = openSeries(t.db);
      await s.open();
      await s.append(reading(1, 1_000_000, 10));
      await assert.rejects(s.append(reading(1, 1_000_000, 11)), (e: unknown) =>
        e instanceof EnergySeriesError && e.code === 'ENERGY_OUT_OF_ORDER');
      await assert.rejects(s.append(reading(1, 999_999, 11)), { code: 'ENERGY_OUT_OF_ORDER' });
      await assert.rejects(s.append(reading(1, 2_000_000, Number.NaN)), { code: 'ENERGY_BAD_SAMPLE' });
      await assert.rejects(s.append(reading(-1, 2_000_000, 1)), { code: 'ENERGY_BAD_DEVICE' });
      await s.append(reading(2, 999_999, 5)); // other devices have their own order
      assert.deepEqual((await s.raw(1, 0, 3_000_000)).map((r) => r.powerW), [10]);
      await s.close();
      await assert.rejects(s.append(reading(1, 3_000_000, 1)), { code: 'ENERGY_STATE' });
    } finally {
      await t.cleanup();
    }
  });
});

describe('energy series: queries and rollups', () => {
  test('raw range is exactly [from, to), ordered, across sealed blocks and the open hour', async () => {
    const t = await tempDb();
    try {
      const s = openSeries(t.db);
      await s.open();
      const start = Date.UTC(2026, 5, 1, 10, 0, 0);
      await Promise.all(Array.from({ length: 400 }, (_, i) => s.append(reading(3, start + i * 30_000, i))));
      await Promise.all(Array.from({ length: 400 }, (_, i) => s.append(reading(4, start + i * 30_000, 1000 + i))));
      const from = start + 100 * 30_000, to = start + 390 * 30_000; // spans 3 blocks and the open hour
      const got = await s.raw(3, from, to);
      assert.deepEqual(got.map((r) => r.powerW), Array.from({ length: 290 }, (_, i) => 100 + i));
      assert.deepEqual(await s.raw(3, to, to), []);
      assert.equal((await s.raw(4, from, from + 1))[0]!.powerW, 1100);
      await s.close();
    } finally {
      await t.cleanup();
    }
  });

  test('a gap longer than 3 intervals is not bridged; one of exactly 3 intervals is (trapezoid, hand-computed)', async () => {
    const t = await tempDb();
    try {
      const s = openSeries(t.db);
      await s.open();
      const h0 = Date.UTC(2026, 5, 1, 10); // 12:00 local
      const at = [0, 30, 60, 150, 241, 271].map((sec) => h0 + sec * 1000); // gaps: 90 s bridged, 91 s not
      const power = [100, 100, 0, 100, 200, 200];
      for (let i = 0; i < at.length; i++) await s.append(reading(1, at[i]!, power[i]!));
      const [h] = await s.rollups(1, 'hour', h0, h0 + H);
      // 0–30: 100 W·30 s; 30–60: ramp 100→0, 50 W·30 s; 60–150: ramp 0→100, 50 W·90 s; 150–241 not bridged;
      // 241–271: 200 W·30 s. Total 3000 + 1500 + 4500 + 6000 = 15000 J = 4.1666… Wh.
      assert.equal(h!.energyWh, 15000 / 3600);
      assert.equal(h!.coveredMs, (30 + 30 + 90 + 30) * 1000);
      assert.equal(h!.samples, 6);
      assert.equal(h!.avgW, 700 / 6);
      assert.equal(h!.minW, 0);
      assert.equal(h!.maxW, 200);
      await s.close();
    } finally {
      await t.cleanup();
    }
  });

  test('an interval across an hour edge is split at the interpolated power', async () => {
    const t = await tempDb();
    try {
      const s = openSeries(t.db);
      await s.open();
      const edge = Date.UTC(2026, 5, 1, 11);
      await s.append(reading(1, edge - 15_000, 0));
      await s.append(reading(1, edge + 15_000, 120));
      await s.append(reading(1, edge + H + 60_000, 0)); // seals 11:00 (its successor is out of reach)
      const [a, b] = await s.rollups(1, 'hour', edge - H, edge + H);
      assert.equal(a!.energyWh, (30 * 15) / 3600); // (0 + 60)/2 W × 15 s
      assert.equal(b!.energyWh, (90 * 15) / 3600); // (60 + 120)/2 W × 15 s
      assert.equal(a!.coveredMs + b!.coveredMs, 30_000);
      await s.close();
    } finally {
      await t.cleanup();
    }
  });

  test('DST days in Berlin: 100 W all day gives 2300 Wh over 23 hours in March and 2500 Wh over 25 in October', async () => {
    const t = await tempDb();
    try {
      const s = openSeries(t.db, { sync: false });
      await s.open();
      const cases = [
        { dev: 1, day: Date.UTC(2026, 2, 28, 23), hours: 23 },
        { dev: 2, day: Date.UTC(2026, 9, 24, 22), hours: 25 },
      ];
      for (const c of cases) {
        const end = c.day + c.hours * H;
        for (let at = c.day - 60_000; at <= end + 60_000; at += 30_000) await s.append(reading(c.dev, at, 100));
        const [day] = await s.rollups(c.dev, 'day', c.day, c.day + 1);
        assert.equal(day!.start, c.day);
        assert.equal(day!.end, end);
        assert.equal(day!.energyWh, c.hours * 100);
        const hours = await s.rollups(c.dev, 'hour', c.day, end);
        assert.equal(hours.length, c.hours);
        assert.ok(hours.every((h) => h.energyWh === 100), 'every local hour has 100 Wh');
        const [month] = await s.rollups(c.dev, 'month', c.day, c.day + 1);
        // Plus the minute before and after the day (the month sums 3 days in floating point: compare to 1e-9).
        assert.ok(Math.abs(month!.energyWh - (c.hours * 100 + 2 * (100 * 60 / 3600))) < 1e-9, `${month!.energyWh}`);
      }
      await s.close();
    } finally {
      await t.cleanup();
    }
  });

  test('recompute reproduces the incremental rollups byte for byte and repairs damaged ones', async () => {
    const t = await tempDb();
    try {
      const s = openSeries(t.db, { sync: false });
      await s.open();
      const rand = rng(42);
      const start = Date.UTC(2026, 9, 23, 20); // three days across the October change
      for (const dev of [1, 2]) {
        let at = start, today = 0;
        while (at < start + 72 * H) {
          at += rand() < 0.01 ? Math.floor(rand() * 20 * 60_000) : 30_000 + Math.round(gaussian(rand) * 40);
          today = rand() < 0.002 ? 0 : today + Math.floor(rand() * 2);
          await s.append(reading(dev, at, Math.max(0, 40 + gaussian(rand) * 15), { todayWh: today }));
        }
      }
      const rollupsDb = t.db.sublevel('energy').sublevel<Uint8Array, Uint8Array>('s', { keyEncoding: 'view', valueEncoding: 'view' });
      const snapshot = async () => (await rollupsDb.iterator().all())
        .filter(([k]) => k[4] !== 1) // rollup kinds only
        .map(([k, v]) => [Buffer.from(k).toString('hex'), Buffer.from(v).toString('hex')]);
      const incremental = await snapshot();
      assert.ok(incremental.length >= 16, `${incremental.length} rollup records`); // hour packs, days, months
      await s.recompute(1, { from: 0, to: Number.MAX_SAFE_INTEGER });
      await s.recompute(2, { from: 0, to: Number.MAX_SAFE_INTEGER });
      assert.deepEqual(await snapshot(), incremental);
      // Damage: drop a day's hour pack, garble another, add a stray undecodable pack, falsify a day record.
      const keysOf = (kind: number) => incremental.filter(([k]) => Buffer.from(k!, 'hex')[4] === kind).map(([k]) => Buffer.from(k!, 'hex'));
      const packs = keysOf(2), days = keysOf(3);
      await rollupsDb.del(packs[3]!);
      await rollupsDb.put(packs[5]!, Uint8Array.of(1, 200, 1));
      const stray = Buffer.from(packs[5]!); stray[12] = (stray[12]! + 1) & 0xff;
      await rollupsDb.put(stray, Uint8Array.of(0xde, 0xad));
      await rollupsDb.put(days[1]!, encodeRollup({ samples: 1, sumMw: 5, minMw: 5, maxMw: 5, energyWh: 99, coveredMs: 0, counterWh: null }));
      const garbledDevice = packs[5]!.readUInt32BE(0);
      await assert.rejects(s.rollups(garbledDevice, 'hour', 0, Number.MAX_SAFE_INTEGER), { code: 'ENERGY_CORRUPT_ROLLUP' });
      assert.notDeepEqual(await snapshot(), incremental);
      await s.recompute(1, { from: start, to: start + 80 * H });
      await s.recompute(2, { from: start, to: start + 80 * H });
      assert.deepEqual(await snapshot(), incremental);
      await s.close();
    } finally {
      await t.cleanup();
    }
  });

  test('an hour sealed for inactivity is redone when a late sample bridges into it', async () => {
    const t = await tempDb();
    try {
      let now = 0;
      const s = openSeries(t.db, { now: () => now });
      await s.open();
      const h10 = Date.UTC(2026, 5, 1, 8);
      for (let at = h10 + 50 * 60_000; at < h10 + H; at += 30_000) await s.append(reading(1, at, 100));
      now = h10 + H + 5 * 60_000;
      await s.maintain();
      const [sealed] = await s.rollups(1, 'hour', h10, h10 + 1);
      assert.equal(sealed!.partial, false);
      assert.equal(sealed!.energyWh, 100 * (9.5 * 60) / 3600); // 10:50:00 … 10:59:30, no successor yet
      await s.append(reading(1, h10 + H + 30_000, 100)); // 60 s after the last one: bridges the hour edge
      const [redone] = await s.rollups(1, 'hour', h10, h10 + 1);
      assert.equal(redone!.energyWh, 100 * (10 * 60) / 3600);
      const beforeRecompute = await s.rollups(1, 'hour', h10, h10 + 1);
      await s.recompute(1, { from: h10, to: h10 + H });
      assert.deepEqual(await s.rollups(1, 'hour', h10, h10 + 1), beforeRecompute);
      await s.close();
    } finally {
      await t.cleanup();
    }
  });

  test('raw retention removes old blocks but keeps their rollups, which recompute leaves alone', async () => {
    const t = await tempDb();
    try {
      let now = 0;
      const s = openSeries(t.db, { now: () => now, rawRetentionDays: 1, sync: false });
      await s.open();
      const start = Date.UTC(2026, 5, 1, 0);
      for (let at = start; at < start + 72 * H; at += 60_000) await s.append(reading(1, at, 60));
      const daysBefore = await s.rollups(1, 'day', start, start + 72 * H);
      now = start + 72 * H;
      await s.maintain();
      const raw = await s.raw(1, 0, now);
      assert.ok(raw[0]!.at >= now - 24 * H - 2 * H, 'raw older than a day (plus one block) is gone');
      assert.ok(raw[0]!.at <= now - 24 * H, 'raw within the day is kept');
      await s.recompute(1, { from: 0, to: now });
      assert.deepEqual(await s.rollups(1, 'day', start, start + 72 * H), daysBefore);
      await s.close();
    } finally {
      await t.cleanup();
    }
  });

  test('on disk, after compaction: at most 4 bytes per raw sample (3 plugs, 14 days of noisy 30 s polls)', async (ctx) => {
    const t = await tempDb();
    try {
      const s = openSeries(t.db, { sync: false });
      await s.open();
      const rand = rng(99);
      const start = Date.UTC(2026, 4, 1);
      const days = 14;
      let n = 0;
      const level = [45, 8, 120];
      const today = [0, 0, 0];
      for (let i = 0; i < (days * 86_400) / 30; i++) {
        const batch: Promise<void>[] = [];
        for (let d = 0; d < 3; d++) {
          if (rand() < 0.001) level[d] = [45, 8, 120, 0.5][Math.floor(rand() * 4)]!;
          const p = Math.max(0, level[d]! * (1 + gaussian(rand) * 0.03));
          today[d]! += (p * 30) / 3600;
          batch.push(s.append(reading(d + 1, start + i * 30_000 + Math.round(rand() * 40), p, {
            todayWh: Math.floor(today[d]!), monthWh: Math.floor(today[d]!) + 5000,
          })));
          n++;
        }
        if (i % 40 === 0) await Promise.all(batch);
      }
      await s.compact();
      await s.close();
      await t.db.close();
      const bytes = await dirBytes(t.dir);
      const perSample = bytes / n;
      assert.ok(perSample <= 4, `${perSample.toFixed(2)} B/sample (${bytes} B for ${n} samples)`);
      ctx.diagnostic(`${perSample.toFixed(2)} B/sample`);
      await t.reopen();
    } finally {
      await t.cleanup();
    }
  });
});
