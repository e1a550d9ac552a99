import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClassicLevel } from 'classic-level';
import { DeviceRegistry, DeviceRegistryError } from '../../src/energy/device-registry.ts';
import { PlugPoller, type PlugPollerOptions } from '../../src/energy/poller.ts';
import { tapoClientFactory } from '../../src/energy/tapo-client.ts';
import { PlugError } from '../../src/energy/plug-client.ts';
import type { PlugDevice, PlugReading } from '../../src/energy/types.ts';
import { TapoPlugEmulator, type TapoPlugEmulatorOptions } from '../emulators/tapo-plug.ts';
import { clock } from './plug-client-conformance.ts';

const CREDS = { username: 'owner@example.org', password: 'pw' };

async function setup(t: TestContext, plugs: Array<Partial<TapoPlugEmulatorOptions>>, options: Partial<PlugPollerOptions> = {}) {
  const emus: TapoPlugEmulator[] = [];
  for (const p of plugs) {
    const emu = new TapoPlugEmulator({ ...CREDS, ...p });
    await emu.start();
    emus.push(emu);
  }
  const dir = await mkdtemp(join(tmpdir(), 'balupi-poller-'));
  const db = new ClassicLevel<string, string>(dir);
  const registry = new DeviceRegistry(db.sublevel('tapo-devices'));
  await registry.open();
  await registry.seed(emus.map((e) => ({ host: '127.0.0.1', port: e.port })));
  const readings: PlugReading[] = [];
  const statuses: Array<{ id: number; online: boolean; error: Error | null; device: PlugDevice }> = [];
  const errors: unknown[] = [];
  const poller = new PlugPoller({
    devices: registry,
    credentials: CREDS,
    clientFactory: tapoClientFactory({ timeoutMs: 5_000 }),
    onReading: (r) => readings.push(r),
    onStatusChange: (device, online, error) => statuses.push({ id: device.id, online, error, device }),
    onError: (e) => errors.push(e),
    ...options,
  });
  t.after(async () => {
    await poller.stop();
    for (const e of emus) await e.stop();
    await db.close();
    await rm(dir, { recursive: true, force: true });
  });
  return { emus, registry, poller, readings, statuses, errors };
}

test('three plugs (with emeter, without, one that goes offline and returns): readings, offline after 3, online again, latest kept', async (t) => {
  const c = clock();
  const { emus, registry, poller, readings, statuses, errors } = await setup(
    t,
    [
      { model: 'P110', hasEmeterData: true, powerCurve: () => 50 },
      { model: 'P115', hasEmeterData: false, powerCurve: () => 8.962 },
      { model: 'P110', hasEmeterData: true, powerCurve: () => 120 },
    ],
    { intervalMs: 30_000, now: c.now },
  );
  const flaky = emus[2]!;

  await poller.pollOnce();
  assert.deepEqual(
    statuses.map((s) => [s.id, s.online]).sort(),
    [[1, true], [2, true], [3, true]],
    'first success = online',
  );
  assert.equal(poller.latest(1)?.voltageV, 230);
  assert.equal(poller.latest(1)?.powerW, 50);
  assert.equal(poller.latest(2)?.voltageV, null);
  assert.equal(poller.latest(2)?.powerW, 9);
  assert.equal(registry.get(1)?.model, 'P110', 'device info filled from get_device_info');
  const kept = poller.latest(3);

  await flaky.setOffline(true);
  for (let round = 1; round <= 3; round++) {
    c.advance(30_000);
    await poller.pollOnce();
    const offlineEvents = statuses.filter((s) => !s.online);
    if (round < 3) {
      assert.equal(registry.get(3)?.online, true, `still online after ${round} failed poll(s)`);
      assert.equal(offlineEvents.length, 0);
    } else {
      assert.equal(registry.get(3)?.online, false, 'offline after the third failed poll');
      assert.equal(offlineEvents.length, 1);
      assert.equal(offlineEvents[0]?.id, 3);
      assert.ok(offlineEvents[0]?.error instanceof PlugError);
      assert.equal((offlineEvents[0]?.error as PlugError).code, 'PLUG_UNREACHABLE');
      assert.match(registry.get(3)?.lastError ?? '', /unreachable/);
    }
  }
  assert.equal(poller.latest(3), kept, 'the last reading of an offline plug stays available');
  assert.equal(readings.filter((r) => r.deviceId === 1).length, 4, 'the healthy plugs were read every round');
  assert.equal(readings.filter((r) => r.deviceId === 2).length, 4);

  // While offline: capped exponential backoff (3 failures → 2 intervals, 4 → 4 intervals).
  assert.equal(poller.pollState(3)!.nextDueAt - c.now(), 60_000);
  c.advance(30_000);
  await poller.pollOnce();
  assert.equal(readings.filter((r) => r.deviceId === 3).length, 1, 'not due yet: not polled');
  c.advance(30_000);
  await poller.pollOnce();
  assert.equal(poller.pollState(3)!.failures, 4);
  assert.equal(poller.pollState(3)!.nextDueAt - c.now(), 120_000);

  await flaky.setOffline(false);
  await poller.pollOnce({ force: true });
  assert.equal(registry.get(3)?.online, true, 'online on the next success');
  assert.equal(statuses.at(-1)?.online, true);
  assert.equal(statuses.at(-1)?.id, 3);
  assert.equal(poller.pollState(3)!.failures, 0);
  assert.equal(poller.latest(3)?.powerW, 120);
  assert.notEqual(poller.latest(3), kept);
  assert.deepEqual(errors, []);
});

test('a plug that hangs does not delay the other plugs\u2019 readings; it fails at the poll deadline', async (t) => {
  const { emus, poller, readings } = await setup(
    t,
    [{ powerCurve: () => 1 }, { powerCurve: () => 2 }, { powerCurve: () => 3 }],
    { pollTimeoutMs: 1_500 },
  );
  await poller.pollOnce({ force: true }); // sessions up, device info known
  readings.length = 0;
  emus[1]!.setHanging(true);

  let othersRead!: () => void;
  const othersDone = new Promise<void>((resolve) => (othersRead = resolve));
  const poll = (async () => {
    const check = setInterval(() => {
      if (readings.some((r) => r.deviceId === 1) && readings.some((r) => r.deviceId === 3)) othersRead();
    }, 5);
    try {
      await poller.pollOnce({ force: true });
    } finally {
      clearInterval(check);
      othersRead();
    }
  })();
  await othersDone;
  assert.deepEqual(readings.map((r) => r.deviceId).sort(), [1, 3], 'the other plugs were read...');
  assert.equal(poller.pollState(2)?.polling, true, '...while the hung plug\u2019s poll was still in flight');
  await poll;
  const st = poller.pollState(2)!;
  assert.equal(st.polling, false);
  assert.equal(st.failures, 1);
  assert.ok(st.lastError instanceof PlugError && st.lastError.code === 'PLUG_TIMEOUT', String(st.lastError));
  emus[1]!.setHanging(false);
});

test('no overlapping polls of one plug: concurrent pollOnce calls join the poll in flight', async (t) => {
  const { emus, poller } = await setup(t, [{ powerCurve: () => 1 }, { powerCurve: () => 2 }]);
  await poller.pollOnce({ force: true });
  const before = emus.map((e) => e.counters.methods.multipleRequest ?? 0);
  await Promise.all([poller.pollOnce({ force: true }), poller.pollOnce({ force: true }), poller.pollDevice(1)]);
  assert.deepEqual(emus.map((e, i) => (e.counters.methods.multipleRequest ?? 0) - before[i]!), [1, 1]);
  assert.deepEqual(emus.map((e) => e.counters.handshake1), [1, 1], 'one session per plug across polls');
});

test('concurrency bound: with one slot, a hung plug holds it and the next plug is read only after its deadline', async (t) => {
  const seen: Array<{ id: number; hungPlugFailures: number }> = [];
  let poller!: PlugPoller;
  const env = await setup(t, [{}, { powerCurve: () => 2 }, { powerCurve: () => 3 }], {
    concurrency: 1,
    pollTimeoutMs: 300,
    onReading: (r) => seen.push({ id: r.deviceId, hungPlugFailures: poller.pollState(1)!.failures }),
  });
  poller = env.poller;
  await poller.pollOnce({ force: true });
  seen.length = 0;
  env.emus[0]!.setHanging(true);
  await poller.pollOnce({ force: true });
  env.emus[0]!.setHanging(false);
  assert.deepEqual(seen, [
    { id: 2, hungPlugFailures: 1 },
    { id: 3, hungPlugFailures: 1 },
  ], 'one at a time, in order: the hung poll had ended (failed) before any other plug was read');
});

test('wrong credentials: the plug goes offline with an error a user understands', async (t) => {
  const { poller, registry, statuses } = await setup(t, [{ powerCurve: () => 5 }], {
    credentials: { username: CREDS.username, password: 'not the password' },
  });
  for (let i = 0; i < 3; i++) await poller.pollOnce({ force: true });
  assert.equal(registry.get(1)?.online, false);
  assert.match(registry.get(1)?.lastError ?? '', /rejected the Tapo credentials/);
  assert.equal(statuses.length, 0, 'never online, so no change to report');
  assert.equal(poller.pollState(1)?.failures, 3);
});

test('toggle through the poller: the relay switches and latest() shows it at once', async (t) => {
  const { emus, poller, readings } = await setup(t, [{ powerCurve: () => 75 }]);
  await poller.pollOnce({ force: true });
  const off = await poller.setOn(1, false);
  assert.equal(emus[0]!.deviceOn, false);
  assert.equal(off?.deviceOn, false);
  assert.equal(poller.latest(1)?.powerW, 0);
  await poller.setOn(1, true);
  assert.equal(poller.latest(1)?.deviceOn, true);
  assert.equal(readings.length, 3);
  assert.equal(emus[0]!.counters.handshake1, 1, 'the toggle reused the polling session');
  await assert.rejects(poller.setOn(99, true), DeviceRegistryError);
});

test('registry changes are picked up: an added plug is polled, a removed one forgotten', async (t) => {
  const { poller, registry } = await setup(t, [{ powerCurve: () => 1 }]);
  await poller.pollOnce({ force: true });
  const extra = new TapoPlugEmulator({ ...CREDS, powerCurve: () => 33 });
  await extra.start();
  t.after(() => extra.stop());
  const added = await registry.add({ host: '127.0.0.1', port: extra.port });
  poller.refresh();
  await poller.pollOnce();
  assert.equal(poller.latest(added.id)?.powerW, 33);
  await registry.remove(1);
  poller.refresh();
  assert.equal(poller.latest(1), undefined);
  assert.equal(poller.pollState(1), undefined);
  assert.deepEqual(poller.latestAll().map((r) => r.deviceId), [added.id]);
});

test('start(): the timer loop reads every plug repeatedly; stop() ends it and closes the sessions', async (t) => {
  const { poller, readings } = await setup(t, [{ powerCurve: () => 1 }, { powerCurve: () => 2 }], { intervalMs: 50 });
  const enough = new Promise<void>((resolve) => {
    const check = setInterval(() => {
      const n1 = readings.filter((r) => r.deviceId === 1).length;
      const n2 = readings.filter((r) => r.deviceId === 2).length;
      if (n1 >= 3 && n2 >= 3) {
        clearInterval(check);
        resolve();
      }
    }, 5);
  });
  poller.start();
  await enough;
  await poller.stop();
  assert.equal(poller.pollState(1), undefined);
  await assert.rejects(poller.setOn(1, true), DeviceRegistryError);
});
