// What survives a restart of the service on the same LevelDB: the state with its time and reason, the bounded
// history, the last wake, a boot deadline that ran out while the Pi was down, BaluHost's snapshot and the memory of
// accepted handshake signatures.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { baluhostCall, baluhostSnapshot, GOING_OFFLINE } from '../emulators/baluhost.ts';
import { testbed, until, SECRET } from './testbed.ts';

test('state, since, reason, history and the last wake survive a restart; the restart itself is not a transition', async () => {
  const tb = await testbed();
  try {
    await tb.run(2, 45);
    await tb.emu.goDown();
    await tb.run(5, 8);
    assert.equal(tb.nas.state, 'standby');
    await tb.nas.wake('alice');
    await until(tb.nas, 'booting');
    await tb.emu.comeBack();
    await tb.clock.advance(5_000);
    await tb.emu.goDown();
    await tb.run(5, 8);
    const before = tb.nas.status();
    const history = tb.nas.history();
    assert.equal(before.nas_state, 'standby');
    assert.ok(history.length >= 5);

    await tb.clock.advance(3_600_000); // the Pi was off for an hour
    await tb.restart();
    const after = tb.nas.status();
    assert.deepEqual(
      [after.nas_state, after.since, after.reason, after.version, after.last_wake],
      [before.nas_state, before.since, before.reason, before.version, before.last_wake],
    );
    assert.equal(after.last_wake?.outcome, 'online');
    assert.deepEqual(tb.nas.history(), history);
    assert.equal(tb.nas.status().health.consecutive_failures, 1, 'evidence starts afresh: one failed probe, not enough to change anything');
  } finally {
    await tb.close();
  }
});

test('a boot deadline that passed while the Pi was down is settled right after the restart, with the failure recorded', async () => {
  const tb = await testbed();
  try {
    await tb.emu.goDown();
    await tb.run(4, 8);
    await tb.nas.wake('alice');
    await until(tb.nas, 'booting');
    await tb.restart();
    assert.equal(tb.nas.state, 'booting', 'still inside the deadline');
    await tb.nas.stop();
    await tb.clock.advance(600_000);
    await tb.restart();
    await tb.clock.advance(0);
    assert.equal(tb.nas.state, 'standby');
    assert.equal(tb.nas.status().last_wake?.outcome, 'failed');
    assert.equal(tb.nas.history()[0]!.cause, 'timeout');
  } finally {
    await tb.close();
  }
});

test('BaluHost\'s snapshot and the accepted-signature memory survive a restart: the replay is still refused', async () => {
  const tb = await testbed();
  try {
    const call = baluhostCall(SECRET, GOING_OFFLINE, baluhostSnapshot(), { timestamp: Math.floor(tb.clock.now() / 1000) });
    const req = { method: call.method, path: call.path, timestamp: call.headers['x-balupi-timestamp'], signature: call.headers['x-balupi-signature'], body: call.body };
    assert.equal(tb.nas.verifyHandshake(req), 'python-canonical');
    await tb.nas.goingOffline(call.body);
    assert.equal(tb.nas.state, 'offline');
    await tb.clock.advance(10_000);
    await tb.restart();
    assert.throws(() => tb.nas.verifyHandshake(req), /Replayed request/);
    const snap = await tb.nas.snapshot();
    assert.equal((snap?.body as { system: { ram_total_gb: number } }).system.ram_total_gb, 16);
    assert.equal(snap?.receivedAt, tb.clock.now() - 10_000);
    assert.equal((await tb.nas.handshakeStatus()).last_snapshot, new Date(snap!.receivedAt).toISOString());
  } finally {
    await tb.close();
  }
});
