// /api/energy/* and /api/tapo/* through the real Fastify app (inject) over a real EnergyMonitor: temporary LevelDB,
// three KLAP plug emulators on 127.0.0.1 (one answering get_emeter_data, one without it, one that goes offline),
// a fourth added through the API and a fifth found by discovery against its loopback UDP responder. Polls are
// driven with monitor.pollNow(), never by waiting for the 30 s timer.
// Two days ago, 10:00–12:00 local, is seeded with known readings (plug 1: 100 W, plug 2: 50 W) so history, costs and
// the CSV export have exact expected values.

import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { SignJWT } from 'jose';
import { ClassicLevel } from 'classic-level';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/http/app.ts';
import { TokenVerifier } from '../../src/auth/tokens.ts';
import { createLogger } from '../../src/log.ts';
import { energyRoutes } from '../../src/routes/energy.ts';
import { tapoRoutes } from '../../src/routes/tapo.ts';
import { EnergyMonitor, type EnergyConfig } from '../../src/energy/monitor.ts';
import { EnergySeries } from '../../src/energy/series.ts';
import { Calendar, HOUR_MS } from '../../src/energy/calendar.ts';
import { isoUtc } from '../../src/energy/csv.ts';
import { TapoPlugEmulator } from '../emulators/tapo-plug.ts';
import { tempDir } from '../helpers/daemon-process.ts';

const SECRET = 'a-baluhost-secret-key-of-32-chars!!';
const CREDS = { username: 'owner@example.org', password: 'plug-pw' };
const TZ = 'Europe/Berlin';
const cal = new Calendar(TZ);
const ISO_Z = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3})?Z$/;

async function token(role: 'admin' | 'user'): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ sub: role === 'admin' ? '1' : '5', username: role === 'admin' ? 'root' : 'alice', role, type: 'access', iat: now, exp: now + 900 })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .sign(new TextEncoder().encode(SECRET));
}

function energyConfig(over: Partial<EnergyConfig> = {}): EnergyConfig {
  return {
    tapoUsername: CREDS.username, tapoPassword: CREDS.password, tapoDevices: [], tapoDiscoveryAddress: '127.0.0.1:9',
    energyIntervalS: 30, energyRetentionDays: 365, timeZone: TZ, energyPrice: 0.3, currency: 'EUR',
    nasPowerThresholds: [3, 15, 40], alertWebhook: null, demoPlugs: 0, ...over,
  };
}

async function appFor(monitor: EnergyMonitor): Promise<FastifyInstance> {
  return buildApp({
    logger: createLogger({ logLevel: 'silent', logFormat: 'json' }),
    verifier: new TokenVerifier(SECRET),
    plugins: [(a) => a.register(energyRoutes, { monitor }), (a) => a.register(tapoRoutes, { monitor })],
  });
}

const close = (actual: number, expected: number, what: string) =>
  assert.ok(Math.abs(actual - expected) < 1e-9, `${what}: ${actual} ≠ ${expected}`);

describe('energy and tapo routes over a live monitor', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let db: ClassicLevel<string, string>;
  let monitor: EnergyMonitor;
  let app: FastifyInstance;
  let withEmeter: TapoPlugEmulator, withoutEmeter: TapoPlugEmulator, flaky: TapoPlugEmulator, extra: TapoPlugEmulator, discoverable: TapoPlugEmulator;
  let admin: string, user: string;
  // Seeded history: plug 1 at 100 W and plug 2 at 50 W, every 30 s from 10:00 to 12:00 local, two days ago.
  const day = cal.shiftLocalDays(cal.dayStart(Date.now()), -2);
  const p = cal.parts(day);
  const T0 = cal.localToInstant(p.year, p.month, p.day, 10);
  const D = cal.localDate(day);
  const D1 = cal.localDate(cal.dayEnd(day));

  const get = async (url: string, tok = user) => app.inject({ url, headers: { authorization: `Bearer ${tok}` } });
  const send = async (method: 'POST' | 'PUT' | 'DELETE', url: string, body?: unknown, tok = admin) =>
    app.inject({ method, url, headers: { authorization: `Bearer ${tok}` }, ...(body === undefined ? {} : { payload: body as object }) });

  before(async () => {
    [admin, user] = await Promise.all([token('admin'), token('user')]);
    withEmeter = new TapoPlugEmulator({ ...CREDS, model: 'P110', hasEmeterData: true, nickname: 'NAS plug', powerCurve: () => 50 });
    withoutEmeter = new TapoPlugEmulator({ ...CREDS, model: 'P115', hasEmeterData: false, nickname: 'Desk plug', powerCurve: () => 8.962 });
    flaky = new TapoPlugEmulator({ ...CREDS, model: 'P110', hasEmeterData: true, nickname: 'Heater plug', powerCurve: () => 120 });
    extra = new TapoPlugEmulator({ ...CREDS, model: 'P115', hasEmeterData: false, nickname: 'Extra plug', powerCurve: () => 3 });
    discoverable = new TapoPlugEmulator({ ...CREDS, model: 'P110', mac: '9C-53-22-AA-BB-CC', nickname: 'Found plug', powerCurve: () => 7 });
    for (const e of [withEmeter, withoutEmeter, flaky, extra, discoverable]) await e.start();
    const udpPort = await discoverable.startDiscovery();

    dir = await tempDir('balupi-energy-routes-');
    db = new ClassicLevel<string, string>(dir.path, { valueEncoding: 'utf8' });
    await db.open();
    const seed = new EnergySeries(db.sublevel('energy'), { timeZone: TZ, maintainEveryMs: 0, sync: false });
    await seed.open();
    for (let at = T0; at <= T0 + 2 * HOUR_MS; at += 30_000) {
      for (const [deviceId, powerW] of [[1, 100], [2, 50]] as const) {
        await seed.append({ deviceId, at, powerW, voltageV: null, currentA: null, todayWh: null, monthWh: null, deviceOn: true });
      }
    }
    await seed.close();

    monitor = new EnergyMonitor({
      db,
      config: energyConfig({
        tapoDevices: [withEmeter, withoutEmeter, flaky].map((e) => ({ host: '127.0.0.1', port: e.port })),
        tapoDiscoveryAddress: `127.0.0.1:${udpPort}`,
      }),
      logger: createLogger({ logLevel: 'silent', logFormat: 'json' }),
      discoveryTimeoutMs: 300,
      syncWrites: false,
    });
    await monitor.start();
    app = await appFor(monitor);
    await monitor.pollNow();
  });

  after(async () => {
    await app?.close();
    await monitor?.stop();
    await db?.close();
    for (const e of [withEmeter, withoutEmeter, flaky, extra, discoverable]) await e?.stop();
    await dir?.remove();
  });

  test('no token: 401 on every energy and tapo route', async () => {
    for (const [method, url] of [['GET', '/api/energy/current'], ['GET', '/api/energy/history'], ['GET', '/api/energy/export.csv'],
      ['GET', '/api/tapo/devices'], ['POST', '/api/tapo/devices/1/toggle'], ['POST', '/api/energy/prices']] as const) {
      const res = await app.inject({ method, url });
      assert.equal(res.statusCode, 401, url);
      assert.deepEqual(res.json(), { detail: 'No authentication token provided' }, url);
    }
  });

  test('current: every field of each plug; the plug without get_emeter_data in partial_devices, voltage and current null', async () => {
    const res = await get('/api/energy/current');
    assert.equal(res.statusCode, 200);
    const body = res.json();
    assert.match(body.timestamp, ISO_Z);
    const [a, c] = body.devices;
    const [b] = body.partial_devices;
    assert.deepEqual([body.devices.length, body.partial_devices.length], [2, 1]);
    assert.deepEqual(Object.keys(a).sort(), ['current_a', 'device_id', 'device_name', 'device_on', 'energy_today_kwh', 'is_online', 'name', 'power_w', 'role', 'timestamp', 'voltage_v']);
    assert.deepEqual({ ...a, timestamp: undefined, energy_today_kwh: undefined }, {
      device_id: 1, device_name: 'NAS plug', name: 'NAS plug', role: 'generic', power_w: 50, voltage_v: 230, current_a: 0.217,
      is_online: true, device_on: true, timestamp: undefined, energy_today_kwh: undefined,
    });
    assert.match(a.timestamp, ISO_Z);
    assert.ok(Math.abs(Date.parse(a.timestamp) - Date.now()) < 60_000, 'timestamp is the poll time');
    assert.equal(b.device_name, 'Desk plug');
    assert.equal(b.power_w, 9, 'P115 get_current_power reports whole watts');
    assert.equal(b.voltage_v, null, 'not invented when the firmware does not report it');
    assert.equal(b.current_a, null);
    assert.equal(c.power_w, 120);
    assert.equal(c.current_a, 0.522);
    close(body.total_power_w, 179, 'total of online plugs');
  });

  test('tapo devices: add, edit, delete need admin; bad input 422, duplicates and a second NAS 409, unknown id 404', async () => {
    const list = (await get('/api/tapo/devices')).json();
    assert.equal(list.total, 3);
    assert.equal(list.devices[0].model, 'P110', 'filled in from get_device_info');
    assert.equal(list.devices[0].address, `127.0.0.1:${withEmeter.port}`);

    const denied = await send('POST', '/api/tapo/devices', { host: `127.0.0.1:${extra.port}` }, user);
    assert.deepEqual([denied.statusCode, denied.json()], [403, { detail: 'Insufficient permissions: Admin required' }]);

    const added = await send('POST', '/api/tapo/devices', { host: `127.0.0.1:${extra.port}`, name: 'Extra', max_power_w: 500 });
    assert.equal(added.statusCode, 201);
    assert.deepEqual([added.json().id, added.json().name, added.json().port, added.json().max_power_w, added.json().is_online], [4, 'Extra', extra.port, 500, false]);
    await monitor.pollNow();
    assert.equal((await get('/api/tapo/devices')).json().devices[3].is_online, true, 'the new plug is polled');

    const dup = await send('POST', '/api/tapo/devices', { host: '127.0.0.1', port: extra.port });
    assert.equal(dup.statusCode, 409);
    assert.match(dup.json().detail, /already device 4/);
    const badHost = await send('POST', '/api/tapo/devices', { host: 'http://plug.local' });
    assert.equal(badHost.statusCode, 422);
    assert.match(badHost.json().detail, /without a scheme/);
    const noHost = await send('POST', '/api/tapo/devices', { name: 'x' });
    assert.equal(noHost.statusCode, 422);
    assert.deepEqual(noHost.json().detail[0].loc, ['body', 'host']);

    const nas = await send('PUT', '/api/tapo/devices/1', { role: 'nas' });
    assert.deepEqual([nas.statusCode, nas.json().role], [200, 'nas']);
    const second = await send('PUT', '/api/tapo/devices/4', { role: 'nas' });
    assert.equal(second.statusCode, 409, 'only one plug powers the NAS');
    const renamed = await send('PUT', '/api/tapo/devices/4', { name: 'Router', max_power_w: null });
    assert.deepEqual([renamed.json().name, renamed.json().max_power_w, renamed.json().power_w], ['Router', null, 3]);
    assert.equal((await send('PUT', '/api/tapo/devices/4', { name: 'x' }, user)).statusCode, 403);
    assert.deepEqual((await send('PUT', '/api/tapo/devices/99', { name: 'x' })).json(), { detail: 'Device 99 not found' });
    assert.equal((await send('PUT', '/api/tapo/devices/99', { name: 'x' })).statusCode, 404);

    assert.equal((await send('DELETE', '/api/tapo/devices/4', undefined, user)).statusCode, 403);
    const removed = await send('DELETE', '/api/tapo/devices/4');
    assert.equal(removed.statusCode, 200);
    assert.match(removed.json().message, /Device 4 \(Router\) removed/);
    assert.equal((await send('DELETE', '/api/tapo/devices/4')).statusCode, 404);
    assert.deepEqual((await get('/api/tapo/devices')).json().devices.map((d: { id: number }) => d.id), [1, 2, 3]);
  });

  test('history: buckets and raw samples in time order, per device; 404 unknown device; 422 bad parameters', async () => {
    const hours = (await get(`/api/energy/history?device_id=1&from=${D}&to=${D1}&resolution=hour`)).json();
    assert.deepEqual([hours.from, hours.to, hours.period, hours.resolution], [isoUtc(cal.parseLocalDate(D)), isoUtc(cal.parseLocalDate(D1)), null, 'hour']);
    assert.equal(hours.devices.length, 1);
    const pts = hours.devices[0].points;
    assert.deepEqual(pts.map((x: { timestamp: string }) => x.timestamp), [0, 1, 2].map((h) => isoUtc(T0 + h * HOUR_MS)));
    assert.deepEqual(pts.map((x: { energy_wh: number }) => x.energy_wh), [100, 100, 0]);
    assert.deepEqual(pts.map((x: { samples: number }) => x.samples), [120, 120, 1]);
    assert.deepEqual([pts[0].power_w, pts[0].min_w, pts[0].max_w, pts[0].partial, pts[0].end], [100, 100, 100, false, isoUtc(T0 + HOUR_MS)]);

    const raw = (await get(`/api/energy/history?from=${D}&to=${D1}&resolution=raw`)).json();
    assert.deepEqual(raw.devices.map((d: { device_id: number }) => d.device_id), [1, 2, 3], 'no device_id: every device');
    const rawPts = raw.devices[1].points;
    assert.equal(rawPts.length, 241);
    assert.deepEqual(rawPts[0], { timestamp: isoUtc(T0), power_w: 50, voltage_v: null, current_a: null, device_on: true });
    for (let i = 1; i < rawPts.length; i++) assert.ok(Date.parse(rawPts[i].timestamp) > Date.parse(rawPts[i - 1].timestamp), 'ordered in time');
    assert.equal(raw.devices[2].points.length, 0, 'plug 3 has no readings that day');

    const today = (await get('/api/energy/history?device_id=1&period=day&resolution=raw')).json();
    assert.equal(today.period, 'day');
    assert.ok(today.devices[0].points.length >= 1, 'today has the live polls');
    assert.equal(today.devices[0].points.at(-1).voltage_v, 230);

    const missing = await get('/api/energy/history?device_id=99');
    assert.deepEqual([missing.statusCode, missing.json()], [404, { detail: 'Device 99 not found' }]);
    const badPeriod = await get('/api/energy/history?period=fortnight');
    assert.equal(badPeriod.statusCode, 422);
    assert.deepEqual(badPeriod.json().detail[0].loc, ['query', 'period']);
    assert.match(badPeriod.json().detail[0].msg, /'day' or 'week' or 'month' or 'year'/);
    const badRes = await get('/api/energy/history?resolution=minute');
    assert.deepEqual([badRes.statusCode, badRes.json().detail[0].loc], [422, ['query', 'resolution']]);
    const rawMonth = await get('/api/energy/history?period=month&resolution=raw');
    assert.equal(rawMonth.statusCode, 422);
    assert.match(rawMonth.json().detail, /resolution=raw is limited to 7 days.*export\.csv/);
    assert.equal((await get('/api/energy/history?period=week&resolution=raw')).statusCode, 200, 'a week of raw samples is allowed');
    for (const [qs, reason] of [
      [`from=${D}`, /to is required together with from/],
      [`from=${D1}&to=${D}`, /to must be after from/],
      ['from=yesterday&to=2026-01-01', /from must be a date YYYY-MM-DD or an ISO 8601 date-time/],
      ['from=2026-02-30&to=2026-03-02', /from: no such date/],
      ['from=2026-01-01T10:00:00&to=2026-01-02', /with Z or an offset/],
      [`period=day&from=${D}&to=${D1}`, /either period or from and to/],
    ] as const) {
      const res = await get(`/api/energy/history?${qs}`);
      assert.equal(res.statusCode, 422, qs);
      assert.match(res.json().detail, reason, qs);
    }
  });

  test('costs: configured price until a tariff is posted, then the constant and the time-of-use tariff', async () => {
    const url = `/api/energy/costs?from=${D}&to=${D1}&resolution=hour`;
    const costs = async () => (await get(url)).json();
    let c = await costs();
    assert.equal(c.currency, 'EUR');
    close(c.total.energy_kwh, 0.3, 'total kWh');
    close(c.total.cost, 0.09, 'BALUPI_ENERGY_PRICE 0.30 applies without a stored tariff');
    assert.deepEqual(c.devices.map((d: { device_id: number; cost: number }) => [d.device_id, d.cost]), [[1, 0.06], [2, 0.03], [3, 0]]);
    assert.deepEqual(c.devices[0].buckets.map((b: { cost: number }) => b.cost), [0.03, 0.03, 0]);

    const denied = await send('POST', '/api/energy/prices', { kind: 'constant', valid_from: D, price_per_kwh: 0.4 }, user);
    assert.equal(denied.statusCode, 403);
    const constant = await send('POST', '/api/energy/prices', { kind: 'constant', name: 'Flat', valid_from: D, price_per_kwh: 0.4 });
    assert.equal(constant.statusCode, 201);
    assert.deepEqual({ ...(constant.json() as object), id: undefined, created_at: undefined },
      { id: undefined, created_at: undefined, name: 'Flat', kind: 'constant', valid_from: D, currency: null, price_per_kwh: 0.4 });
    c = await costs();
    close(c.total.cost, 0.12, 'constant 0.40');

    const map = Array.from({ length: 24 }, (_, h) => (h === 10 ? 'on' : h === 11 ? 'off' : 'mid'));
    const tou = await send('POST', '/api/energy/prices', {
      kind: 'tou', name: 'Day/night', valid_from: D, currency: 'EUR', on_peak: 0.5, mid_peak: 0.3, off_peak: 0.2, weekday: map, weekend: map,
    });
    assert.equal(tou.statusCode, 201);
    c = await costs();
    // Plug 1: 0.1 kWh at 10 h (on, 0.50) + 0.1 kWh at 11 h (off, 0.20); plug 2 half of that.
    close(c.total.cost, 0.105, 'time of use replaces the constant tariff from the same date');
    close(c.devices[0].cost, 0.07, 'plug 1');
    const byDay = (await get(`/api/energy/costs?from=${D}&to=${D1}&resolution=day&device_id=2`)).json();
    assert.deepEqual([byDay.devices.length, byDay.total.buckets.length, byDay.total.cost], [1, 1, 0.035]);

    const prices = (await get('/api/energy/prices')).json();
    assert.deepEqual([prices.currency, prices.default_price_per_kwh, prices.tariffs.length], ['EUR', 0.3, 2]);
    assert.equal(prices.current.tariff_id, tou.json().id);
    assert.ok(['on', 'mid', 'off'].includes(prices.current.tier));

    for (const [body, reason] of [
      [{ kind: 'tou', valid_from: D, on_peak: 1, mid_peak: 1, off_peak: 1, weekday: map.slice(1), weekend: map }, /weekday must list 24 hourly tiers/],
      [{ kind: 'constant', valid_from: D, price_per_kwh: -1 }, /price_per_kwh must be a price per kWh/],
      [{ kind: 'constant', valid_from: '2026-13-01', price_per_kwh: 1 }, /valid_from is not a valid date/],
      [{ kind: 'constant', valid_from: D, price_per_kwh: 1, currency: 'USD' }, /currency must be EUR/],
    ] as const) {
      const res = await send('POST', '/api/energy/prices', body);
      assert.equal(res.statusCode, 422, JSON.stringify(body));
      assert.match(res.json().detail, reason);
    }
    const noDate = await send('POST', '/api/energy/prices', { kind: 'constant', price_per_kwh: 1 });
    assert.deepEqual([noDate.statusCode, noDate.json().detail[0].loc], [422, ['body', 'valid_from']]);
    assert.equal((await get('/api/energy/costs?period=year&resolution=hour')).statusCode, 422, 'hours over a year are refused');
  });

  test('CSV export: attachment with a header row, bucket rows and raw rows in time order; 404 unknown device', async () => {
    const res = await get(`/api/energy/export.csv?device_id=1&from=${D}&to=${D1}&resolution=hour`);
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['content-type'], 'text/csv; charset=utf-8');
    assert.equal(res.headers['content-disposition'], `attachment; filename="balupi-energy-1-${D}-${D}-hour.csv"`);
    const lines = res.body.trimEnd().split('\r\n');
    assert.equal(lines[0], 'timestamp,local_time,end,device_id,device_name,avg_w,min_w,max_w,energy_wh,samples,partial');
    assert.equal(lines.length, 4);
    assert.equal(lines[1], `${isoUtc(T0)},${cal.formatLocal(T0)},${isoUtc(T0 + HOUR_MS)},1,NAS plug,100,100,100,100,120,false`);

    const raw = await get(`/api/energy/export.csv?from=${D}&to=${D1}&resolution=raw`);
    const rows = raw.body.trimEnd().split('\r\n');
    assert.equal(rows[0], 'timestamp,local_time,device_id,device_name,power_w,voltage_v,current_a,device_on,today_wh');
    assert.equal(rows.length, 1 + 241 + 241, 'plugs 1 and 2, every sample');
    assert.equal(rows[1], `${isoUtc(T0)},${cal.formatLocal(T0)},1,NAS plug,100,,,true,`);
    assert.equal(rows[242], `${isoUtc(T0)},${cal.formatLocal(T0)},2,Desk plug,50,,,true,`);
    assert.equal((await get('/api/energy/export.csv?device_id=42')).statusCode, 404);
    assert.equal((await get('/api/energy/export.csv?period=decade')).statusCode, 422);
  });

  test('a plug goes offline after 3 failed polls (reading kept, alert raised), comes back, alerts list and acknowledge', async () => {
    const limit = await send('PUT', '/api/tapo/devices/3', { max_power_w: 100 });
    assert.equal(limit.statusCode, 200);
    await monitor.pollNow();
    const before = (await get('/api/energy/current')).json().devices[1];

    await flaky.setOffline(true);
    for (let poll = 1; poll <= 3; poll++) {
      await monitor.pollNow();
      const c = (await get('/api/energy/current')).json();
      assert.equal(c.devices[1].is_online, poll < 3, `after ${poll} failed poll(s)`);
      if (poll === 3) {
        assert.equal(c.devices[1].power_w, 120, 'the last reading stays, with its time');
        assert.equal(c.devices[1].timestamp, before.timestamp);
        close(c.total_power_w, 59, 'offline plugs do not count in the total');
      }
    }
    const open = (await get('/api/energy/alerts?acknowledged=false')).json();
    const kinds = open.alerts.map((a: { kind: string; device_id: number }) => `${a.kind}:${a.device_id}`);
    assert.ok(kinds.includes('power_over_limit:3') && kinds.includes('plug_offline:3'), kinds.join());
    const offline = open.alerts.find((a: { kind: string }) => a.kind === 'plug_offline');
    assert.deepEqual([offline.device_name, offline.is_active, offline.is_acknowledged, offline.acknowledged_at], ['Heater plug', true, false, null]);
    assert.match(offline.opened_at, ISO_Z);
    const over = open.alerts.find((a: { kind: string }) => a.kind === 'power_over_limit');
    assert.deepEqual(over.details, { power_w: 120, limit_w: 100 });

    const ack = await send('POST', `/api/energy/alerts/${offline.id}/acknowledge`, undefined, user);
    assert.equal(ack.statusCode, 200);
    assert.equal(ack.json().is_acknowledged, true);
    assert.match(ack.json().acknowledged_at, ISO_Z);
    const still = (await get('/api/energy/alerts?acknowledged=false')).json().alerts.map((a: { id: string }) => a.id);
    assert.ok(!still.includes(offline.id) && still.includes(over.id));
    assert.ok((await get('/api/energy/alerts?acknowledged=true')).json().alerts.some((a: { id: string }) => a.id === offline.id));
    const unknown = await send('POST', `/api/energy/alerts/${'0'.repeat(20)}/acknowledge`);
    assert.deepEqual([unknown.statusCode, unknown.json()], [404, { detail: `Alert ${'0'.repeat(20)} not found` }]);
    assert.equal((await send('POST', '/api/energy/alerts/not-an-id/acknowledge')).statusCode, 422);

    await flaky.setOffline(false);
    await monitor.pollNow();
    assert.equal((await get('/api/energy/current')).json().devices[1].is_online, true, 'back online at the next success');
    const cleared = (await get('/api/energy/alerts?acknowledged=true')).json().alerts.find((a: { id: string }) => a.id === offline.id);
    assert.equal(cleared.is_active, false);
    assert.match(cleared.cleared_at, ISO_Z);
  });

  test('summary: totals, costs, month estimate and the NAS power state from the nas plug', async () => {
    const s = (await get('/api/energy/summary')).json();
    assert.equal(s.devices_total, 3);
    assert.equal(s.devices_online, 3);
    close(s.total_power_w, 179, 'total power');
    assert.equal(s.currency, 'EUR');
    assert.equal(s.nas_device_id, 1);
    assert.equal(s.nas_state, 'active', '50 W is above the idle threshold of 40 W');
    assert.match(s.nas_state_since, ISO_Z);
    assert.match(s.nas_state_reason, /50 W → active/);
    assert.equal(s.nas_power_w, 50);
    for (const k of ['today_kwh', 'today_cost', 'month_kwh', 'month_cost', 'month_estimate_kwh', 'month_cost_estimate']) {
      assert.ok(Number.isFinite(s[k]) && s[k] >= 0, k);
    }
    assert.ok(s.month_kwh >= s.today_kwh && s.month_estimate_kwh >= s.month_kwh);
    assert.ok(['on', 'mid', 'off'].includes(s.price_tier), 'the time-of-use tariff is in force');
  });

  test('toggle: admin only; explicit on/off, bare toggle flips, the NAS plug is never switched off by a bare toggle', async () => {
    const denied = await send('POST', '/api/tapo/devices/2/toggle', { on: false }, user);
    assert.deepEqual([denied.statusCode, denied.json()], [403, { detail: 'Insufficient permissions: Admin required' }]);
    assert.equal(withoutEmeter.deviceOn, true, 'a refused toggle switches nothing');

    const off = await send('POST', '/api/tapo/devices/2/toggle', { on: false });
    assert.equal(off.statusCode, 200);
    assert.deepEqual([off.json().device_on, off.json().new_state, off.json().reading.power_w, off.json().reading.device_on], [false, 'off', 0, false]);
    assert.equal(withoutEmeter.deviceOn, false);
    assert.equal((await get('/api/energy/current')).json().partial_devices[0].device_on, false, 'the read-back is the current reading');
    const flipped = await send('POST', '/api/tapo/devices/2/toggle');
    assert.deepEqual([flipped.statusCode, flipped.json().device_on], [200, true]);
    assert.equal(withoutEmeter.deviceOn, true);

    const nasBare = await send('POST', '/api/tapo/devices/1/toggle');
    assert.equal(nasBare.statusCode, 409);
    assert.match(nasBare.json().detail, /powers the NAS: send \{"on": false\}/);
    assert.equal(withEmeter.deviceOn, true);
    const nasOff = await send('POST', '/api/tapo/devices/1/toggle', { on: false });
    assert.deepEqual([nasOff.statusCode, withEmeter.deviceOn], [200, false]);
    assert.equal((await get('/api/energy/summary')).json().nas_state, 'off', 'relay off: NAS off at once');
    assert.equal((await send('POST', '/api/tapo/devices/1/toggle', { on: true })).statusCode, 200);
    assert.equal(withEmeter.deviceOn, true);

    assert.equal((await send('POST', '/api/tapo/devices/77/toggle', { on: true })).statusCode, 404);
    assert.equal((await send('POST', '/api/tapo/devices/2/toggle', { on: 'sure' })).statusCode, 422);
  });

  test('discover: admin only; the loopback responder\'s plug is added, and a second scan adds nothing', async () => {
    assert.equal((await send('POST', '/api/tapo/devices/discover', undefined, user)).statusCode, 403);
    const res = await send('POST', '/api/tapo/devices/discover');
    assert.equal(res.statusCode, 200);
    const body = res.json();
    assert.deepEqual([body.discovered, body.new_devices, body.updated_devices], [1, 1, 0]);
    assert.deepEqual(body.found[0], { host: '127.0.0.1', port: discoverable.port, mac: '9C:53:22:AA:BB:CC', model: 'P110(EU)', device_type: 'SMART.TAPOPLUG', encrypt_type: 'KLAP' });
    assert.equal(body.devices[0].port, discoverable.port);
    assert.ok(discoverable.counters.discoveryProbes >= 1);
    await monitor.pollNow();
    const current = (await get('/api/energy/current')).json();
    const found = [...current.devices, ...current.partial_devices].find((d: { device_id: number }) => d.device_id === body.devices[0].id);
    assert.deepEqual([found.device_name, found.power_w, found.is_online], ['Found plug', 7, true]);
    const again = (await send('POST', '/api/tapo/devices/discover')).json();
    assert.deepEqual([again.discovered, again.new_devices], [1, 0]);
  });
});

test('without Tapo credentials nothing is polled, the API still answers, switching says why it cannot', async () => {
  const dir = await tempDir('balupi-energy-idle-');
  const db = new ClassicLevel<string, string>(dir.path, { valueEncoding: 'utf8' });
  const lines: Array<[string, unknown, string | undefined]> = [];
  const log = (level: string) => (obj: unknown, msg?: string) => void lines.push([level, obj, msg]);
  const monitor = new EnergyMonitor({
    db,
    config: energyConfig({ tapoUsername: '', tapoPassword: '', tapoDevices: [{ host: '127.0.0.1', port: 9 }] }),
    logger: { info: log('info'), warn: log('warn'), debug: log('debug') } as never,
    syncWrites: false,
  });
  let app: FastifyInstance | undefined;
  try {
    await monitor.start();
    assert.equal(monitor.polling, false);
    const why = lines.filter(([, obj, msg]) => /energy polling off/.test(String(msg ?? obj)));
    assert.equal(why.length, 1, 'said once');
    assert.equal(why[0]![0], 'warn', 'a configured plug that is never polled is worth a warning');
    app = await appFor(monitor);
    const auth = { authorization: `Bearer ${await token('admin')}` };
    const current = (await app.inject({ url: '/api/energy/current', headers: auth })).json();
    assert.deepEqual(current.devices, [], 'a plug never read has nothing the Pi dashboard could show');
    assert.deepEqual(current.partial_devices.map((d: Record<string, unknown>) => [d.device_id, d.power_w, d.voltage_v, d.is_online, d.timestamp]), [[1, null, null, false, null]]);
    assert.equal(current.total_power_w, 0);
    const summary = (await app.inject({ url: '/api/energy/summary', headers: auth })).json();
    assert.deepEqual([summary.nas_state, summary.nas_state_reason, summary.today_kwh], ['unknown', 'no plug has the role nas', 0]);
    const toggle = await app.inject({ method: 'POST', url: '/api/tapo/devices/1/toggle', headers: auth, payload: { on: true } });
    assert.equal(toggle.statusCode, 503);
    assert.match(toggle.json().detail, /no Tapo credentials/);
  } finally {
    await app?.close();
    await monitor.stop();
    await db.close();
    await dir.remove();
  }
});
