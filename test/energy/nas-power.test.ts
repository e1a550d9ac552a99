import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { NasPowerTracker, NasPowerError, type NasPowerChange } from '../../src/energy/nas-power.ts';
import { reading, rng, gaussian } from './series-testbed.ts';

function feed(tr: NasPowerTracker, watts: number[], t0 = 0): NasPowerChange[] {
  const changes: NasPowerChange[] = [];
  watts.forEach((w, i) => {
    const c = tr.update(reading(9, t0 + i * 30_000, w));
    if (c) changes.push(c);
  });
  return changes;
}

describe('NAS power state', () => {
  test('bands are contiguous: every wattage has exactly one state, boundaries belong to the upper band', () => {
    const tr = new NasPowerTracker();
    const at = (w: number) => tr.classify(w);
    assert.deepEqual([at(0), at(1.999), at(2), at(14.999), at(15), at(29.9), at(59.999), at(60), at(500)],
      ['off', 'off', 'standby', 'standby', 'idle', 'idle', 'idle', 'active', 'active']);
    // The Python version's 15–30 W hole: here idle throughout.
    for (let w = 15; w < 30; w += 0.01) assert.equal(at(w), 'idle', `${w} W`);
    let prev = 0;
    for (let w = 0; w <= 200; w += 0.01) {
      const level = ['off', 'standby', 'idle', 'active'].indexOf(at(w));
      assert.ok(level >= prev, `state goes down at ${w} W`);
      prev = level;
    }
  });

  test('no flapping: a signal oscillating around the idle/active boundary never changes state', () => {
    const tr = new NasPowerTracker();
    tr.update(reading(9, 0, 45));
    assert.equal(tr.state, 'idle');
    const changes: NasPowerChange[] = [];
    tr.on('change', (c) => changes.push(c));
    const rand = rng(11);
    // ±5 W of noise around 60 W stays inside the 6 W margin; ±9 W alternating crosses it but never 3 times in a row.
    const inside = Array.from({ length: 1000 }, () => 60 + Math.max(-5.9, Math.min(5.9, gaussian(rand) * 3)));
    const alternating = Array.from({ length: 1000 }, (_, i) => (i % 3 === 2 ? 51 : 69));
    assert.deepEqual(feed(tr, inside, 30_000), []);
    assert.deepEqual(feed(tr, alternating, 1e8), []);
    assert.equal(tr.state, 'idle');
    assert.deepEqual(changes, []);
  });

  test('a sustained change needs 3 consecutive readings; since is the first of them; an event is emitted', () => {
    const tr = new NasPowerTracker();
    const events: NasPowerChange[] = [];
    tr.on('change', (c) => events.push(c));
    feed(tr, [45]); // first reading: idle at once
    const t0 = 1_000_000;
    assert.equal(tr.update(reading(9, t0, 70)), null);
    assert.equal(tr.update(reading(9, t0 + 30_000, 71)), null);
    const c = tr.update(reading(9, t0 + 60_000, 72))!;
    assert.deepEqual([c.from, c.to, c.since, c.at], ['idle', 'active', t0, t0 + 60_000]);
    assert.deepEqual([tr.state, tr.since], ['active', t0]);
    assert.match(tr.reason, /72 W for 3 readings → active/);
    assert.deepEqual(events.map((e) => e.to), ['idle', 'active']);
    // Down from active needs < 54 W (60 − 6): 55 W keeps it active.
    assert.deepEqual(feed(tr, [55, 55, 55, 55], t0 + 1e6), []);
    assert.equal(feed(tr, [53, 53, 53], t0 + 2e6)[0]!.to, 'idle');
  });

  test('with no margin at the 15 W boundary noise would flap; with the default it does not', () => {
    const rand = rng(3);
    const noisy = Array.from({ length: 2000 }, () => 15 + gaussian(rand) * 0.8);
    const naive = new NasPowerTracker({ hysteresisFraction: 0, hysteresisMinW: 0, confirmSamples: 1 });
    const tuned = new NasPowerTracker();
    const naiveChanges = feed(naive, noisy).length;
    const tunedChanges = feed(tuned, noisy).length;
    assert.ok(naiveChanges > 100, `naive tracker changed ${naiveChanges} times (the signal must be hard)`);
    assert.ok(tunedChanges <= 1, `hysteresis tracker changed ${tunedChanges} times`);
  });

  test('plug switched off → off at once; unreachable → unknown; the first reading after unknown applies at once', () => {
    const tr = new NasPowerTracker();
    feed(tr, [80, 80]);
    assert.equal(tr.state, 'active');
    const off = tr.update(reading(9, 100_000, 0, { deviceOn: false }))!;
    assert.deepEqual([off.to, off.since], ['off', 100_000]);
    assert.match(off.reason, /switched off/);
    const unknown = tr.markUnknown(200_000)!;
    assert.deepEqual([unknown.to, tr.state, tr.powerW], ['unknown', 'unknown', null]);
    assert.equal(tr.update(reading(9, 300_000, 8))!.to, 'standby');
    assert.equal(tr.update(reading(9, 300_000, 80)), null, 'a stale reading (same time) is ignored');
    assert.deepEqual(tr.snapshot(), { state: 'standby', since: 300_000, reason: tr.reason, powerW: 8, lastReadingAt: 300_000 });
  });

  test('rejects thresholds out of order or margins that overlap', () => {
    assert.throws(() => new NasPowerTracker({ thresholds: { standbyBelowW: 80 } }), NasPowerError);
    assert.throws(() => new NasPowerTracker({ thresholds: { offBelowW: 0 } }), NasPowerError);
    assert.throws(() => new NasPowerTracker({ hysteresisMinW: 10 }), /overlap/);
  });
});
