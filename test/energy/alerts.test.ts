import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { AlertCenter, type AlertEvent } from '../../src/energy/alerts.ts';
import { EnergyAlertRules } from '../../src/energy/alert-rules.ts';
import { Calendar } from '../../src/energy/calendar.ts';
import type { HourlySource } from '../../src/energy/cost.ts';
import { toRollup, type Rollup } from '../../src/energy/rollup.ts';
import { tempDb, reading } from './series-testbed.ts';

const H = 3_600_000;
const cal = new Calendar('Europe/Berlin');

/** A loopback webhook receiver: resolves `next()` with each POSTed JSON body; answers with `status`. */
async function receiver(status = 204) {
  const bodies: unknown[] = [];
  const waiters: Array<(b: unknown) => void> = [];
  const server = http.createServer((req, res) => {
    let data = '';
    req.on('data', (c: Buffer) => { data += c.toString(); });
    req.on('end', () => {
      const body = { method: req.method, type: req.headers['content-type'], json: JSON.parse(data) as AlertEvent };
      res.writeHead(status).end();
      const w = waiters.shift();
      if (w) w(body); else bodies.push(body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    next: () => new Promise<any>((r) => { const b = bodies.shift(); if (b) r(b); else waiters.push(r); }),
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

function logger() {
  const warnings: Array<[object, string | undefined]> = [];
  return { warnings, warn: (o: object, m?: string) => { warnings.push([o, m]); } };
}

describe('alert center', () => {
  test('de-duplicates per kind and device, lists newest first, acknowledges by id, re-alerts only after clearing', async () => {
    const t = await tempDb();
    try {
      let now = 1_000;
      const c = new AlertCenter(t.db.sublevel('energy'), { now: () => now });
      await c.open();
      const first = await c.raise('power_over_limit', 1, 'too much');
      now = 2_000;
      assert.equal(await c.raise('power_over_limit', 1, 'too much'), null, 'second raise is a duplicate');
      const other = await c.raise('power_over_limit', 2, 'device 2');
      const offline = await c.raise('plug_offline', 1, 'gone');
      assert.ok(first && other && offline);
      assert.deepEqual((await c.list()).map((a) => a.id), [offline.id, other.id, first.id]);
      const stored = (await c.get(first.id))!;
      assert.deepEqual([stored.occurrences, stored.lastSeenAt], [2, 2_000]);

      now = 3_000;
      const acked = (await c.acknowledge(first.id))!;
      assert.equal(acked.acknowledgedAt, 3_000);
      assert.equal(await c.acknowledge('nope'), null);
      assert.deepEqual((await c.list({ acknowledged: false })).map((a) => a.id), [offline.id, other.id]);
      assert.deepEqual((await c.list({ acknowledged: true })).map((a) => a.id), [first.id]);
      // The condition persists after the acknowledgement: still no new alert.
      assert.equal(await c.raise('power_over_limit', 1, 'too much'), null);
      // It clears, then returns: a new alert.
      now = 4_000;
      assert.equal((await c.clear('power_over_limit', 1))!.clearedAt, 4_000);
      assert.equal(await c.clear('power_over_limit', 1), null);
      now = 5_000;
      const again = await c.raise('power_over_limit', 1, 'again');
      assert.ok(again && again.id !== first.id);
      assert.deepEqual((await c.list({ deviceId: 1, kind: 'power_over_limit' })).map((a) => a.id), [again.id, first.id]);

      // Reopen: the index of uncleared alerts is rebuilt, so de-duplication survives restarts.
      await t.reopen();
      const c2 = new AlertCenter(t.db.sublevel('energy'), { now: () => 6_000 });
      await c2.open();
      assert.equal(await c2.raise('power_over_limit', 1, 'again'), null);
      assert.equal(await c2.raise('plug_offline', 1, 'gone'), null);
      assert.equal((await c2.list()).length, 4);
    } finally {
      await t.cleanup();
    }
  });

  test('keeps at most maxStored alerts, pruning the oldest cleared or acknowledged ones', async () => {
    const t = await tempDb();
    try {
      let now = 0;
      const c = new AlertCenter(t.db.sublevel('energy'), { now: () => ++now, maxStored: 5 });
      await c.open();
      const open = await c.raise('plug_offline', 99, 'stays open');
      for (let i = 0; i < 8; i++) {
        await c.raise('power_anomaly', 1, `n${i}`);
        await c.clear('power_anomaly', 1);
      }
      const all = await c.list();
      assert.equal(all.length, 5);
      assert.ok(all.some((a) => a.id === open!.id), 'the uncleared alert is never pruned');
      assert.deepEqual(all.filter((a) => a.kind === 'power_anomaly').map((a) => a.message), ['n7', 'n6', 'n5', 'n4']);
    } finally {
      await t.cleanup();
    }
  });

  test('posts opened and cleared events as JSON to the webhook; failures are logged, never thrown', async () => {
    const t = await tempDb();
    const hook = await receiver();
    const failing = await receiver(500);
    try {
      const c = new AlertCenter(t.db.sublevel('energy'), { webhookUrl: hook.url, now: () => 42 });
      await c.open();
      const a = (await c.raise('power_over_limit', 3, 'over', { powerW: 150, limitW: 100 }))!;
      const opened = await hook.next();
      assert.deepEqual([opened.method, opened.type], ['POST', 'application/json']);
      assert.deepEqual(opened.json, { event: 'alert.opened', alert: a });
      await c.clear('power_over_limit', 3);
      assert.deepEqual([(await hook.next()).json.event], ['alert.cleared']);

      const log = logger();
      const bad = new AlertCenter(t.db.sublevel('other'), { webhookUrl: failing.url, logger: log });
      await bad.open();
      assert.ok(await bad.raise('plug_offline', 1, 'x'));
      await failing.next();
      await bad.webhooksSettled();
      assert.match(log.warnings[0]![1]!, /answered with an error/);

      // Nothing listens on a closed loopback port: connection refused is logged too.
      await failing.close();
      const log2 = logger();
      const dead = new AlertCenter(t.db.sublevel('dead'), { webhookUrl: failing.url, logger: log2, webhookTimeoutMs: 2000 });
      await dead.open();
      assert.ok(await dead.raise('plug_offline', 1, 'x'));
      await dead.webhooksSettled();
      assert.match(log2.warnings[0]![1]!, /webhook failed/);
    } finally {
      await hook.close();
      await t.cleanup();
    }
  });
});

describe('alert rules', () => {
  function history(avgByWeeksAgo: Record<number, number>, samples = 120): HourlySource {
    return {
      calendar: cal,
      async rollups(deviceId, _res, from) {
        const h = cal.hourStart(from);
        for (const [weeks, avgW] of Object.entries(avgByWeeksAgo)) {
          if (h === cal.hourStart(cal.shiftLocalDays(cal.hourStart(NOW), -7 * Number(weeks)))) {
            return [toRollup(deviceId, 'hour', h, cal.hourEnd(h),
              { samples, sumMw: avgW * 1000 * samples, minMw: 0, maxMw: 0, energyWh: avgW, coveredMs: H, counterWh: null }, false)];
          }
        }
        return [] as Rollup[];
      },
    };
  }
  const NOW = cal.localToInstant(2026, 4, 6, 20, 10); // a Monday evening, 4 weeks back crosses the March change

  test('over limit raises above maxPowerW and clears only below 95 %; a reading clears plug_offline', async () => {
    const t = await tempDb();
    try {
      const c = new AlertCenter(t.db.sublevel('energy'));
      await c.open();
      const rules = new EnergyAlertRules(c, { history: history({}), anomaly: false });
      await rules.onStatus({ deviceId: 1, online: false, at: 1, error: 'timeout' });
      assert.equal(c.isOpen('plug_offline', 1), true);
      await rules.onReading(reading(1, 2, 150), { maxPowerW: 100 });
      assert.equal(c.isOpen('plug_offline', 1), false, 'a reading proves the plug online');
      assert.equal(c.isOpen('power_over_limit', 1), true);
      await rules.onReading(reading(1, 3, 98), { maxPowerW: 100 });
      assert.equal(c.isOpen('power_over_limit', 1), true, '98 W is inside the 5 % margin');
      await rules.onReading(reading(1, 4, 94), { maxPowerW: 100 });
      assert.equal(c.isOpen('power_over_limit', 1), false);
      await rules.onReading(reading(1, 5, 1e6), { maxPowerW: null });
      assert.equal((await c.list()).length, 2);
    } finally {
      await t.cleanup();
    }
  });

  test('anomaly: 3 readings above 3× and 20 W over the 4-week median of this hour of the week; needs 3 weeks', async () => {
    const t = await tempDb();
    try {
      const c = new AlertCenter(t.db.sublevel('energy'));
      await c.open();
      const rules = new EnergyAlertRules(c, { history: history({ 1: 10, 2: 12, 4: 11 }) });
      assert.deepEqual(await rules.baseline(1, NOW), { hourStart: cal.hourStart(NOW), medianW: 11, weeks: 3 });
      for (let i = 0; i < 5; i++) await rules.onReading(reading(1, NOW + i, 32), { maxPowerW: null }); // < 33 W
      assert.equal(c.isOpen('power_anomaly', 1), false, '32 W is not 3× the median');
      await rules.onReading(reading(1, NOW + 10, 40), { maxPowerW: null });
      await rules.onReading(reading(1, NOW + 11, 40), { maxPowerW: null });
      assert.equal(c.isOpen('power_anomaly', 1), false, 'two far readings are not enough');
      await rules.onReading(reading(1, NOW + 12, 40), { maxPowerW: null });
      const [a] = await c.list();
      assert.deepEqual([a!.kind, a!.details.medianW, a!.details.direction], ['power_anomaly', 11, 'high']);
      for (let i = 0; i < 3; i++) await rules.onReading(reading(1, NOW + 20 + i, 12), { maxPowerW: null });
      assert.equal(c.isOpen('power_anomaly', 1), false, 'three normal readings clear it');

      const thin = new EnergyAlertRules(c, { history: history({ 1: 10, 2: 12 }) });
      assert.equal(await thin.baseline(2, NOW), null);
      for (let i = 0; i < 5; i++) await thin.onReading(reading(2, NOW + i, 500), { maxPowerW: null });
      assert.equal(c.isOpen('power_anomaly', 2), false, 'two weeks of history are not enough to judge');
      const sparse = new EnergyAlertRules(c, { history: history({ 1: 10, 2: 12, 3: 11 }, 10) });
      assert.equal(await sparse.baseline(3, NOW), null, 'hours with 10 samples do not count');
    } finally {
      await t.cleanup();
    }
  });

  test('NAS idle for 2 h raises nas_idle_long; leaving idle clears it', async () => {
    const t = await tempDb();
    try {
      const c = new AlertCenter(t.db.sublevel('energy'));
      await c.open();
      const rules = new EnergyAlertRules(c, { history: history({}), anomaly: false });
      const since = 1_000_000;
      const snap = (state: 'idle' | 'active') => ({ state, since, reason: '', powerW: 45, lastReadingAt: null });
      await rules.onNasPower(5, snap('idle'), since + 2 * H - 1);
      assert.equal(c.isOpen('nas_idle_long', 5), false);
      await rules.onNasPower(5, snap('idle'), since + 2 * H);
      assert.equal(c.isOpen('nas_idle_long', 5), true);
      await rules.onNasPower(5, snap('idle'), since + 3 * H);
      assert.equal((await c.list())[0]!.occurrences, 2);
      await rules.onNasPower(5, snap('active'), since + 3 * H + 1);
      assert.equal(c.isOpen('nas_idle_long', 5), false);
    } finally {
      await t.cleanup();
    }
  });
});
