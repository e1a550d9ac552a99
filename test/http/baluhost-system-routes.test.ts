// BaluHost's system, monitoring and boot endpoints, and the whole set the BaluHost web client built in Pi mode polls
// (../shared/reference/baluhost-api.md §5.6): the Fastify app (inject) over the real background sampler
// (SystemMonitor on this host), the real NasService testbed (BaluHost emulator and a loopback WoL listener) and a
// real EnergyMonitor polling a KLAP plug emulator on 127.0.0.1. Shapes are checked field by field.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ClassicLevel } from 'classic-level';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/http/app.ts';
import { TokenVerifier } from '../../src/auth/tokens.ts';
import { createLogger } from '../../src/log.ts';
import { SystemMonitor } from '../../src/system/status.ts';
import { NodeStatusService } from '../../src/system/node-status.ts';
import { systemRoutes } from '../../src/routes/system.ts';
import { energyRoutes } from '../../src/routes/energy.ts';
import { nasRoutes } from '../../src/routes/nas.ts';
import { handshakeRoutes } from '../../src/routes/handshake.ts';
import { healthRoutes } from '../../src/routes/health.ts';
import { baluhostSystemRoutes } from '../../src/routes/baluhost-system.ts';
import { baluhostEnergyRoutes } from '../../src/routes/baluhost-energy.ts';
import { EnergyMonitor } from '../../src/energy/monitor.ts';
import { SyncRuntime } from '../../src/sync/runtime.ts';
import { describeServices } from '../../src/system/services.ts';
import { openStore, type Store } from '../../store/index.ts';
import { VERSION } from '../../src/version.ts';
import { TapoPlugEmulator } from '../emulators/tapo-plug.ts';
import { tempDir } from '../helpers/daemon-process.ts';
import { baluhostCall, baluhostSnapshot, GOING_OFFLINE } from '../emulators/baluhost.ts';
import { testbed, until, SECRET as HANDSHAKE_SECRET, type Testbed } from '../nas/testbed.ts';

const SECRET = 'a-baluhost-secret-key-of-32-chars!!';
const CREDS = { username: 'owner@example.org', password: 'plug-pw' };
const ISO_Z = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3})?Z$/;
const keysOf = (o: object) => Object.keys(o).sort();

let dir: Awaited<ReturnType<typeof tempDir>>;
let db: ClassicLevel<string, string>;
let sampler: SystemMonitor;
let energy: EnergyMonitor;
let plugA: TapoPlugEmulator, plugB: TapoPlugEmulator;
let tb: Testbed;
let store: Store;
let sync: SyncRuntime;
let app: FastifyInstance;
let auth: { authorization: string };

before(async () => {
  dir = await tempDir('balupi-bh-system-');
  sampler = new SystemMonitor({ dataDir: dir.path, intervalMs: 60_000 });
  await sampler.start();
  plugA = new TapoPlugEmulator({ ...CREDS, model: 'P110', hasEmeterData: true, nickname: 'NAS plug', powerCurve: () => 42.5, voltageV: 229 });
  plugB = new TapoPlugEmulator({ ...CREDS, model: 'P115', hasEmeterData: false, nickname: 'Desk plug', powerCurve: () => 9 });
  await plugA.start();
  await plugB.start();
  db = new ClassicLevel<string, string>(`${dir.path}/db`, { valueEncoding: 'utf8' });
  await db.open();
  energy = new EnergyMonitor({
    db,
    config: {
      tapoUsername: CREDS.username, tapoPassword: CREDS.password, tapoDiscoveryAddress: '127.0.0.1:9',
      tapoDevices: [plugA, plugB].map((e) => ({ host: '127.0.0.1', port: e.port })),
      energyIntervalS: 30, energyRetentionDays: 365, timeZone: 'UTC', energyPrice: 0.3, currency: 'EUR',
      nasPowerThresholds: [3, 15, 40], alertWebhook: null, demoPlugs: 0,
    },
    logger: createLogger({ logLevel: 'silent', logFormat: 'json' }),
    syncWrites: false,
  });
  await energy.start();
  await energy.pollNow();
  tb = await testbed();
  store = await openStore({ dir: `${dir.path}/store` });
  const log = createLogger({ logLevel: 'silent', logFormat: 'json' });
  // A pi whose hub has never answered (nothing listens on the port): the services panel must say so.
  sync = await SyncRuntime.create({
    store, db, log,
    settings: { role: 'pi', hubUrl: 'http://127.0.0.1:1', hubRoot: null, peerSecret: 's', syncHotThreshold: 0.5, syncRetryMinS: 60, syncRetryMaxS: 60, syncMaxSendRate: null, hubWatchDebounceMs: 50, hubRescanS: 0 },
  });
  const status = new NodeStatusService(sampler, 'pi');
  const verifier = new TokenVerifier(SECRET);
  app = await buildApp({
    logger: createLogger({ logLevel: 'silent', logFormat: 'json' }),
    verifier,
    plugins: [
      (a) => a.register(healthRoutes, { role: 'pi', capabilities: [] }),
      (a) => a.register(systemRoutes, { status }),
      (a) => a.register(energyRoutes, { monitor: energy }),
      (a) => a.register(nasRoutes, { nas: tb.nas }),
      (a) => a.register(handshakeRoutes, { nas: tb.nas }),
      (a) => a.register(baluhostSystemRoutes, { status, services: () => describeServices({ sync, energy, nas: tb.nas }) }),
      (a) => a.register(baluhostEnergyRoutes, { monitor: energy }),
    ],
  });
  // Exactly what BaluHost issues: HS256 with its SECRET_KEY, sub = "3", username, role, type access, integer exp/iat.
  auth = { authorization: `Bearer ${await verifier.issueAccess({ id: 3, username: 'sven', role: 'user' })}` };
});

after(async () => {
  await app?.close();
  await tb?.close();
  await sync?.close();
  await store?.close();
  await energy?.stop();
  await db?.close();
  await sampler?.stop();
  for (const e of [plugA, plugB]) await e?.stop();
  await dir?.remove();
});

const get = (url: string) => app.inject({ url, headers: auth });

test('GET /api/system/info: cpu/memory/disk/uptime as BaluApp (free) and BaluDesk (available) read them', async () => {
  const res = await get('/api/system/info');
  assert.equal(res.statusCode, 200);
  const s = res.json();
  const host = sampler.current();
  assert.deepEqual(keysOf(s), ['cpu', 'dev_mode', 'disk', 'memory', 'system_uptime', 'uptime']);
  assert.deepEqual(keysOf(s.cpu), ['cores', 'frequency_mhz', 'model', 'temperature_celsius', 'usage']);
  assert.equal(s.cpu.usage, host.cpu_percent);
  assert.ok(Number.isInteger(s.cpu.cores) && s.cpu.cores >= 1);
  assert.ok(s.cpu.frequency_mhz === null || (typeof s.cpu.frequency_mhz === 'number' && s.cpu.frequency_mhz > 0), 'a clock or null, never 0');
  assert.ok(s.cpu.temperature_celsius === null || typeof s.cpu.temperature_celsius === 'number');
  assert.ok(s.cpu.model === null || typeof s.cpu.model === 'string');
  assert.deepEqual(keysOf(s.memory), ['available', 'free', 'speed_mts', 'total', 'type', 'used']);
  assert.deepEqual([s.memory.total, s.memory.used, s.memory.free, s.memory.available], [host.memory.total, host.memory.used, host.memory.free, host.memory.available]);
  assert.deepEqual([s.memory.speed_mts, s.memory.type], [null, null], 'not readable on a Pi: null, not made up');
  assert.deepEqual(s.disk, { total: host.disk.total, used: host.disk.used, free: host.disk.free, available: host.disk.free });
  for (const k of ['total', 'used', 'free', 'available'] as const) {
    assert.ok(Number.isInteger(s.memory[k]) && s.memory[k] >= 0, `memory.${k}`);
    assert.ok(Number.isInteger(s.disk[k]) && s.disk[k] >= 0, `disk.${k}`);
  }
  assert.equal(typeof s.uptime, 'number');
  assert.equal(s.system_uptime, host.uptime_seconds);
  assert.ok(s.system_uptime >= s.uptime, 'the host has run at least as long as the process');
  assert.equal(s.dev_mode, false);
});

test('the NAS features a Pi lacks answer well-formed empty results (not 404): RAID, SMART, shares, monitoring', async () => {
  assert.deepEqual((await get('/api/system/raid/status')).json(), { arrays: [], speed_limits: null, dev_mode: false });
  const smart = (await get('/api/system/smart/status')).json();
  assert.deepEqual(keysOf(smart), ['checked_at', 'devices']);
  assert.match(smart.checked_at, ISO_Z);
  assert.deepEqual(smart.devices, []);
  assert.deepEqual((await get('/api/shares/statistics')).json(), { total_file_shares: 0, active_file_shares: 0, files_shared_with_me: 0 });
  assert.deepEqual((await get('/api/shares/user-shares')).json(), []);
  assert.deepEqual((await get('/api/shares/shared-with-me')).json(), []);
  for (const kind of ['cpu', 'memory']) {
    assert.deepEqual((await get(`/api/monitoring/${kind}/history?time_range=1h`)).json(), { samples: [], sample_count: 0, source: 'memory' }, kind);
  }
  assert.deepEqual((await get('/api/monitoring/uptime/history?time_range=24h&source=auto&limit=1000')).json(), { samples: [], sleep_events: [], sample_count: 0, source: 'memory' });
  const up = (await get('/api/monitoring/uptime/current')).json();
  assert.deepEqual(keysOf(up), ['server_start_time', 'server_uptime_seconds', 'system_boot_time', 'system_uptime_seconds', 'timestamp']);
  for (const k of ['timestamp', 'server_start_time', 'system_boot_time']) assert.match(up[k], ISO_Z, k);
  assert.ok(Number.isInteger(up.server_uptime_seconds) && Number.isInteger(up.system_uptime_seconds));
  assert.equal(Date.parse(up.timestamp) - Date.parse(up.system_boot_time), up.system_uptime_seconds * 1000);
  assert.ok(Date.parse(up.system_boot_time) <= Date.parse(up.server_start_time));
  assert.equal((await get('/api/monitoring/cpu/history?limit=0')).statusCode, 422);
});

test('the web client\'s boot calls: setup status, mode and version without a token; presence with one', async () => {
  assert.deepEqual((await app.inject({ url: '/api/setup/status' })).json(), { setup_required: false, completed_steps: [] });
  assert.deepEqual((await app.inject({ url: '/api/system/mode' })).json(), { dev_mode: false });
  const v = await app.inject({ url: '/api/updates/version' });
  assert.equal(v.statusCode, 200);
  assert.deepEqual(v.json(), { version: VERSION, commit: 'unknown', commit_short: 'unknown', tag: null, date: null, is_dev_build: false, is_prerelease: VERSION.includes('-') });
  assert.equal(v.headers['x-api-min-version'], '1', 'the client compares this with its API_VERSION');

  const body = { client_id: 'tab_4f9a-XY', client_type: 'web' };
  assert.equal((await app.inject({ method: 'POST', url: '/api/system/sleep/presence', payload: body })).statusCode, 401);
  const ok = await app.inject({ method: 'POST', url: '/api/system/sleep/presence', headers: auth, payload: body });
  assert.deepEqual([ok.statusCode, ok.json()], [200, { present: true, enabled: false, mode: 'active', heartbeat_interval_seconds: 45, timeout_minutes: 0 }]);
  for (const bad of [{ client_id: 'short', client_type: 'web' }, { client_id: 'has spaces in it', client_type: 'web' }, { client_id: 'tab_4f9a-XY', client_type: 'tv' }, {}]) {
    const res = await app.inject({ method: 'POST', url: '/api/system/sleep/presence', headers: auth, payload: bad });
    assert.equal(res.statusCode, 422, JSON.stringify(bad));
    assert.ok(Array.isArray(res.json().detail), 'FastAPI\'s list of validation errors');
  }
});

test('the Pi dashboard\'s polls, field by field, with a BaluHost token: none answers 401', async () => {
  // /api/system/status: everything PiDashboard calls toFixed() on is a number; the temperature may be null.
  const sys = (await get('/api/system/status')).json();
  for (const k of ['cpu_percent', 'memory_percent', 'memory_used_mb', 'memory_total_mb', 'uptime_seconds']) assert.equal(typeof sys[k], 'number', k);
  assert.ok(sys.temperature_c === null || typeof sys.temperature_c === 'number');
  assert.equal(typeof sys.hostname, 'string');
  const host = sampler.current();
  assert.deepEqual([sys.memory_percent, sys.memory_total_mb, sys.memory_used_mb],
    [host.memory.percent, Math.round(host.memory.total / 2 ** 20), Math.round(host.memory.used / 2 ** 20)]);

  // /api/energy/current: `devices` has only plugs with measured power, voltage and current (the card calls toFixed on
  // power_w and voltage_v of each); the plug without get_emeter_data is listed apart, nothing invented for it.
  const cur = (await get('/api/energy/current')).json();
  assert.deepEqual(cur.devices.map((d: Record<string, unknown>) => [d.device_id, d.name, d.power_w, d.voltage_v, d.current_a]), [[1, 'NAS plug', 42.5, 229, 0.186]]);
  for (const d of cur.devices) for (const k of ['power_w', 'voltage_v', 'current_a']) assert.equal(typeof d[k], 'number', k);
  assert.deepEqual(cur.partial_devices.map((d: Record<string, unknown>) => [d.device_id, d.name, d.power_w, d.voltage_v, d.current_a]), [[2, 'Desk plug', 9, null, null]]);
  assert.equal(cur.total_power_w, 51.5, 'the total counts every online plug');

  // /api/handshake/status and /snapshot, POST /api/nas/wol.
  await tb.run(1, 45);
  await until(tb.nas, 'online');
  const hs = (await get('/api/handshake/status')).json();
  assert.deepEqual(keysOf(hs), ['inbox_files', 'inbox_size_mb', 'last_snapshot', 'nas_state', 'since']);
  assert.equal(hs.nas_state, 'online');
  assert.match(hs.since, ISO_Z);
  assert.deepEqual([hs.last_snapshot, hs.inbox_size_mb, hs.inbox_files], [null, 0, 0]);
  assert.deepEqual([(await get('/api/handshake/snapshot')).statusCode, (await get('/api/handshake/snapshot')).json()], [404, { detail: 'No snapshot available' }]);
  const call = baluhostCall(HANDSHAKE_SECRET, GOING_OFFLINE, baluhostSnapshot(), { timestamp: Math.floor(tb.clock.now() / 1000) });
  assert.equal((await app.inject({ method: call.method, url: call.path, headers: call.headers, payload: call.body })).statusCode, 200);
  const snap = (await get('/api/handshake/snapshot')).json();
  assert.deepEqual(keysOf(snap), ['baluhost_version', 'files_summary', 'generated_at', 'services', 'smart_health', 'storage', 'system', 'users', 'version']);
  assert.match((await get('/api/handshake/status')).json().last_snapshot, ISO_Z);
  await tb.emu.goDown();
  await tb.clock.advance(70_000); // past the quiet window of the going-offline call
  await tb.run(5, 8); // the NAS plug at standby power: a wake can help now
  const sent = tb.wolSends;
  const wol = await app.inject({ method: 'POST', url: '/api/nas/wol', headers: { ...auth, 'content-type': 'application/json' } });
  assert.equal(wol.statusCode, 200, wol.body);
  assert.equal(wol.json().wol_sent, true);
  await tb.wol.next();
  assert.equal(tb.wolSends, sent + 1, 'one magic packet, to the loopback listener');

  // Everything the Pi build polls, with BaluHost's token: no 401 (the SPA logs out on any 401).
  for (const url of ['/api/system/status', '/api/energy/current', '/api/handshake/status', '/api/handshake/snapshot', '/api/smart-devices/',
    '/api/energy/dashboard/1', '/api/energy/cumulative/total', '/api/energy/price', '/api/system/info', '/api/monitoring/uptime/current']) {
    const res = await get(url);
    assert.equal(res.statusCode, 200, url);
    assert.equal((await app.inject({ url })).statusCode, 401, `${url} without a token`);
  }
});

test('BaluDesk\'s network widget and services panel: measured rates in its units, one row per part, admin only', async () => {
  const net = await get('/api/monitoring/network/current');
  assert.equal(net.statusCode, 200);
  const n = net.json();
  assert.deepEqual(keysOf(n), ['download_mbps', 'timestamp', 'upload_mbps']);
  assert.match(n.timestamp, ISO_Z);
  const host = sampler.current();
  const expectMbps = (b: number) => Math.round(((b * 8) / (1024 * 1024)) * 1000) / 1000;
  assert.equal(n.upload_mbps, expectMbps(host.network?.tx_bytes_per_s ?? 0), 'the sampler\'s measured rate, in BaluDesk\'s Mbit/s (x1024x1024/8 gives B/s back)');
  assert.equal(n.download_mbps, expectMbps(host.network?.rx_bytes_per_s ?? 0));

  assert.equal((await get('/api/admin/services')).statusCode, 403, 'sven is not an admin');
  const admin = { authorization: `Bearer ${await new TokenVerifier(SECRET).issueAccess({ id: 1, username: 'admin', role: 'admin' })}` };
  const res = await app.inject({ url: '/api/admin/services', headers: admin });
  assert.equal(res.statusCode, 200);
  const rows = res.json() as { name: string; display_name: string; state: string; detail: string | null }[];
  assert.deepEqual(rows.map((r) => r.name), ['balupi-api', 'balupi-sync', 'balupi-energy', 'balupi-nas']);
  for (const r of rows) assert.equal(typeof r.display_name, 'string');
  const byName = Object.fromEntries(rows.map((r) => [r.name, r]));
  assert.equal(byName['balupi-sync']!.state, 'degraded', 'a configured hub that does not answer');
  assert.deepEqual([byName['balupi-energy']!.state, byName['balupi-energy']!.detail], ['running', '2 plug(s)']);
  assert.match(byName['balupi-nas']!.detail!, /^NAS /);
});
