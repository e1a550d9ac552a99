// ensureNasAvailable and the manual Wake-on-LAN against the BaluHost stand-in: packets go to a UDP listener on
// 127.0.0.1 and are checked byte for byte; concurrent callers share one wake; refusals say why; a boot that never
// answers is sent back with a recorded failure.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { magicPacket } from '../../src/nas/wol.ts';
import { NasUnavailableError, WakeRefusedError } from '../../src/nas/wake.ts';
import { testbed, path, until, MAC } from './testbed.ts';

/** A NAS asleep at 8 W, BaluHost silent. */
async function asleep(opts: Parameters<typeof testbed>[0] = {}) {
  const tb = await testbed(opts);
  await tb.emu.goDown();
  await tb.run(4, 8);
  assert.equal(tb.nas.state, 'standby');
  return tb;
}

test('concurrent ensureNasAvailable calls send one packet, with the right bytes, and all resolve when it is up', async () => {
  const tb = await asleep();
  try {
    const calls = Array.from({ length: 8 }, (_, i) => tb.nas.ensureNasAvailable(`cache miss ${i}`));
    const packet = await tb.wol.next();
    assert.deepEqual(packet, magicPacket(MAC));
    assert.equal(packet.length, 102);
    await until(tb.nas, 'booting');
    assert.equal(tb.nas.status().last_wake?.reason, 'cache miss 0');
    assert.equal(tb.nas.status().last_wake?.outcome, 'pending');
    // Booting: polled every 5 s; BaluHost answers after 40 s.
    await tb.clock.advance(35_000);
    assert.equal(tb.nas.state, 'booting');
    await tb.emu.comeBack();
    await tb.clock.advance(5_000);
    const results = await Promise.all(calls);
    assert.ok(results.every((r) => r.woke && r.waitedMs === 40_000), JSON.stringify(results[0]));
    assert.equal(tb.wolSends, 1);
    assert.deepEqual(await tb.wol.drain(), [packet], 'exactly one datagram reached the listener');
    assert.equal(tb.nas.state, 'online');
    assert.equal(tb.nas.status().last_wake?.outcome, 'online');
    // A later call while online returns at once, with no packet.
    assert.deepEqual(await tb.nas.ensureNasAvailable('another miss'), { woke: false, waitedMs: 0 });
    assert.equal(tb.wolSends, 1);
  } finally {
    await tb.close();
  }
});

test('a boot that never answers goes back to standby at the deadline; the callers get boot_failed and the failure is recorded', async () => {
  const tb = await asleep({ bootTimeoutMs: 180_000 });
  try {
    const a = tb.nas.ensureNasAvailable('thumbnail');
    const b = tb.nas.ensureNasAvailable('download');
    await until(tb.nas, 'booting');
    await tb.clock.advance(179_000);
    assert.equal(tb.nas.state, 'booting');
    await tb.clock.advance(1_000);
    for (const p of [a, b]) {
      await assert.rejects(p, (e: unknown) => e instanceof NasUnavailableError && e.code === 'nas_unavailable' && e.reason === 'boot_failed' && /within 180 s/.test(e.message));
    }
    assert.equal(tb.nas.state, 'standby');
    const s = tb.nas.status();
    assert.equal(s.last_wake?.outcome, 'failed');
    assert.match(s.last_wake!.detail!, /no answer from BaluHost within 180 s of booting \(plug 8\.0 W\)/);
    assert.deepEqual(path(tb.nas).slice(-2), ['booting', 'standby']);
    assert.equal(tb.nas.history()[0]!.cause, 'timeout');
    // The next call wakes again: a failed boot does not block later attempts.
    const again = tb.nas.ensureNasAvailable('retry');
    await tb.wol.next();
    await until(tb.nas, 'booting');
    await tb.emu.comeBack();
    await tb.clock.advance(5_000);
    assert.equal((await again).woke, true);
    assert.equal(tb.wolSends, 2);
  } finally {
    await tb.close();
  }
});

test('refusals: no MAC, plug switched off, powered but unresponsive; each names the reason and sends nothing', async () => {
  const noMac = await asleep({ nasMac: null });
  try {
    await assert.rejects(noMac.nas.ensureNasAvailable('x'), (e: unknown) => e instanceof NasUnavailableError && e.reason === 'not_configured' && /BALUPI_NAS_MAC/.test(e.message));
    await assert.rejects(noMac.nas.wake('alice'), (e: unknown) => e instanceof WakeRefusedError && e.code === 'wake_refused' && e.message === 'NAS MAC address not configured (set BALUPI_NAS_MAC)');
    assert.equal(noMac.wolSends, 0);
  } finally {
    await noMac.close();
  }

  const tb = await asleep();
  try {
    // The plug's relay is switched off: no power at all.
    await tb.clock.advance(30_000);
    tb.plug(0, false);
    await tb.nas.idle();
    assert.equal(tb.nas.status().power_state, 'off');
    await assert.rejects(tb.nas.ensureNasAvailable('x'), (e: unknown) => e instanceof NasUnavailableError && e.reason === 'no_power');
    await assert.rejects(tb.nas.wake('alice'), (e: unknown) => e instanceof WakeRefusedError && e.message === 'NAS has no power (plug off?). Turn on the smart plug first.');
    // Crashed: 45 W, BaluHost silent past the deadline → offline; waking cannot help.
    await tb.run(3, 45);
    assert.equal(tb.nas.state, 'booting', 'power came back on: the NAS is starting');
    await tb.clock.advance(180_000);
    assert.equal(tb.nas.state, 'offline');
    assert.match(tb.nas.status().reason, /no answer from BaluHost within 180 s of booting \(plug 45\.0 W\)/);
    await assert.rejects(tb.nas.ensureNasAvailable('x'), (e: unknown) => e instanceof NasUnavailableError && e.reason === 'unresponsive' && /45\.0 W/.test(e.message));
    await assert.rejects(tb.nas.wake('alice'), (e: unknown) => e instanceof WakeRefusedError && e.reason === 'unresponsive');
    assert.equal(tb.wolSends, 0);

    // Off but drawing 1.2 W through its network card (S5 with Wake-on-LAN armed): still wakeable.
    await tb.run(3, 1.2);
    assert.equal(tb.nas.status().power_state, 'off');
    assert.equal((await tb.nas.wake('alice')).wol_sent, true);
    assert.deepEqual(await tb.wol.next(), magicPacket(MAC));
  } finally {
    await tb.close();
  }
});

test('manual wake: BaluHost-shaped answer, then "already booting"; online refuses; an ensure during booting waits without a packet', async () => {
  const tb = await asleep();
  try {
    const res = await tb.nas.wake('alice');
    assert.deepEqual(res, { wol_sent: true, nas_previous_state: 'standby', estimated_boot_time_s: 60 });
    assert.deepEqual(await tb.wol.next(), magicPacket(MAC));
    await assert.rejects(tb.nas.wake('alice'), (e: unknown) => e instanceof WakeRefusedError && e.reason === 'already_booting' && e.message === 'NAS is already booting');
    const waiting = tb.nas.ensureNasAvailable('miss during boot');
    await tb.nas.idle(); // its "already up?" probe: refused, BaluHost is still down
    await tb.emu.comeBack();
    await tb.clock.advance(30_000);
    assert.deepEqual(await waiting, { woke: false, waitedMs: 5_000 }, 'joined the boot in progress; the next fast poll found it');
    assert.equal(tb.wolSends, 1);
    assert.equal(tb.nas.status().last_wake?.requested_by, 'alice');
    await assert.rejects(tb.nas.wake('alice'), (e: unknown) => e instanceof WakeRefusedError && e.message === 'NAS is already online');
    // The measured boot time becomes the estimate.
    await tb.emu.goDown();
    await tb.run(4, 8);
    assert.equal((await tb.nas.wake('bob')).estimated_boot_time_s, 5);
  } finally {
    await tb.close();
  }
});

test('"already up?" is asked live: a NAS that came back since the last poll is found without a wake', async () => {
  const tb = await asleep();
  try {
    await tb.emu.comeBack();
    assert.equal(tb.nas.state, 'standby', 'no poll has seen it yet');
    const r = await tb.nas.ensureNasAvailable('miss');
    assert.equal(r.woke, false);
    assert.equal(tb.nas.state, 'online');
    assert.equal(tb.wolSends, 0);
  } finally {
    await tb.close();
  }
});

test('one caller aborting ends only its own wait; a send failure is reported and leaves the state alone', async () => {
  const tb = await asleep();
  try {
    const ac = new AbortController();
    const quitter = tb.nas.ensureNasAvailable('impatient', { signal: ac.signal });
    const patient = tb.nas.ensureNasAvailable('patient');
    await tb.wol.next();
    await until(tb.nas, 'booting');
    ac.abort(new Error('client went away'));
    await assert.rejects(quitter, /client went away/);
    await tb.emu.comeBack();
    await tb.clock.advance(5_000);
    assert.equal((await patient).woke, true);
  } finally {
    await tb.close();
  }

  const broken = await asleep({ sendWol: async () => { throw new Error('ENETUNREACH'); } });
  try {
    await assert.rejects(broken.nas.ensureNasAvailable('x'), (e: unknown) => e instanceof NasUnavailableError && e.reason === 'wol_send_failed' && /ENETUNREACH/.test(e.message));
    assert.equal(broken.nas.state, 'standby');
  } finally {
    await broken.close();
  }
});
