// The emulator is only worth its tests if it behaves like a plug: checked here against tp-link-tapo-connect's own,
// independently written KLAP client, and for its energy counters against hand-computed integrals.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loginDeviceByIp } from 'tp-link-tapo-connect/dist/klap-transport.js';
import { TapoPlugEmulator } from '../emulators/tapo-plug.ts';
import { crc32 } from '../emulators/tapo-discovery-frame.ts';
import { createTapoClient } from '../../src/energy/tapo-client.ts';
import { clock } from './plug-client-conformance.ts';

const CREDS = { username: 'owner@example.org', password: 'pw' };

test('tp-link-tapo-connect (independent KLAP client) logs in, reads and switches the emulated plug', async (t) => {
  const emu = new TapoPlugEmulator({ ...CREDS, model: 'P110', nickname: 'Küche', powerCurve: () => 12.5 });
  await emu.start();
  t.after(() => emu.stop());
  const dev = await loginDeviceByIp(CREDS.username, CREDS.password, emu.address);
  const info = await dev.getDeviceInfo();
  assert.equal(info.nickname, 'Küche', 'the library decodes the base64 nickname the emulator sends');
  assert.equal(info.model, 'P110');
  const usage = (await dev.getEnergyUsage()) as unknown as Record<string, unknown>;
  assert.equal(usage.current_power, 12_500, 'get_energy_usage.current_power is in mW');
  await dev.turnOff();
  assert.equal(emu.deviceOn, false);
  assert.equal(emu.counters.handshake1, 1);
  await assert.rejects(loginDeviceByIp(CREDS.username, 'wrong', emu.address), /incorrect/);
});

test('today_energy integrates the curve and resets at the plug-local midnight; month_energy at the 1st', async (t) => {
  // Plug local time is UTC+60 min. Start 2026-01-31 21:00 UTC = 22:00 local, 100 W constant.
  const c = clock(Date.UTC(2026, 0, 31, 21, 0, 0));
  const emu = new TapoPlugEmulator({ ...CREDS, timeDiffMin: 60, powerCurve: () => 100, now: c.now });
  await emu.start();
  t.after(() => emu.stop());
  const cl = createTapoClient({ host: '127.0.0.1', port: emu.port }, CREDS, { now: c.now });
  t.after(() => cl.close());

  c.advance(90 * 60_000); // 22:00 → 23:30 local: 150 Wh
  let r = await cl.getReading();
  assert.equal(r.todayWh, 150);
  assert.equal(r.monthWh, 150);

  c.advance(60 * 60_000); // → 00:30 local on Feb 1st: day and month restart, 50 Wh since midnight
  r = await cl.getReading();
  assert.equal(r.todayWh, 50);
  assert.equal(r.monthWh, 50);

  c.advance(24 * 60 * 60_000); // → Feb 2nd 00:30: today restarts, month keeps counting
  r = await cl.getReading();
  assert.equal(r.todayWh, 50);
  assert.equal(r.monthWh, 2450);
});

test('energy follows a varying curve and stops while the relay is off', async (t) => {
  const start = Date.UTC(2026, 5, 10, 8, 0, 0);
  const c = clock(start);
  // 0 W for the first hour, 200 W for the second.
  const emu = new TapoPlugEmulator({ ...CREDS, timeDiffMin: 0, powerCurve: (ms) => (ms - start < 3_600_000 ? 0 : 200), now: c.now });
  await emu.start();
  t.after(() => emu.stop());
  const cl = createTapoClient({ host: '127.0.0.1', port: emu.port }, CREDS, { now: c.now });
  t.after(() => cl.close());
  c.advance(2 * 3_600_000);
  assert.equal((await cl.getReading()).todayWh, 200);
  await cl.setOn(false);
  c.advance(3_600_000);
  const r = await cl.getReading();
  assert.equal(r.todayWh, 200, 'no energy while off');
  assert.equal(r.powerW, 0);
});

test('discovery answer: 16-byte header with payload length and CRC32, JSON naming model, MAC and the HTTP port', async (t) => {
  const emu = new TapoPlugEmulator({ ...CREDS, model: 'P115', mac: 'A8-42-A1-00-00-01' });
  await emu.start();
  t.after(() => emu.stop());
  const frame = emu.discoveryReply();
  assert.equal(frame[0], 2);
  assert.equal(frame.readUInt16BE(4), frame.length - 16);
  assert.equal(crc32(Buffer.from('123456789')), 0xcbf43926, 'the standard CRC-32 check value');
  const unsealed = Buffer.from(frame);
  unsealed.writeUInt32BE(0x5a6b7c8d, 12);
  assert.equal(frame.readUInt32BE(12), crc32(unsealed));
  const json = JSON.parse(frame.subarray(16).toString('utf8'));
  assert.equal(json.result.device_type, 'SMART.TAPOPLUG');
  assert.equal(json.result.device_model, 'P115(EU)');
  assert.equal(json.result.mac, 'A8-42-A1-00-00-01');
  assert.equal(json.result.mgt_encrypt_schm.http_port, emu.port);
  assert.equal(json.result.mgt_encrypt_schm.encrypt_type, 'KLAP');
});
