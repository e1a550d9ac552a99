// balupi.energy.v1.EnergyService against a real daemon process in demo mode (two emulated plugs on 127.0.0.1),
// through Connect clients over HTTP/1.1 (REST port) and gRPC over h2c. The daemon polls at start, so readings
// appear long before the 30 s interval; the test waits for them by asking with a deadline, never by sleeping.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createClient, ConnectError, Code, type Client } from '@connectrpc/connect';
import { createConnectTransport, createGrpcTransport } from '@connectrpc/connect-node';
import { timestampFromMs, timestampMs } from '@bufbuild/protobuf/wkt';
import { EnergyService, Resolution, type GetCurrentResponse } from '../../src/gen/balupi/energy/v1/energy_pb.js';
import { startDaemonProcess, tempDir, type DaemonProcess } from '../helpers/daemon-process.ts';

const SECRET = 'energy-pairing-secret';
const auth = { headers: { authorization: `Bearer ${SECRET}` } };
const ENV = { BALUPI_PEER_SECRET: SECRET, BALUPI_DEMO_PLUGS: '2', BALUPI_TIMEZONE: 'Europe/Berlin' };

let dir: Awaited<ReturnType<typeof tempDir>>;
let daemon: DaemonProcess;
let client: Client<typeof EnergyService>;

/** Asks until every plug has a reading (the daemon's first poll runs at start); fails after `ms`. */
async function readingsOf(c: Client<typeof EnergyService>, ms = 15_000): Promise<GetCurrentResponse> {
  const deadline = Date.now() + ms;
  for (;;) {
    const res = await c.getCurrent({}, auth);
    if (res.devices.length === 2 && res.devices.every((d) => d.timestamp !== undefined && d.isOnline)) return res;
    if (Date.now() > deadline) throw new Error(`no readings within ${ms} ms: ${JSON.stringify(res.devices.map((d) => [d.deviceId, d.isOnline]))}`);
    await new Promise((r) => setImmediate(r));
  }
}

before(async () => {
  dir = await tempDir('balupi-energy-rpc-');
  daemon = await startDaemonProcess({ env: ENV, dataDir: dir.path });
  client = createClient(EnergyService, createConnectTransport({ baseUrl: `http://127.0.0.1:${daemon.ports.http}`, httpVersion: '1.1' }));
});

after(async () => {
  await daemon?.stop();
  await dir?.remove();
});

test('GetCurrent lists the demo plugs with readings from the poll at start; the NAS plug reports volts and amps, the fridge plug not', async () => {
  const res = await readingsOf(client);
  const [nas, fridge] = res.devices;
  assert.deepEqual([nas!.deviceId, nas!.deviceName, nas!.role, nas!.isOnline, nas!.deviceOn], [1, 'Demo NAS', 'nas', true, true]);
  assert.ok(nas!.powerW > 3 && nas!.powerW < 120, `NAS power ${nas!.powerW} W is in its demo curve`);
  assert.equal(nas!.voltageV, 230);
  assert.ok(nas!.currentA !== undefined && Math.abs(nas!.currentA - nas!.powerW / 230) < 0.001);
  assert.deepEqual([fridge!.deviceId, fridge!.deviceName, fridge!.role, fridge!.isOnline], [2, 'Demo fridge', 'generic', true]);
  assert.equal(fridge!.voltageV, undefined, 'P115 firmware without get_emeter_data: no voltage, not a made-up one');
  assert.equal(fridge!.currentA, undefined);
  assert.ok(fridge!.powerW === 180 || (fridge!.powerW >= 1 && fridge!.powerW <= 90), `fridge ${fridge!.powerW} W`);
  assert.ok(Math.abs(res.totalPowerW - (nas!.powerW + fridge!.powerW)) < 1e-9, 'total of both online plugs');
  assert.ok(Math.abs(timestampMs(nas!.timestamp!) - Date.now()) < 60_000);
});

test('the same service over gRPC (h2c), and health lists energy.v1', async () => {
  const grpc = createClient(EnergyService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${daemon.ports.grpc}` }));
  const res = await readingsOf(grpc);
  assert.deepEqual(res.devices.map((d) => d.deviceName), ['Demo NAS', 'Demo fridge']);
  const health = await (await fetch(`http://127.0.0.1:${daemon.ports.http}/api/health`)).json() as { capabilities: string[] };
  assert.ok(health.capabilities.includes('energy.v1'), String(health.capabilities));
});

test('StreamHistory streams raw samples and the open hour\'s bucket in time order; unknown device and bad range refused', async () => {
  await readingsOf(client);
  const from = timestampFromMs(Date.now() - 3_600_000);
  const raw = [];
  for await (const p of client.streamHistory({ deviceId: 1, from, resolution: Resolution.RAW }, auth)) raw.push(p);
  assert.ok(raw.length >= 1, 'at least the reading of the poll at start');
  for (const p of raw) assert.deepEqual([p.samples, p.minW, p.maxW, p.energyWh], [1, p.avgW, p.avgW, 0]);
  for (let i = 1; i < raw.length; i++) assert.ok(timestampMs(raw[i]!.time!) > timestampMs(raw[i - 1]!.time!), 'in time order');

  const hours = [];
  for await (const p of client.streamHistory({ deviceId: 1, from, resolution: Resolution.HOUR }, auth)) hours.push(p);
  assert.ok(hours.length >= 1 && hours.length <= 2);
  const open = hours.at(-1)!;
  assert.equal(open.partial, true, 'the current hour is still open');
  assert.ok(open.samples >= 1);
  assert.ok(open.minW <= open.avgW && open.avgW <= open.maxW);

  const drain = async (req: Parameters<typeof client.streamHistory>[0]) => {
    for await (const _ of client.streamHistory(req, auth)) { /* drain */ }
  };
  await assert.rejects(drain({ deviceId: 99 }), (e: ConnectError) => e.code === Code.NotFound && /Device 99 not found/.test(e.rawMessage));
  await assert.rejects(drain({ deviceId: 1, from: timestampFromMs(Date.now()), to: timestampFromMs(Date.now() - 1000) }),
    (e: ConnectError) => e.code === Code.InvalidArgument && /to must be after from/.test(e.rawMessage));
});

test('GetSummary: the demo NAS plug gives a NAS power state with its reason', async () => {
  await readingsOf(client);
  const s = await client.getSummary({}, auth);
  assert.deepEqual([s.devices, s.devicesOnline, s.currency], [2, 2, 'EUR']);
  assert.ok(['standby', 'idle', 'active'].includes(s.nasState), s.nasState);
  assert.match(s.nasStateReason, /W/);
  assert.ok(s.nasStateSince !== undefined);
  assert.ok(s.monthCostEstimate >= s.monthCost && s.monthCost >= 0);
});

test('without the peer secret every EnergyService method is Unauthenticated', async () => {
  await assert.rejects(client.getCurrent({}), (e: ConnectError) => e.code === Code.Unauthenticated);
  await assert.rejects(client.getSummary({}, { headers: { authorization: 'Bearer wrong' } }), (e: ConnectError) => e.code === Code.Unauthenticated);
  await assert.rejects(async () => {
    for await (const _ of client.streamHistory({ deviceId: 1 })) { /* drain */ }
  }, (e: ConnectError) => e.code === Code.Unauthenticated);
});

test('demo plugs are the same devices after a restart (found by name, port updated)', async () => {
  const first = await readingsOf(client);
  await daemon.stop();
  daemon = await startDaemonProcess({ env: ENV, dataDir: dir.path });
  client = createClient(EnergyService, createConnectTransport({ baseUrl: `http://127.0.0.1:${daemon.ports.http}`, httpVersion: '1.1' }));
  const again = await readingsOf(client);
  assert.deepEqual(again.devices.map((d) => [d.deviceId, d.deviceName, d.role]), first.devices.map((d) => [d.deviceId, d.deviceName, d.role]));
  assert.ok(again.devices.every((d) => d.isOnline));
  const started = await daemon.waitForLog((l) => l.msg === 'demo plugs started');
  assert.equal((started.plugs as string[]).length, 2);
});
