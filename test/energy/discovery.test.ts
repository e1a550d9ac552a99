// Discovery only ever talks to a loopback responder here (the emulator's UDP port); the production broadcast
// address is a default of the daemon's configuration, never used by a test.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClassicLevel } from 'classic-level';
import { DISCOVERY_PROBE, discoverPlugs, parseDiscoveryAnswer } from '../../src/energy/discovery.ts';
import { DeviceRegistry } from '../../src/energy/device-registry.ts';
import { createTapoClient } from '../../src/energy/tapo-client.ts';
import { TapoPlugEmulator } from '../emulators/tapo-plug.ts';

const CREDS = { username: 'owner@example.org', password: 'pw' };

test('discovery against a loopback responder finds the plug, its MAC, model and HTTP port; the plug is then usable', async (t) => {
  const emu = new TapoPlugEmulator({ ...CREDS, model: 'P110', mac: '9C-53-22-AA-BB-CC', powerCurve: () => 3 });
  await emu.start();
  const udpPort = await emu.startDiscovery();
  t.after(() => emu.stop());

  const found = await discoverPlugs({ address: `127.0.0.1:${udpPort}`, timeoutMs: 400, probes: 2 });
  assert.equal(emu.counters.discoveryProbes, 2, 'both probes reached the responder');
  assert.deepEqual(found, [
    {
      host: '127.0.0.1',
      port: emu.port,
      mac: '9C:53:22:AA:BB:CC',
      model: 'P110(EU)',
      deviceType: 'SMART.TAPOPLUG',
      deviceId: found[0]?.deviceId ?? null,
      encryptType: 'KLAP',
    },
  ], 'two answers from one plug are one result');

  const dir = await mkdtemp(join(tmpdir(), 'balupi-discovery-'));
  const db = new ClassicLevel<string, string>(dir);
  t.after(async () => {
    await db.close();
    await rm(dir, { recursive: true, force: true });
  });
  const registry = new DeviceRegistry(db.sublevel('tapo-devices'));
  await registry.open();
  const { added } = await registry.applyDiscovery(found);
  assert.equal(added.length, 1);
  const client = createTapoClient(added[0]!, CREDS);
  t.after(() => client.close());
  assert.equal((await client.getReading()).powerW, 3);
});

test('the probe is the fixed 16-byte TP-Link SMART probe', () => {
  assert.equal(DISCOVERY_PROBE.length, 16);
  assert.equal(DISCOVERY_PROBE.toString('hex'), '020000010000000000000000463cb5d3');
});

test('answers that are not Tapo discovery answers are ignored, not thrown', () => {
  const header = Buffer.alloc(16);
  header[0] = 2;
  const json = (o: unknown) => Buffer.concat([header, Buffer.from(JSON.stringify(o))]);
  assert.equal(parseDiscoveryAnswer(Buffer.from([2, 0, 0]), '127.0.0.1'), null, 'short datagram');
  assert.equal(parseDiscoveryAnswer(Buffer.concat([header, Buffer.from('{not json')]), '127.0.0.1'), null, 'broken JSON');
  assert.equal(parseDiscoveryAnswer(json({ result: { device_type: 'IOT.SMARTPLUGSWITCH' } }), '127.0.0.1'), null, 'not SMART');
  assert.equal(parseDiscoveryAnswer(json({ error_code: 0 }), '127.0.0.1'), null, 'no result');
  const wrongVersion = json({ result: { device_type: 'SMART.TAPOPLUG' } });
  wrongVersion[0] = 1;
  assert.equal(parseDiscoveryAnswer(wrongVersion, '127.0.0.1'), null, 'header version 1');
  const minimal = parseDiscoveryAnswer(json({ result: { device_type: 'SMART.TAPOPLUG', mgt_encrypt_schm: { http_port: 99999 } } }), '127.0.0.9');
  assert.deepEqual(minimal, { host: '127.0.0.9', port: 80, mac: null, model: null, deviceType: 'SMART.TAPOPLUG', deviceId: null, encryptType: null });
});
