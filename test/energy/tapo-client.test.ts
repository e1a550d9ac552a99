import { test } from 'node:test';
import assert from 'node:assert/strict';
import { plugClientConformance, clock } from './plug-client-conformance.ts';
import { TapoPlugClient, createTapoClient, decodeBase64Text, normaliseMac } from '../../src/energy/tapo-client.ts';
import { PlugError } from '../../src/energy/plug-client.ts';
import { TapoPlugEmulator } from '../emulators/tapo-plug.ts';

plugClientConformance({
  name: 'TapoPlugClient (KLAP) against the Tapo emulator',
  makeClient: (device, credentials, options) => createTapoClient(device, credentials, options),
  handshakes: (client) => (client as TapoPlugClient).handshakes,
});

test('plug without KLAP (404 on handshake1): falls back to the library legacy login, whose failure is reported', async (t) => {
  const c = clock();
  const emu = new TapoPlugEmulator({ username: 'u@x.org', password: 'p', klap: false, now: c.now });
  await emu.start();
  t.after(() => emu.stop());
  const cl = createTapoClient({ host: '127.0.0.1', port: emu.port }, { username: 'u@x.org', password: 'p' }, { now: c.now });
  t.after(() => cl.close());
  await assert.rejects(cl.getReading(), (err: unknown) => {
    assert.ok(err instanceof PlugError);
    assert.equal(err.code, 'PLUG_PROTOCOL');
    assert.match(err.message, /legacy/);
    return true;
  });
  assert.equal(emu.counters.legacyHandshakes, 1, 'the legacy handshake went to the plug, not elsewhere');
  assert.equal(emu.counters.handshake1, 0);
});

test('base64 nickname decoding keeps text that is not base64 as sent', () => {
  assert.equal(decodeBase64Text('I01BU0tFRF9OQU1FIw=='), '#MASKED_NAME#');
  assert.equal(decodeBase64Text('Wohnzimmer'), 'Wohnzimmer'); // not a multiple of 4: not base64
  assert.equal(decodeBase64Text('/w=='), '/w=='); // decodes to invalid UTF-8: keep
  assert.equal(decodeBase64Text(null), '');
});

test('MAC normalisation accepts dashes and colons, rejects garbage', () => {
  assert.equal(normaliseMac('9c-53-22-00-00-0a'), '9C:53:22:00:00:0A');
  assert.equal(normaliseMac('9C:53:22:00:00:0A'), '9C:53:22:00:00:0A');
  assert.equal(normaliseMac('9C-53-22'), null);
  assert.equal(normaliseMac(null), null);
});

test('firmware update on the plug: capabilities are learnt again (emeter appears after the update)', async (t) => {
  const c = clock();
  const emu = new TapoPlugEmulator({ username: 'u@x.org', password: 'p', model: 'P110', hasEmeterData: false, powerCurve: () => 30, now: c.now });
  await emu.start();
  t.after(() => emu.stop());
  const cl = createTapoClient({ host: '127.0.0.1', port: emu.port }, { username: 'u@x.org', password: 'p' }, { now: c.now });
  t.after(() => cl.close());
  assert.equal((await cl.getReading()).voltageV, null);
  assert.equal((await cl.getReading()).voltageV, null);
  emu.options.hasEmeterData = true;
  assert.notEqual(emu.options.firmware, '1.4.0 Build 250101 Rel.000000');
  emu.options.firmware = '1.4.0 Build 250101 Rel.000000';
  await cl.getReading(); // sees the new firmware in get_device_info
  const after = await cl.getReading();
  assert.equal(after.voltageV, 230);
  assert.equal(after.powerW, 30);
});

test('plug at an IPv6 address ([::1]:port): our client and the library both reach it', async (t) => {
  const emu = new TapoPlugEmulator({ username: 'u@x.org', password: 'p', host: '::1', powerCurve: () => 4 });
  await emu.start();
  t.after(() => emu.stop());
  assert.equal(emu.address, `[::1]:${emu.port}`);
  const cl = createTapoClient({ host: '::1', port: emu.port }, { username: 'u@x.org', password: 'p' });
  t.after(() => cl.close());
  assert.equal((await cl.getReading()).powerW, 4);
  assert.equal(cl.target, `[::1]:${emu.port}`);
  // The library builds http://${target}/app/...: the bracketed form is what its legacy fallback will be given.
  const { loginDeviceByIp } = await import('tp-link-tapo-connect/dist/klap-transport.js');
  assert.equal((await (await loginDeviceByIp('u@x.org', 'p', cl.target)).getDeviceInfo()).model, 'P110');
});
