// Conformance suite for PlugClient implementations, run against the loopback Tapo emulator (in the manner of
// abstract-level's shared compliance tests). Each implementation supplies a factory; every test names the plug
// behaviour it provokes and what the client must report.

import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { TapoPlugEmulator, type TapoPlugEmulatorOptions } from '../emulators/tapo-plug.ts';
import { PlugError, type PlugClient, type PlugCredentials } from '../../src/energy/plug-client.ts';

export interface ConformanceHarness {
  name: string;
  makeClient(
    device: { host: string; port: number },
    credentials: PlugCredentials,
    options: { now: () => number; timeoutMs?: number },
  ): PlugClient;
  /** Completed handshakes of a client, when the implementation exposes them. */
  handshakes?(client: PlugClient): number;
}

const CREDS: PlugCredentials = { username: 'owner@example.org', password: 'correct horse' };

export function clock(start = Date.UTC(2026, 0, 15, 10, 0, 0)) {
  let t = start;
  return {
    now: () => t,
    advance(ms: number) {
      t += ms;
    },
  };
}

async function plug(t: TestContext, options: Partial<TapoPlugEmulatorOptions>): Promise<TapoPlugEmulator> {
  const emu = new TapoPlugEmulator({ ...CREDS, ...options });
  await emu.start();
  t.after(() => emu.stop());
  return emu;
}

async function rejectsWith(p: Promise<unknown>, code: PlugError['code']): Promise<PlugError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof PlugError, `expected a PlugError, got ${String(err)}`);
    assert.equal(err.code, code, `expected ${code}, got ${err.code}: ${err.message}`);
    return err;
  }
  assert.fail(`expected the call to fail with ${code}`);
}

export function plugClientConformance(h: ConformanceHarness): void {
  const client = (t: TestContext, emu: TapoPlugEmulator, c: { now: () => number }, extra: Partial<{ creds: PlugCredentials; timeoutMs: number }> = {}) => {
    const cl = h.makeClient({ host: '127.0.0.1', port: emu.port }, extra.creds ?? CREDS, { now: c.now, timeoutMs: extra.timeoutMs });
    t.after(() => cl.close());
    return cl;
  };

  describe(`PlugClient conformance: ${h.name}`, () => {
    test('P110 with get_emeter_data: watts from power_mw, voltage and current present, counters in Wh', async (t) => {
      const c = clock();
      const emu = await plug(t, { model: 'P110', hasEmeterData: true, voltageV: 231.4, powerCurve: () => 55.5, now: c.now });
      const cl = client(t, emu, c);
      c.advance(90 * 60_000); // 1.5 h at 55.5 W = 83.25 Wh
      const r = await cl.getReading();
      assert.equal(r.powerW, 55.5);
      assert.equal(r.voltageV, 231.4);
      assert.equal(r.currentA, 0.24); // 55.5 W / 231.4 V = 0.2398 A, sent as 240 mA
      assert.equal(r.todayWh, 83);
      assert.equal(r.monthWh, 83);
      assert.equal(r.deviceOn, true);
      assert.equal(r.at, c.now());
    });

    test('P115 without get_emeter_data: watts from get_current_power (whole W) over energy_usage mW; no voltage/current', async (t) => {
      const c = clock();
      const emu = await plug(t, { model: 'P115', hasEmeterData: false, powerCurve: () => 8.962, now: c.now });
      const cl = client(t, emu, c);
      for (let i = 0; i < 2; i++) {
        const r = await cl.getReading();
        assert.equal(r.powerW, 9, 'get_current_power (9 W) takes precedence over get_energy_usage (8962 mW)');
        assert.equal(r.voltageV, null);
        assert.equal(r.currentA, null);
      }
      assert.equal(emu.counters.methods.get_emeter_data, 1, 'an unsupported method is asked once, then remembered');
    });

    test('old firmware without get_current_power nor get_emeter_data: watts = energy_usage.current_power mW / 1000', async (t) => {
      const c = clock();
      const emu = await plug(t, {
        model: 'P110',
        firmware: '1.0.7 Build 210629 Rel.174901',
        hasEmeterData: false,
        hasCurrentPower: false,
        missingMethodErrorCode: -1,
        powerCurve: () => 8.962,
        now: c.now,
      });
      const cl = client(t, emu, c);
      const first = await cl.getReading();
      const second = await cl.getReading();
      assert.equal(first.powerW, 8.962);
      assert.equal(second.powerW, 8.962);
      assert.equal(second.voltageV, null);
    });

    test('firmware without batched requests: the same reading through single requests, batching not retried', async (t) => {
      const c = clock();
      const emu = await plug(t, { model: 'P110', hasEmeterData: true, multipleRequest: false, powerCurve: () => 42, now: c.now });
      const cl = client(t, emu, c);
      const a = await cl.getReading();
      const b = await cl.getReading();
      assert.equal(a.powerW, 42);
      assert.equal(b.voltageV, 230);
      assert.equal(emu.counters.methods.multipleRequest, 1);
    });

    test('device info: base64 nickname decoded (UTF-8), model, firmware, MAC normalised', async (t) => {
      const c = clock();
      const emu = await plug(t, { model: 'P115', nickname: 'Büro-NAS ⚡', mac: 'A8-42-A1-0B-0C-0D', now: c.now });
      const info = await client(t, emu, c).getDeviceInfo();
      assert.equal(info.nickname, 'Büro-NAS ⚡');
      assert.equal(info.model, 'P115');
      assert.equal(info.firmware, emu.options.firmware);
      assert.equal(info.mac, 'A8:42:A1:0B:0C:0D');
      assert.equal(info.deviceOn, true);
    });

    test('wrong password: PLUG_AUTH naming the TP-Link account, no fallback to the legacy protocol, no retry loop', async (t) => {
      const c = clock();
      const emu = await plug(t, { now: c.now });
      const cl = client(t, emu, c, { creds: { username: CREDS.username, password: 'wrong' } });
      const err = await rejectsWith(cl.getReading(), 'PLUG_AUTH');
      assert.match(err.message, /credentials/);
      assert.match(err.message, /TP-Link account/);
      assert.equal(emu.counters.legacyHandshakes, 0);
      assert.equal(emu.counters.handshake1, 1);
      assert.equal(emu.counters.handshake2, 0, 'the client must not prove anything to a plug that failed to prove itself');
    });

    test('plug registered to another account (emulator rejects credentials): PLUG_AUTH', async (t) => {
      const c = clock();
      const emu = await plug(t, { now: c.now });
      emu.rejectCredentials = true;
      await rejectsWith(client(t, emu, c).getDeviceInfo(), 'PLUG_AUTH');
    });

    test('factory-reset plug (blank account): PLUG_AUTH that says so', async (t) => {
      const c = clock();
      const emu = new TapoPlugEmulator({ username: '', password: '', now: c.now });
      await emu.start();
      t.after(() => emu.stop());
      const err = await rejectsWith(client(t, emu, c).getReading(), 'PLUG_AUTH');
      assert.match(err.message, /reset/);
    });

    test('session reuse: six calls, one handshake', async (t) => {
      const c = clock();
      const emu = await plug(t, { powerCurve: () => 12, now: c.now });
      const cl = client(t, emu, c);
      await cl.getDeviceInfo();
      for (let i = 0; i < 5; i++) {
        c.advance(30_000);
        await cl.getReading();
      }
      assert.equal(emu.counters.handshake1, 1);
      assert.equal(emu.counters.requests, 6);
      if (h.handshakes) assert.equal(h.handshakes(cl), 1);
    });

    test('plug forgets the session (403): one re-handshake, the call still succeeds', async (t) => {
      const c = clock();
      const emu = await plug(t, { powerCurve: () => 20, now: c.now });
      const cl = client(t, emu, c);
      await cl.getReading();
      emu.expireSessions();
      const r = await cl.getReading();
      assert.equal(r.powerW, 20);
      assert.equal(emu.counters.forbidden, 1);
      assert.equal(emu.counters.handshake1, 2);
    });

    test('session TIMEOUT announced by the plug: renewed before it runs out, without a 403', async (t) => {
      const c = clock();
      const emu = await plug(t, { sessionTimeoutS: 3600, now: c.now });
      const cl = client(t, emu, c);
      await cl.getReading();
      c.advance(3590 * 1000);
      await cl.getReading();
      assert.equal(emu.counters.forbidden, 0);
      assert.equal(emu.counters.handshake1, 2);
    });

    test('toggle: off then on, reflected by the plug and the next reading', async (t) => {
      const c = clock();
      const emu = await plug(t, { powerCurve: () => 60, now: c.now });
      const cl = client(t, emu, c);
      await cl.setOn(false);
      assert.equal(emu.deviceOn, false);
      const off = await cl.getReading();
      assert.equal(off.deviceOn, false);
      assert.equal(off.powerW, 0);
      await cl.setOn(true);
      assert.equal(emu.deviceOn, true);
      assert.equal((await cl.getReading()).powerW, 60);
    });

    test('device error code: PLUG_DEVICE carrying the code; the next call works', async (t) => {
      const c = clock();
      const emu = await plug(t, { powerCurve: () => 5, now: c.now });
      const cl = client(t, emu, c);
      emu.failNext(1, -1001);
      const err = await rejectsWith(cl.getReading(), 'PLUG_DEVICE');
      assert.equal(err.deviceCode, -1001);
      assert.equal((await cl.getReading()).powerW, 5);
    });

    test('plug offline: PLUG_UNREACHABLE; back online (sessions forgotten): readings resume', async (t) => {
      const c = clock();
      const emu = await plug(t, { powerCurve: () => 7, now: c.now });
      const cl = client(t, emu, c);
      await cl.getReading();
      await emu.setOffline(true);
      await rejectsWith(cl.getReading(), 'PLUG_UNREACHABLE');
      await emu.setOffline(false);
      assert.equal((await cl.getReading()).powerW, 7);
    });

    test('plug that accepts but never answers: PLUG_TIMEOUT from the client deadline and from an abort signal', async (t) => {
      const c = clock();
      const emu = await plug(t, { now: c.now });
      const cl = client(t, emu, c, { timeoutMs: 300 });
      await cl.getReading();
      emu.setHanging(true);
      await rejectsWith(cl.getReading(), 'PLUG_TIMEOUT');
      const ac = new AbortController();
      const p = cl.getReading({ signal: ac.signal });
      ac.abort();
      await rejectsWith(p, 'PLUG_TIMEOUT');
      emu.setHanging(false);
    });

    test('closed client: PLUG_CLOSED', async (t) => {
      const c = clock();
      const emu = await plug(t, { now: c.now });
      const cl = client(t, emu, c);
      await cl.close();
      await rejectsWith(cl.getReading(), 'PLUG_CLOSED');
    });
  });
}
