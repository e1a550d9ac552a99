// The NAS state machine on its own: every combination of prior state × reachability × plug power has the outcome
// written in the table below (the same table as README.md), deadlines, the power-rise rule, handshakes, wakes,
// consistent evidence, the bounded history and the persisted document.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NasMachine, NAS_STATES, type NasMachineDoc, type NasState, type PowerLevel } from '../../src/nas/state-machine.ts';

const T0 = Date.UTC(2026, 0, 15, 12);
const POWER: PowerLevel[] = ['off', 'standby', 'idle', 'active', 'unknown'];
type Reach = 'up' | 'down' | 'doubt' | 'none';

function docIn(state: NasState, at = T0): NasMachineDoc {
  return {
    v: 1, state, since: at - 60_000, reason: 'test', version: null,
    bootDeadline: state === 'booting' ? at + 100_000 : null,
    settleDeadline: state === 'shutting_down' ? at + 100_000 : null,
    quietUntil: null, lastWake: null, bootDurationsMs: [], history: [],
  };
}

/** Puts a machine in `state`, then gives it the evidence for `reach` and `power` at T0. */
function run(state: NasState, reach: Reach, power: PowerLevel): NasState {
  const m = new NasMachine({}, docIn(state), T0);
  m.apply({ kind: 'sources', at: T0, health: reach !== 'none', link: false });
  // From unknown, so this is a first reading, not a rise.
  m.apply({ kind: 'power', at: T0, level: power, watts: power === 'unknown' ? null : { off: 0.4, standby: 8, idle: 45, active: 90 }[power] });
  if (reach === 'up') m.apply({ kind: 'health', at: T0, ok: true, version: '1.38.0' });
  if (reach === 'down') for (let i = 0; i < 3; i++) m.apply({ kind: 'health', at: T0 + i, ok: false, error: 'ECONNREFUSED' });
  if (reach === 'doubt') m.apply({ kind: 'health', at: T0, ok: false, error: 'ECONNREFUSED' });
  return m.state;
}

// Expected state after the evidence, per prior state, for power off / standby / idle / active / unknown.
type Row = [NasState, NasState, NasState, NasState, NasState];
const TABLE: Record<Reach, Record<NasState, Row>> = {
  up: Object.fromEntries(NAS_STATES.map((s) => [s, ['online', 'online', 'online', 'online', 'online']])) as Record<NasState, Row>,
  down: {
    unknown: ['offline', 'standby', 'offline', 'offline', 'offline'],
    offline: ['offline', 'standby', 'offline', 'offline', 'offline'],
    standby: ['offline', 'standby', 'standby', 'standby', 'standby'],
    booting: ['booting', 'booting', 'booting', 'booting', 'booting'],
    online: ['offline', 'standby', 'shutting_down', 'shutting_down', 'offline'],
    shutting_down: ['offline', 'standby', 'shutting_down', 'shutting_down', 'shutting_down'],
  },
  doubt: {
    unknown: ['unknown', 'unknown', 'unknown', 'unknown', 'unknown'],
    offline: ['offline', 'offline', 'offline', 'offline', 'offline'],
    standby: ['standby', 'standby', 'standby', 'standby', 'standby'],
    booting: ['booting', 'booting', 'booting', 'booting', 'booting'],
    online: ['online', 'online', 'online', 'online', 'online'],
    shutting_down: ['offline', 'standby', 'shutting_down', 'shutting_down', 'shutting_down'],
  },
  none: {
    unknown: ['offline', 'standby', 'online', 'online', 'unknown'],
    offline: ['offline', 'standby', 'online', 'online', 'offline'],
    standby: ['offline', 'standby', 'online', 'online', 'standby'],
    booting: ['booting', 'booting', 'booting', 'booting', 'booting'],
    online: ['offline', 'standby', 'online', 'online', 'online'],
    shutting_down: ['offline', 'standby', 'shutting_down', 'shutting_down', 'shutting_down'],
  },
};

test('every prior state × reachability (up/down/doubt/none) × plug power has the outcome of the table (120 cases)', () => {
  let n = 0;
  for (const reach of ['up', 'down', 'doubt', 'none'] as Reach[]) {
    for (const s of NAS_STATES) {
      POWER.forEach((p, i) => {
        assert.equal(run(s, reach, p), TABLE[reach][s][i], `${s} + health ${reach} + power ${p}`);
        n++;
      });
    }
  }
  assert.equal(n, 120);
});

test('the 15–30 W band the Python version ignored has an outcome: online + BaluHost silent at 22 W → shutting_down', () => {
  const m = new NasMachine({}, docIn('online'), T0);
  m.apply({ kind: 'sources', at: T0, health: true, link: false });
  m.apply({ kind: 'power', at: T0, level: 'idle', watts: 22 });
  for (let i = 0; i < 3; i++) m.apply({ kind: 'health', at: T0 + i, ok: false, error: 'timeout' });
  assert.equal(m.state, 'shutting_down');
  assert.match(m.reason, /22\.0 W/);
});

test('down needs consistent evidence: two failed probes leave online, the third decides, one answer resets the count', () => {
  const m = new NasMachine({}, docIn('online'), T0);
  m.apply({ kind: 'sources', at: T0, health: true, link: false });
  m.apply({ kind: 'health', at: T0, ok: false, error: 'ECONNRESET' });
  m.apply({ kind: 'health', at: T0 + 5000, ok: false, error: 'ECONNRESET' });
  assert.equal(m.state, 'online');
  assert.equal(m.wantsFastPolling(), true, 'a failure waiting for confirmation asks for fast polls');
  m.apply({ kind: 'health', at: T0 + 10_000, ok: true, version: null });
  m.apply({ kind: 'health', at: T0 + 15_000, ok: false, error: 'x' });
  m.apply({ kind: 'health', at: T0 + 20_000, ok: false, error: 'x' });
  assert.equal(m.state, 'online', 'the count restarted after the answer');
  m.apply({ kind: 'health', at: T0 + 25_000, ok: false, error: 'x' });
  assert.equal(m.state, 'offline');
  assert.equal(m.history().length, 1);
});

test('booting ends at the deadline: back to offline (or standby by the plug) with the wake recorded as failed', () => {
  for (const [power, expected] of [['off', 'offline'], ['standby', 'standby'], ['idle', 'offline'], ['unknown', 'offline']] as const) {
    const m = new NasMachine({ bootTimeoutMs: 180_000 }, docIn('offline'), T0);
    m.apply({ kind: 'sources', at: T0, health: true, link: false });
    if (power !== 'unknown') m.apply({ kind: 'power', at: T0, level: power, watts: 1 });
    m.apply({ kind: 'wake', at: T0, reason: 'cache miss', by: 'cache' });
    assert.equal(m.state, 'booting');
    assert.equal(m.bootDeadline, T0 + 180_000);
    for (let i = 1; i <= 10; i++) m.apply({ kind: 'health', at: T0 + i * 5000, ok: false, error: 'ECONNREFUSED' });
    assert.equal(m.state, 'booting', 'failed probes while booting are expected');
    m.apply({ kind: 'tick', at: T0 + 179_999 });
    assert.equal(m.state, 'booting');
    const r = m.apply({ kind: 'tick', at: T0 + 180_000 });
    assert.equal(m.state, expected, power);
    assert.equal(r.transition?.cause, 'timeout');
    assert.equal(m.lastWake?.outcome, 'failed');
    assert.match(m.lastWake!.detail!, /within 180 s/);
  }
});

test('a wake that comes up records the boot time, which becomes the estimate', () => {
  const m = new NasMachine({}, docIn('standby'), T0);
  m.apply({ kind: 'sources', at: T0, health: true, link: false });
  m.apply({ kind: 'wake', at: T0, reason: 'r', by: 'u' });
  m.apply({ kind: 'health', at: T0 + 42_000, ok: true, version: '1.38.0' });
  assert.equal(m.state, 'online');
  assert.deepEqual([m.lastWake?.outcome, m.lastWake?.finishedAt], ['online', T0 + 42_000]);
  assert.equal(m.typicalBootMs(), 42_000);
  assert.equal(m.version, '1.38.0');
});

test('a wake from unknown goes to booting (the Python version stayed unknown); a wake while online changes nothing', () => {
  const m = new NasMachine({}, null, T0);
  m.apply({ kind: 'wake', at: T0, reason: 'r', by: 'u' });
  assert.equal(m.state, 'booting');
  const up = new NasMachine({}, docIn('online'), T0);
  const r = up.apply({ kind: 'wake', at: T0, reason: 'r', by: 'u' });
  assert.equal(up.state, 'online');
  assert.equal(r.transition, null);
  assert.equal(up.lastWake?.outcome, 'online');
});

test('shutting_down settles: power off → offline, standby → standby, still drawing at the deadline → offline "crashed"', () => {
  const mk = () => {
    const m = new NasMachine({ settleTimeoutMs: 180_000 }, docIn('online'), T0);
    m.apply({ kind: 'sources', at: T0, health: true, link: false });
    m.apply({ kind: 'power', at: T0, level: 'idle', watts: 45 });
    for (let i = 0; i < 3; i++) m.apply({ kind: 'health', at: T0 + i, ok: false, error: 'ECONNREFUSED' });
    assert.equal(m.state, 'shutting_down');
    return m;
  };
  const a = mk();
  a.apply({ kind: 'power', at: T0 + 60_000, level: 'off', watts: 0.8 });
  assert.equal(a.state, 'offline');
  const b = mk();
  b.apply({ kind: 'power', at: T0 + 60_000, level: 'standby', watts: 8 });
  assert.equal(b.state, 'standby');
  const c = mk();
  c.apply({ kind: 'tick', at: T0 + 2 + 179_999 });
  assert.equal(c.state, 'shutting_down');
  c.apply({ kind: 'tick', at: T0 + 2 + 180_000 });
  assert.equal(c.state, 'offline');
  assert.match(c.reason, /crashed or hung/);
  assert.match(c.reason, /45\.0 W/);
});

test('power rising from off/standby while BaluHost is silent → booting; a first reading after unknown is not a rise', () => {
  for (const from of ['off', 'standby'] as const) {
    const m = new NasMachine({}, docIn(from === 'off' ? 'offline' : 'standby'), T0);
    m.apply({ kind: 'sources', at: T0, health: true, link: false });
    m.apply({ kind: 'power', at: T0, level: from, watts: 1 });
    for (let i = 0; i < 3; i++) m.apply({ kind: 'health', at: T0 + i, ok: false, error: 'x' });
    const r = m.apply({ kind: 'power', at: T0 + 90_000, level: 'idle', watts: 40 });
    assert.equal(m.state, 'booting', from);
    assert.equal(r.transition?.cause, 'power');
    assert.equal(m.bootDeadline, T0 + 90_000 + 180_000);
  }
  const restarted = new NasMachine({}, docIn('offline'), T0);
  restarted.apply({ kind: 'sources', at: T0, health: true, link: false });
  restarted.apply({ kind: 'power', at: T0, level: 'idle', watts: 45 });
  for (let i = 0; i < 3; i++) restarted.apply({ kind: 'health', at: T0 + i, ok: false, error: 'x' });
  assert.equal(restarted.state, 'offline', 'a crashed NAS at 45 W seen after a Pi restart is not "booting"');
});

test('going-offline → offline at once; health answers during the next 60 s are not believed; coming-online is', () => {
  const m = new NasMachine({ quietAfterOfflineMs: 60_000 }, docIn('online'), T0);
  m.apply({ kind: 'sources', at: T0, health: true, link: false });
  m.apply({ kind: 'health', at: T0, ok: true, version: null });
  const off = m.apply({ kind: 'handshake', at: T0 + 1000, event: 'going-offline' });
  assert.equal(off.transition?.cause, 'handshake');
  assert.equal(m.state, 'offline');
  m.apply({ kind: 'health', at: T0 + 2000, ok: true, version: null });
  assert.equal(m.state, 'offline', 'the HTTP server answering while BaluHost stops does not flip the state back');
  m.apply({ kind: 'health', at: T0 + 61_000, ok: true, version: null });
  assert.equal(m.state, 'online', 'after the window an answer counts again');

  const n = new NasMachine({}, docIn('online'), T0);
  n.apply({ kind: 'handshake', at: T0, event: 'going-offline' });
  n.apply({ kind: 'handshake', at: T0 + 5000, event: 'coming-online' });
  assert.equal(n.state, 'online');
  assert.equal(n.history()[0]?.reason, 'BaluHost announced it is online (its backend started)');
});

test('the hub link alone makes online; its loss with BaluHost silent makes the NAS go down', () => {
  const m = new NasMachine({}, docIn('offline'), T0);
  m.apply({ kind: 'sources', at: T0, health: false, link: true });
  m.apply({ kind: 'link', at: T0, connected: true });
  assert.equal(m.state, 'online');
  assert.equal(m.reason, 'hub peer link connected');
  m.apply({ kind: 'link', at: T0 + 1, connected: false });
  assert.equal(m.state, 'offline');
});

test('history is bounded, newest first; the document survives a round trip; a corrupt document starts fresh', () => {
  const m = new NasMachine({ maxHistory: 5 }, null, T0);
  m.apply({ kind: 'sources', at: T0, health: true, link: false });
  for (let i = 0; i < 10; i++) {
    m.apply({ kind: 'health', at: T0 + i * 10, ok: true, version: null });
    m.apply({ kind: 'handshake', at: T0 + i * 10 + 1, event: 'going-offline' });
    m.apply({ kind: 'handshake', at: T0 + i * 10 + 2, event: 'coming-online' });
  }
  const h = m.history();
  assert.equal(h.length, 5);
  assert.ok(h[0]!.at > h[4]!.at, 'newest first');
  const doc = JSON.parse(JSON.stringify(m.toDoc()));
  const again = new NasMachine({ maxHistory: 5 }, doc, T0 + 999_999);
  assert.deepEqual([again.state, again.since, again.reason, again.history()], [m.state, m.since, m.reason, m.history()]);
  for (const bad of [{ ...doc, state: 'sleeping' }, { ...doc, v: 2 }, { ...doc, since: 'yesterday' }, { ...doc, history: null }]) {
    const fresh = new NasMachine({}, bad as NasMachineDoc, T0);
    assert.equal(fresh.state, 'unknown', JSON.stringify(bad).slice(0, 60));
  }
});
