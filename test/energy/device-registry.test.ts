import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClassicLevel } from 'classic-level';
import { DeviceRegistry, DeviceRegistryError } from '../../src/energy/device-registry.ts';
import type { PlugDeviceInfo } from '../../src/energy/plug-client.ts';

async function tempDb(t: import('node:test').TestContext) {
  const dir = await mkdtemp(join(tmpdir(), 'balupi-registry-'));
  let db = new ClassicLevel<string, string>(dir);
  t.after(async () => {
    await db.close();
    await rm(dir, { recursive: true, force: true });
  });
  return {
    async open() {
      const r = new DeviceRegistry(db.sublevel('tapo-devices'));
      await r.open();
      return r;
    },
    async reopen() {
      await db.close();
      db = new ClassicLevel<string, string>(dir);
      const r = new DeviceRegistry(db.sublevel('tapo-devices'));
      await r.open();
      return r;
    },
  };
}

const info = (over: Partial<PlugDeviceInfo> = {}): PlugDeviceInfo => ({
  deviceId: 'X',
  model: 'P110',
  firmware: '1.3.1 Build 240621 Rel.162048',
  hardware: '1.0',
  mac: '9C:53:22:00:00:01',
  nickname: 'NAS plug',
  deviceOn: true,
  onTimeS: 5,
  rssi: -40,
  ...over,
});

function registryError(code: DeviceRegistryError['code'], pattern?: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof DeviceRegistryError, `expected DeviceRegistryError, got ${String(err)}`);
    assert.equal(err.code, code);
    if (pattern) assert.match(err.message, pattern);
    return true;
  };
}

test('registry survives a reopen: seeded and added devices, edits and plug info keep their ids and values', async (t) => {
  const store = await tempDb(t);
  let r = await store.open();
  const seeded = await r.seed([{ host: '127.0.0.1', port: 8001 }, { host: '::1', port: 8002 }]);
  assert.deepEqual(seeded.map((d) => d.id), [1, 2]);
  const nas = await r.add({ host: 'nas-plug.lan', name: 'NAS', role: 'nas', maxPowerW: 150 });
  assert.equal(nas.port, 80);
  await r.update(1, { name: 'Desk', role: 'monitor' });
  await r.recordInfo(2, info({ nickname: 'Kühlschrank', mac: '9C:53:22:00:00:02' }));
  await r.recordPoll(2, { online: true, lastSeen: 1_000_000, lastError: null });
  const before = r.list();

  r = await store.reopen();
  const after = r.list();
  assert.deepEqual(
    after,
    before.map((d) => ({ ...d, online: false })),
    'everything but the online flag (which means "answered since start") survives',
  );
  assert.equal(after[0]?.name, 'Desk');
  assert.equal(after[1]?.name, 'Kühlschrank', 'the plug nickname names a device the operator did not name');
  assert.equal(after[1]?.model, 'P110');
  assert.equal(after[2]?.role, 'nas');
  assert.equal(r.nasDevice()?.id, 3);
  assert.deepEqual(await r.seed([{ host: '127.0.0.1', port: 8001 }]), [], 'seeding again adds nothing');
});

test('a second nas plug is rejected with a clear error, by add, by update and by two racing adds', async (t) => {
  const r = await (await tempDb(t)).open();
  await r.add({ host: '127.0.0.5', role: 'nas', name: 'NAS' });
  await assert.rejects(r.add({ host: '127.0.0.6', role: 'nas' }), registryError('NAS_ROLE_TAKEN', /device 1 \("NAS"\) already has role nas/));
  const other = await r.add({ host: '127.0.0.6' });
  await assert.rejects(r.update(other.id, { role: 'nas' }), registryError('NAS_ROLE_TAKEN'));
  await r.update(1, { role: 'nas' }); // re-asserting its own role is fine
  await r.update(1, { role: 'generic' });
  assert.equal((await r.update(other.id, { role: 'nas' })).role, 'nas');

  await r.update(other.id, { role: 'generic' });
  const results = await Promise.allSettled([r.add({ host: '127.0.0.7', role: 'nas' }), r.update(1, { role: 'nas' })]);
  assert.equal(results.filter((x) => x.status === 'fulfilled').length, 1, 'of two racing claims exactly one wins');
  assert.equal(r.list().filter((d) => d.role === 'nas').length, 1);
});

test('invalid input is refused: duplicate address, bad role, port, host, name, maxPowerW; unknown id', async (t) => {
  const r = await (await tempDb(t)).open();
  await r.add({ host: '127.0.0.5', port: 9999 });
  await assert.rejects(r.add({ host: '127.0.0.5:9999' }), registryError('DEVICE_EXISTS'));
  await assert.rejects(r.add({ host: '127.0.0.9', role: 'boss' as never }), registryError('DEVICE_INVALID', /nas, monitor, generic/));
  await assert.rejects(r.add({ host: '127.0.0.9', port: 70000 }), registryError('DEVICE_INVALID'));
  await assert.rejects(r.add({ host: 'http://127.0.0.9' }), registryError('DEVICE_INVALID', /scheme/));
  await assert.rejects(r.add({ host: '127.0.0.9', maxPowerW: -5 }), registryError('DEVICE_INVALID'));
  await assert.rejects(r.add({ host: '127.0.0.9', name: 'x'.repeat(65) }), registryError('DEVICE_INVALID'));
  await assert.rejects(r.update(42, { name: 'x' }), registryError('DEVICE_NOT_FOUND'));
  assert.equal(r.list().length, 1, 'no failed call left a device behind');
});

test('names: default "Tapo host:port", then the plug nickname, an operator name wins, clearing it falls back', async (t) => {
  const r = await (await tempDb(t)).open();
  const d = await r.add({ host: '::1', port: 8080 });
  assert.equal(d.name, 'Tapo [::1]:8080');
  assert.equal((await r.recordInfo(d.id, info({ nickname: 'Regal' })))?.name, 'Regal');
  assert.equal((await r.update(d.id, { name: '  Server rack ' })).name, 'Server rack');
  assert.equal((await r.update(d.id, { name: null })).name, 'Regal');
});

test('a removed plug stays removed although still configured; ids are never reused; re-adding brings it back', async (t) => {
  const store = await tempDb(t);
  let r = await store.open();
  await r.seed([{ host: '127.0.0.1', port: 80 }, { host: '127.0.0.2', port: 80 }]);
  assert.equal(await r.remove(1), true);
  assert.equal(await r.remove(1), false);
  r = await store.reopen();
  assert.deepEqual(await r.seed([{ host: '127.0.0.1', port: 80 }, { host: '127.0.0.2', port: 80 }]), []);
  assert.deepEqual(r.list().map((d) => d.id), [2]);
  const back = await r.add({ host: '127.0.0.1' });
  assert.equal(back.id, 3);
});

test('lastSeen alone is written at most every 5 minutes; status changes are written at once', async (t) => {
  const store = await tempDb(t);
  let r = await store.open();
  await r.add({ host: '127.0.0.1' });
  const t0 = 1_700_000_000_000;
  await r.recordPoll(1, { online: true, lastSeen: t0, lastError: null });
  await r.recordPoll(1, { online: true, lastSeen: t0 + 30_000, lastError: null });
  assert.equal(r.get(1)?.lastSeen, t0 + 30_000, 'memory is always current');
  r = await store.reopen();
  assert.equal(r.get(1)?.lastSeen, t0);
  await r.recordPoll(1, { online: true, lastSeen: t0 + 6 * 60_000, lastError: null });
  await r.recordPoll(1, { online: false, lastError: 'Plug 127.0.0.1:80 is unreachable (ECONNREFUSED)' });
  r = await store.reopen();
  assert.equal(r.get(1)?.lastSeen, t0 + 6 * 60_000);
  assert.match(r.get(1)?.lastError ?? '', /ECONNREFUSED/);
});

test('discovery results: a known MAC at a new address moves the device (no duplicate); new plugs are added', async (t) => {
  const r = await (await tempDb(t)).open();
  const d = await r.add({ host: '127.0.0.1', port: 8001 });
  await r.recordInfo(d.id, info({ mac: '9C:53:22:00:00:01' }));
  const plug = { model: 'P110(EU)', deviceType: 'SMART.TAPOPLUG', deviceId: 'A', encryptType: 'KLAP' as const };
  const { added, updated } = await r.applyDiscovery([
    { ...plug, host: '127.0.0.1', port: 8005, mac: '9C:53:22:00:00:01' },
    { ...plug, host: '127.0.0.1', port: 8006, mac: '9C:53:22:00:00:02' },
    { ...plug, host: '127.0.0.1', port: 8007, mac: '9C:53:22:00:00:03', deviceType: 'SMART.TAPOBULB' },
  ]);
  assert.deepEqual(updated.map((x) => [x.id, x.port]), [[1, 8005]]);
  assert.deepEqual(added.map((x) => [x.port, x.role, x.mac]), [[8006, 'generic', '9C:53:22:00:00:02']]);
  assert.equal(r.list().length, 2, 'the bulb is not a plug; the moved plug is not duplicated');
});
