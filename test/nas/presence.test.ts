// The NAS's life as the Pi sees it, against the BaluHost stand-in and a real NasPowerTracker: it goes down, comes
// back, crashes with the plug still drawing 45 W, sleeps at 8 W; the state follows each case, never flaps while the
// plug's power sits on a threshold, and polling never wakes a soft-sleeping NAS.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { testbed, path } from './testbed.ts';

test('goes down, comes back, crashes at 45 W, sleeps at 8 W: the state follows each case', async () => {
  const tb = await testbed();
  const { nas, emu } = tb;
  try {
    await tb.run(3, 45);
    assert.equal(nas.state, 'online');
    assert.equal(nas.status().version, '1.38.0');
    assert.equal(nas.status().power_state, 'idle');

    // Goes down: BaluHost's port refuses, then the plug shows the NAS off.
    await emu.goDown();
    let mark = nas.history().length;
    await tb.run(5, 0.8);
    assert.deepEqual(path(nas, mark), ['shutting_down', 'offline'], 'silent while still drawing power, then off');
    assert.match(nas.status().reason, /powered off \(plug 0\.8 W\)/);

    // Comes back: power rises (booting, polled every 5 s), then BaluHost answers.
    mark = nas.history().length;
    await tb.run(3, 45);
    assert.equal(nas.state, 'booting');
    assert.equal(nas.history()[0]!.cause, 'power');
    await emu.comeBack();
    await tb.clock.advance(5_000);
    assert.deepEqual(path(nas, mark), ['booting', 'online']);
    assert.equal(tb.wolSends, 0, 'it booted on its own: no Wake-on-LAN');

    // Crashes with the plug still drawing 45 W: shutting_down, then offline "crashed or hung" at the settle deadline.
    await emu.goDown();
    mark = nas.history().length;
    await tb.run(2, 45);
    assert.equal(nas.state, 'shutting_down');
    await tb.run(6, 45);
    assert.deepEqual(path(nas, mark), ['shutting_down', 'offline']);
    assert.match(nas.status().reason, /crashed or hung/);
    assert.match(nas.status().reason, /45\.0 W/);
    assert.equal(nas.status().power_w, 45);
    await tb.run(10, 45);
    assert.equal(nas.state, 'offline', 'stays offline while it keeps drawing 45 W without answering');

    // Restarted by hand: answers again.
    await emu.comeBack();
    await tb.run(1, 45);
    assert.equal(nas.state, 'online');

    // Sleeps at 8 W: a suspended host does not answer at all (probes time out), the plug drops to standby.
    emu.mode = 'hang';
    mark = nas.history().length;
    await tb.run(5, 8);
    assert.deepEqual(path(nas, mark), ['shutting_down', 'standby']);
    assert.match(nas.status().reason, /went to sleep \(plug 8\.0 W\)/);
    assert.match(nas.status().health.last_error!, /no answer within 250 ms/);

    // Every request the Pi made carried X-Sync-Trigger: auto.
    assert.ok(emu.requests.length >= 20, `${emu.requests.length} probes reached the server`);
    assert.deepEqual(new Set(emu.requests.map((r) => `${r.method} ${r.path} ${r.syncTrigger}`)), new Set(['GET /api/health auto']));
  } finally {
    await tb.close();
  }
});

test('power sitting on a threshold does not make the state flap (plug readings through a real NasPowerTracker)', async () => {
  const tb = await testbed();
  try {
    await tb.emu.goDown();
    await tb.run(4, 8);
    assert.equal(tb.nas.state, 'standby');
    const mark = tb.nas.history().length;
    let trackerChanges = 0;
    tb.tracker.on('change', () => trackerChanges++);
    // Around 15 W (standby/idle) within the tracker's margin, then across it but never three readings in a row,
    // then around 2 W (off/standby).
    const noise = [14.2, 15.9, 14.6, 16.1, 15.0, 14.9, 16.3, 13.8];
    for (let i = 0; i < 24; i++) await tb.run(1, noise[i % noise.length]!);
    for (let i = 0; i < 24; i++) await tb.run(1, i % 3 === 2 ? 13 : 17.5);
    for (let i = 0; i < 24; i++) await tb.run(1, i % 2 ? 1.6 : 2.4);
    assert.equal(trackerChanges, 0);
    assert.equal(tb.nas.history().length, mark, `no transitions: ${JSON.stringify(path(tb.nas, mark))}`);
    assert.equal(tb.nas.state, 'standby');

    // The same detector does move on consistent evidence: three readings at 17.5 W are a power-on.
    await tb.run(3, 17.5);
    assert.equal(tb.nas.state, 'booting');
  } finally {
    await tb.close();
  }
});

test('one lost probe does not take an online NAS offline; a probe failure is re-checked within seconds, not minutes', async () => {
  const tb = await testbed();
  try {
    await tb.run(1, 45);
    assert.equal(tb.nas.state, 'online');
    const before = tb.emu.requests.length;
    tb.emu.mode = 'error';
    await tb.clock.advance(30_000);
    assert.equal(tb.nas.status().health.consecutive_failures, 1);
    tb.emu.mode = 'up';
    await tb.clock.advance(5_000);
    assert.equal(tb.emu.requests.length, before + 2, 'the re-check came 5 s after the failure');
    assert.equal(tb.nas.state, 'online');
    assert.equal(tb.nas.history().length, 1, 'only the initial unknown → online');
  } finally {
    await tb.close();
  }
});

test('polling never wakes a soft-sleeping NAS: BaluHost\'s middleware sees X-Sync-Trigger on every probe', async () => {
  const tb = await testbed();
  try {
    tb.emu.sleepState = 'soft_sleep';
    await tb.run(20, 30);
    assert.equal(tb.nas.state, 'online', 'a soft-sleeping BaluHost still answers');
    assert.deepEqual(tb.emu.wakeups, []);
    assert.equal(tb.emu.sleepState, 'soft_sleep');
    // The emulator's model can fail this test: a request without the header wakes it.
    await fetch(`${tb.emu.url}/api/health`);
    assert.equal(tb.emu.wakeups.length, 1);
    assert.equal(tb.emu.sleepState, 'awake');
  } finally {
    await tb.close();
  }
});

test('transitions to online fire the "online" event the sync layer flushes on; other transitions do not', async () => {
  const tb = await testbed();
  try {
    const online: string[] = [];
    tb.nas.on('online', (e) => online.push(`${e.via}:${e.version}`));
    await tb.emu.goDown();
    await tb.run(3, 0.5);
    assert.deepEqual(online, []);
    await tb.emu.comeBack();
    await tb.clock.advance(30_000);
    assert.deepEqual(online, ['health:1.38.0']);
    tb.nas.comingOnline();
    assert.deepEqual(online, ['health:1.38.0', 'handshake:1.38.0'], 'BaluHost\'s coming-online call fires it even when already online');
  } finally {
    await tb.close();
  }
});
