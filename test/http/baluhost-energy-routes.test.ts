// BaluHost's smart-device and energy routes over the Pi's real energy store: the Fastify app (inject) over a real
// EnergyMonitor with a temporary LevelDB and two KLAP plug emulators on 127.0.0.1 (a P110 answering get_emeter_data
// at 50 W, a P115 without it at 9 W). Plug 1 also has one seeded hour of 100 W readings, from 3 h to 2 h ago, so the
// UTC-period figures have exact expected values; each expectation is computed here from the seeded readings and the
// period boundaries (the test may run at any time of day, week or month). Shapes are checked field by field against
// ../shared/reference/baluhost-api.md §6.2 and clients.md §A.4/§B.4.

import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { ClassicLevel } from 'classic-level';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/http/app.ts';
import { TokenVerifier } from '../../src/auth/tokens.ts';
import { createLogger } from '../../src/log.ts';
import { baluhostEnergyRoutes } from '../../src/routes/baluhost-energy.ts';
import { EnergyMonitor, type EnergyConfig } from '../../src/energy/monitor.ts';
import { EnergySeries } from '../../src/energy/series.ts';
import { HOUR_MS } from '../../src/energy/calendar.ts';
import { utcPeriodStart, type UtcPeriod } from '../../src/energy/utc-periods.ts';
import { TapoPlugEmulator } from '../emulators/tapo-plug.ts';
import { tempDir } from '../helpers/daemon-process.ts';

const SECRET = 'a-baluhost-secret-key-of-32-chars!!';
const CREDS = { username: 'owner@example.org', password: 'plug-pw' };
const ISO_Z = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3})?Z$/;
const HOUR_KEY = /^\d{4}-\d{2}-\d{2} \d{2}:00:00$/;
const PERIODS: UtcPeriod[] = ['today', 'week', 'month'];
const round = (x: number, d: number) => Math.round(x * 10 ** d) / 10 ** d;

function keysOf(o: object): string[] {
  return Object.keys(o).sort();
}

describe('BaluHost smart-device and energy routes over a live monitor', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let db: ClassicLevel<string, string>;
  let monitor: EnergyMonitor;
  let app: FastifyInstance;
  let p110: TapoPlugEmulator, p115: TapoPlugEmulator;
  let auth: { authorization: string };
  // Seeded: plug 1 at 100 W every 30 s over one hour, ending 2 h before the test starts.
  const first = Math.floor((Date.now() - 3 * HOUR_MS) / 30_000) * 30_000;
  const seeded: number[] = [];
  for (let at = first; at <= first + HOUR_MS; at += 30_000) seeded.push(at);
  const last = seeded[seeded.length - 1]!;
  let liveAt = 0;

  const get = (url: string) => app.inject({ url, headers: auth });

  /** Plug 1 over [start, now): the seeded readings at or after start, plus the one live reading at 50 W. */
  function expected(start: number) {
    const n = seeded.filter((t) => t >= start).length;
    const lo = Math.max(first, start);
    const energyWh = last > lo ? (100 * (last - lo)) / HOUR_MS : 0;
    return { samples: n + 1, avg: round((n * 100 + 50) / (n + 1), 1), min: 50, max: n > 0 ? 100 : 50, energyWh, coveredMs: Math.max(0, last - lo), firstAt: n > 0 ? seeded.find((t) => t >= start)! : liveAt };
  }

  before(async () => {
    p110 = new TapoPlugEmulator({ ...CREDS, model: 'P110', hasEmeterData: true, nickname: 'NAS plug', powerCurve: () => 50, mac: '9C-53-22-00-00-01' });
    p115 = new TapoPlugEmulator({ ...CREDS, model: 'P115', hasEmeterData: false, nickname: 'Desk plug', powerCurve: () => 9 });
    await p110.start();
    await p115.start();
    dir = await tempDir('balupi-bh-energy-');
    db = new ClassicLevel<string, string>(dir.path, { valueEncoding: 'utf8' });
    await db.open();
    const seed = new EnergySeries(db.sublevel('energy'), { timeZone: 'Europe/Berlin', maintainEveryMs: 0, sync: false });
    await seed.open();
    for (const at of seeded) await seed.append({ deviceId: 1, at, powerW: 100, voltageV: 231, currentA: 0.43, todayWh: null, monthWh: null, deviceOn: true });
    await seed.close();
    const config: EnergyConfig = {
      tapoUsername: CREDS.username, tapoPassword: CREDS.password, tapoDiscoveryAddress: '127.0.0.1:9',
      tapoDevices: [p110, p115].map((e) => ({ host: '127.0.0.1', port: e.port })),
      energyIntervalS: 30, energyRetentionDays: 365, timeZone: 'Europe/Berlin', energyPrice: 0.3, currency: 'EUR',
      nasPowerThresholds: [3, 15, 40], alertWebhook: null, demoPlugs: 0,
    };
    monitor = new EnergyMonitor({ db, config, logger: createLogger({ logLevel: 'silent', logFormat: 'json' }), syncWrites: false });
    await monitor.start();
    await monitor.pollNow();
    liveAt = monitor.queries.current().devices[0]!.reading!.at;
    const verifier = new TokenVerifier(SECRET);
    app = await buildApp({
      logger: createLogger({ logLevel: 'silent', logFormat: 'json' }),
      verifier,
      plugins: [(a) => a.register(baluhostEnergyRoutes, { monitor })],
    });
    // A token exactly as BaluHost issues them (HS256, sub = str(id), username, role, type access, int exp/iat).
    auth = { authorization: `Bearer ${await verifier.issueAccess({ id: 7, username: 'sven', role: 'user' })}` };
  });

  after(async () => {
    await app?.close();
    await monitor?.stop();
    await db?.close();
    for (const e of [p110, p115]) await e?.stop();
    await dir?.remove();
  });

  const ROUTES = ['/api/smart-devices/', '/api/smart-devices/power/summary', '/api/energy/dashboard/1', '/api/energy/stats/1/today',
    '/api/energy/hourly/1', '/api/energy/cost/1', '/api/energy/cumulative/1', '/api/energy/cumulative/total', '/api/energy/price',
    '/api/plugins/tapo_smart_plug/config'];

  test('no token: 401 with BaluHost\'s body on every route; a BaluHost-shaped token: 200 on every route', async () => {
    for (const url of ROUTES) {
      const res = await app.inject({ url });
      assert.deepEqual([res.statusCode, res.json()], [401, { detail: 'No authentication token provided' }], url);
      assert.equal(res.headers['www-authenticate'], 'Bearer', url);
      assert.equal((await get(url)).statusCode, 200, url);
    }
    const forged = await app.inject({ url: '/api/energy/price', headers: { authorization: `Bearer ${await new TokenVerifier('another-secret-that-is-32-chars-long!').issueAccess({ id: 7, username: 'sven', role: 'user' })}` } });
    assert.deepEqual([forged.statusCode, forged.json()], [401, { detail: 'Could not validate credentials' }]);
  });

  test('GET /api/smart-devices/ (trailing slash kept): each plug as a BaluHost smart device, field by field', async () => {
    const res = await get('/api/smart-devices/');
    assert.equal(res.statusCode, 200);
    const body = res.json();
    assert.deepEqual(keysOf(body), ['devices', 'total']);
    assert.equal(body.total, 2);
    const [a, b] = body.devices;
    assert.deepEqual(keysOf(a), ['address', 'capabilities', 'created_at', 'device_type_id', 'id', 'is_active', 'is_online', 'last_error',
      'last_seen', 'mac_address', 'name', 'plugin_name', 'state', 'updated_at']);
    assert.deepEqual({ ...a, last_seen: undefined, state: undefined }, {
      id: 1, name: 'NAS plug', plugin_name: 'tapo_smart_plug', device_type_id: 'p110', address: `127.0.0.1:${p110.port}`,
      mac_address: '9C:53:22:00:00:01', capabilities: ['switch', 'power_monitor'], is_active: true, is_online: true,
      last_seen: undefined, last_error: null, state: undefined, created_at: null, updated_at: null,
    });
    assert.match(a.last_seen, ISO_Z);
    assert.equal(a.state.switch.is_on, true);
    const pm = a.state.power_monitor;
    assert.deepEqual({ ...pm, timestamp: undefined, energy_today_kwh: undefined, energy_today_wh: undefined },
      { watts: 50, voltage: 230, current: 0.217, current_power: 50, current_ma: 217, timestamp: undefined, energy_today_kwh: undefined, energy_today_wh: undefined });
    assert.match(pm.timestamp, ISO_Z);
    assert.equal(typeof pm.energy_today_wh, 'number');
    assert.equal(pm.energy_today_kwh, round(pm.energy_today_wh / 1000, 3));
    // BaluApp's energy card candidates: is_active && "power_monitor" in capabilities.
    assert.ok(body.devices.every((d: { is_active: boolean; capabilities: string[] }) => d.is_active && d.capabilities.includes('power_monitor')));
    assert.equal(b.device_type_id, 'p115');
    assert.deepEqual([b.state.power_monitor.watts, b.state.power_monitor.voltage, b.state.power_monitor.current, b.state.power_monitor.current_ma], [9, null, null, null],
      'no voltage or current invented for the plug without get_emeter_data');

    assert.deepEqual((await get('/api/smart-devices/?plugin_name=hue')).json(), { devices: [], total: 0 });
    assert.equal((await get('/api/smart-devices/?plugin_name=tapo_smart_plug')).json().total, 2);
    assert.equal((await get('/api/smart-devices')).statusCode, 404, 'only the trailing-slash path is BaluHost\'s');
  });

  test('GET /api/smart-devices/power/summary: BaluDesk\'s power card fields, non-null numbers', async () => {
    const body = (await get('/api/smart-devices/power/summary')).json();
    assert.deepEqual(body, { total_watts: 59, device_count: 2, devices: [{ device_id: 1, name: 'NAS plug', watts: 50 }, { device_id: 2, name: 'Desk plug', watts: 9 }] });
  });

  test('GET /api/energy/dashboard/{id}: today/week/month over UTC periods, hourly samples, current watts', async () => {
    const res = await get('/api/energy/dashboard/1');
    assert.equal(res.statusCode, 200);
    const d = res.json();
    const now = Date.now();
    assert.deepEqual(keysOf(d), ['current_watts', 'device_id', 'device_name', 'hourly_samples', 'is_online', 'last_updated', 'month', 'today', 'week']);
    assert.deepEqual([d.device_id, d.device_name, d.current_watts, d.is_online], [1, 'NAS plug', 50, true]);
    assert.match(d.last_updated, ISO_Z);
    assert.equal(Date.parse(d.last_updated), liveAt, 'the time of the reading the current watts come from');
    for (const p of PERIODS) {
      const s = d[p];
      const start = utcPeriodStart(p, now);
      const e = expected(start);
      assert.deepEqual(keysOf(s), ['avg_watts', 'device_id', 'device_name', 'downtime_minutes', 'end_time', 'max_watts', 'min_watts',
        'samples_count', 'start_time', 'total_energy_kwh', 'uptime_percentage'], p);
      assert.equal(s.start_time, new Date(start).toISOString().replace('.000Z', 'Z'), `${p} starts at 00:00 UTC`);
      assert.match(s.start_time, /T00:00:00Z$/);
      assert.match(s.end_time, ISO_Z);
      assert.deepEqual([s.device_id, s.device_name, s.samples_count, s.avg_watts, s.min_watts, s.max_watts, s.total_energy_kwh],
        [1, 'NAS plug', e.samples, e.avg, e.min, e.max, round(e.energyWh / 1000, 3)], p);
      assert.ok(Number.isInteger(s.downtime_minutes), p);
      // Observed from the first reading in the period to the answer; covered by the readings' intervals.
      const observed = Date.parse(s.end_time) - e.firstAt;
      assert.ok(Math.abs(s.downtime_minutes - Math.floor((observed - e.coveredMs) / 60_000)) <= 1, `${p}: ${s.downtime_minutes}`);
      assert.ok(Math.abs(s.uptime_percentage - round((e.coveredMs / observed) * 100, 1)) <= 0.2, `${p}: ${s.uptime_percentage}`);
    }
    // Hourly samples: BaluHost's "YYYY-MM-DD HH:00:00" keys (UTC), one per hour with readings in the last 24 h.
    const byHour = new Map<string, number[]>();
    for (const [at, w] of [...seeded.map((t) => [t, 100] as const), [liveAt, 50] as const]) {
      const key = new Date(Math.floor(at / HOUR_MS) * HOUR_MS).toISOString().slice(0, 19).replace('T', ' ');
      byHour.set(key, [...(byHour.get(key) ?? []), w]);
    }
    assert.deepEqual(d.hourly_samples, [...byHour].map(([timestamp, ws]) => ({ timestamp, avg_watts: round(ws.reduce((a, b) => a + b, 0) / ws.length, 1), sample_count: ws.length })));
    for (const h of d.hourly_samples) assert.match(h.timestamp, HOUR_KEY);
    assert.deepEqual((await get('/api/energy/hourly/1?hours=24')).json(), d.hourly_samples, '/api/energy/hourly is the same series');
    assert.equal((await get('/api/energy/hourly/1?hours=169')).statusCode, 422);

    const p2 = (await get('/api/energy/dashboard/2')).json();
    assert.deepEqual([p2.device_name, p2.current_watts, p2.today.samples_count], ['Desk plug', 9, 1]);
    const missing = await get('/api/energy/dashboard/99');
    assert.deepEqual([missing.statusCode, missing.json()], [404, { detail: 'Device 99 not found' }]);
    assert.equal((await get('/api/energy/dashboard/abc')).statusCode, 422);
  });

  test('GET /api/energy/stats/{id}/{period}: the same figures; JSON null for a period without readings', async () => {
    const dash = (await get('/api/energy/dashboard/1')).json();
    const week = (await get('/api/energy/stats/1/week')).json();
    assert.deepEqual({ ...week, end_time: undefined, downtime_minutes: undefined, uptime_percentage: undefined },
      { ...dash.week, end_time: undefined, downtime_minutes: undefined, uptime_percentage: undefined });
    // A plug added through the monitor but never read has no figures: BaluHost answers null.
    const extra = new TapoPlugEmulator({ ...CREDS, model: 'P115', nickname: 'Unplugged' });
    await extra.start();
    await extra.stop();
    const added = await monitor.addDevice({ host: '127.0.0.1', port: extra.port });
    await monitor.pollNow();
    const none = await get(`/api/energy/stats/${added.id}/today`);
    assert.deepEqual([none.statusCode, none.body, none.headers['content-type']], [200, 'null', 'application/json; charset=utf-8']);
    const dashNone = (await get(`/api/energy/dashboard/${added.id}`)).json();
    assert.deepEqual([dashNone.today, dashNone.week, dashNone.month, dashNone.hourly_samples, dashNone.current_watts, dashNone.is_online], [null, null, null, [], 0, false]);
    await monitor.removeDevice(added.id);
    assert.equal((await get('/api/energy/stats/1/year')).statusCode, 422);
  });

  test('GET /api/energy/cost/{id}: the Pi\'s tariff by default, the caller\'s price when given (BaluHost\'s semantics)', async () => {
    const now = Date.now();
    const e = expected(utcPeriodStart('week', now));
    const kwh = e.energyWh / 1000;
    const own = (await get('/api/energy/cost/1?period=week')).json();
    assert.deepEqual(own, { device_id: 1, device_name: 'NAS plug', period_name: 'This Week', total_kwh: round(kwh, 3), cost_per_kwh: 0.3, estimated_cost: round(kwh * 0.3, 2), currency: 'EUR' });
    const given = (await get('/api/energy/cost/1?period=week&cost_per_kwh=0.5&currency=CHF')).json();
    assert.deepEqual([given.cost_per_kwh, given.estimated_cost, given.currency], [0.5, round(kwh * 0.5, 2), 'CHF']);
    assert.equal((await get('/api/energy/cost/1')).json().period_name, 'Today', 'period defaults to today');
    assert.equal((await get('/api/energy/cost/1?period=month')).json().period_name, 'This Month');
    assert.equal((await get('/api/energy/cost/1?period=year')).statusCode, 422);
    assert.equal((await get('/api/energy/cost/1?cost_per_kwh=0')).statusCode, 422);
  });

  test('GET /api/energy/cumulative/{id} and /total: running kWh and cost, UTC …Z points, price in currency units', async () => {
    const now = Date.now();
    for (const p of PERIODS) {
      const e = expected(utcPeriodStart(p, now));
      const c = (await get(`/api/energy/cumulative/1?period=${p}`)).json();
      assert.deepEqual(keysOf(c), ['cost_per_kwh', 'currency', 'data_points', 'device_id', 'device_name', 'period', 'total_cost', 'total_kwh']);
      assert.deepEqual([c.device_id, c.device_name, c.period, c.cost_per_kwh, c.currency], [1, 'NAS plug', p, 0.3, 'EUR']);
      assert.equal(c.total_kwh, round(e.energyWh / 1000, 4), p);
      assert.equal(c.total_cost, round((e.energyWh / 1000) * 0.3, 2), p);
      assert.ok(c.data_points.length >= 1, p);
      let prev = -1;
      for (const dp of c.data_points) {
        assert.deepEqual(keysOf(dp), ['cumulative_cost', 'cumulative_kwh', 'instant_watts', 'timestamp']);
        assert.match(dp.timestamp, ISO_Z);
        assert.ok(dp.cumulative_kwh >= prev, 'running totals never fall');
        prev = dp.cumulative_kwh;
      }
      const lastPoint = c.data_points[c.data_points.length - 1];
      assert.equal(lastPoint.cumulative_kwh, c.total_kwh, `${p}: the last point is the total`);
      assert.equal(lastPoint.instant_watts, 50, `${p}: the hour of the live reading`);
    }
    const total = (await get('/api/energy/cumulative/total?period=month')).json();
    const one = (await get('/api/energy/cumulative/1?period=month')).json();
    assert.deepEqual([total.device_id, total.device_name], [0, 'Total']);
    assert.equal(total.total_kwh, one.total_kwh, 'plug 2 has one reading: no energy yet');
    assert.equal(total.data_points[total.data_points.length - 1].instant_watts, 59, 'hour means summed over the plugs');
    const missing = await get('/api/energy/cumulative/42');
    assert.deepEqual([missing.statusCode, missing.json()], [404, { detail: 'Device 42 not found' }]);
  });

  test('GET /api/energy/price: BaluHost\'s singleton, price in currency units (not cents)', async () => {
    const body = (await get('/api/energy/price')).json();
    assert.deepEqual(keysOf(body), ['cost_per_kwh', 'currency', 'id', 'updated_at', 'updated_by_user_id']);
    assert.deepEqual({ ...body, updated_at: undefined }, { id: 1, cost_per_kwh: 0.3, currency: 'EUR', updated_at: undefined, updated_by_user_id: null });
    assert.match(body.updated_at, ISO_Z);
  });

  test('GET /api/plugins/tapo_smart_plug/config: name and an empty panel selection (BaluApp then takes the first plug)', async () => {
    assert.deepEqual((await get('/api/plugins/tapo_smart_plug/config')).json(), { name: 'tapo_smart_plug', config: { panel_devices: [] }, schema: null });
    assert.equal((await get('/api/plugins/other/config')).statusCode, 404);
  });

  test('PUT /api/plugins/tapo_smart_plug/config: BaluApp\'s panel choice is kept; unknown plugs and bad bodies change nothing', async () => {
    const put = (payload: unknown) => app.inject({ method: 'PUT', url: '/api/plugins/tapo_smart_plug/config', headers: auth, payload: payload as object });
    const ids = monitor.registry.list().map((d) => d.id);
    const chosen = [ids[1]!, ids[0]!];
    const ok = await put({ config: { panel_devices: chosen } });
    assert.equal(ok.statusCode, 200);
    assert.deepEqual(ok.json().config.panel_devices, chosen, 'BaluApp\'s order is kept');
    for (const [payload, status] of [[{ config: { panel_devices: [9999] } }, 404], [{ config: { panel_devices: ['x'] } }, 422], [{ panel_devices: [1] }, 422]] as const) {
      const r = await put(payload);
      assert.equal(r.statusCode, status, JSON.stringify(payload));
      assert.ok('detail' in r.json());
    }
    assert.deepEqual((await get('/api/plugins/tapo_smart_plug/config')).json().config.panel_devices, chosen, 'a refused update leaves the choice as it was');
    await put({ config: { panel_devices: [] } });
  });
});
