import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  type RawSample, encodeBlock, decodeBlock, encodeSample, decodeSample, quantize, toReading, SampleCodecError,
} from '../../src/energy/sample-codec.ts';
import { reading, rng, gaussian } from './series-testbed.ts';

/** A random block exercising every column mode: nulls, mixtures, resets, jumps, extremes. */
function randomBlock(rand: () => number): RawSample[] {
  const n = 1 + Math.floor(rand() * 400);
  const colMode = (): 'null' | 'all' | 'mixed' => (['null', 'all', 'mixed'] as const)[Math.floor(rand() * 3)]!;
  const modes = { v: colMode(), c: colMode(), t: colMode(), m: colMode() };
  const pick = (mode: 'null' | 'all' | 'mixed', v: number): number | null =>
    mode === 'null' ? null : mode === 'all' ? v : rand() < 0.5 ? v : null;
  const jitter = rand() < 0.2 ? 0 : rand() * 2000;
  const powerKind = Math.floor(rand() * 4);
  let at = Math.floor(rand() * 2 ** 45);
  let today = Math.floor(rand() * 5000);
  const out: RawSample[] = [];
  for (let i = 0; i < n; i++) {
    at += 1 + Math.max(0, Math.round(30_000 + gaussian(rand) * jitter + (rand() < 0.02 ? rand() * 1e9 : 0)));
    if (rand() < 0.01) today = 0; else today += Math.floor(rand() * 3);
    const power = powerKind === 0 ? 45_000
      : powerKind === 1 ? Math.round(45_000 + gaussian(rand) * 2000)
      : powerKind === 2 ? (rand() < 0.5 ? 0 : 2_000_000)
      : Math.round((rand() - 0.5) * 2 ** 46);
    out.push({
      at,
      powerMw: power,
      voltageMv: pick(modes.v, 230_000 + Math.round(gaussian(rand) * 500)),
      currentMa: pick(modes.c, Math.round(rand() * 16_000)),
      todayWh: pick(modes.t, today),
      monthWh: pick(modes.m, today + 12_345 + (rand() < 0.02 ? -20_000 : 0)),
      deviceOn: rand() < 0.9,
    });
  }
  return out;
}

describe('sample codec', () => {
  test('round-trips 500 random blocks (nulls, resets, huge jumps, negative and extreme values) bit-exactly', () => {
    const rand = rng(20260329);
    for (let i = 0; i < 500; i++) {
      const block = randomBlock(rand);
      assert.deepEqual(decodeBlock(encodeBlock(block)), block, `block ${i} (${block.length} samples)`);
    }
  });

  test('round-trips single write-ahead samples, including negative values and all-null optionals', () => {
    const rand = rng(7);
    for (let i = 0; i < 2000; i++) {
      const s = randomBlock(rand)[0]!;
      assert.deepEqual(decodeSample(s.at, encodeSample(s)), s);
    }
  });

  test('a steady 30 s signal with jitter and noise costs < 3.5 bytes per sample before LevelDB', () => {
    const rand = rng(1);
    const samples: RawSample[] = [];
    let at = Date.UTC(2026, 0, 1), e = 0;
    for (let i = 0; i < 120; i++) {
      at += 30_000 + Math.round(gaussian(rand) * 20);
      const p = Math.round(45_000 + gaussian(rand) * 1500);
      e += (p * 30) / 3.6e6;
      samples.push({ at, powerMw: p, voltageMv: null, currentMa: null, todayWh: Math.floor(e), monthWh: Math.floor(e) + 900, deviceOn: true });
    }
    const bytes = encodeBlock(samples).length;
    assert.ok(bytes / 120 < 3.5, `${bytes / 120} B/sample`);
  });

  test('every truncation of a block is reported as ENERGY_CORRUPT_BLOCK, never decoded silently', () => {
    const block = randomBlock(rng(3)).slice(0, 50);
    const bytes = encodeBlock(block);
    for (let len = 0; len < bytes.length; len++) {
      assert.throws(() => decodeBlock(bytes.subarray(0, len)),
        (e: unknown) => e instanceof SampleCodecError && e.code === 'ENERGY_CORRUPT_BLOCK', `length ${len}`);
    }
    // A damaged header claiming two billion samples is rejected before anything is allocated.
    assert.throws(() => decodeBlock(Uint8Array.of(1, 0xff, 0xff, 0xff, 0xff, 0xff)), { code: 'ENERGY_CORRUPT_BLOCK' });
    const wrongVersion = Uint8Array.from(bytes);
    wrongVersion[0] = 99;
    assert.throws(() => decodeBlock(wrongVersion), { code: 'ENERGY_CORRUPT_BLOCK' });
    assert.throws(() => decodeSample(0, Uint8Array.of(99, 0, 0)), { code: 'ENERGY_CORRUPT_SAMPLE' });
  });

  test('quantizes to the plug units (mW, mV, mA, Wh) and rejects NaN, infinities, fractional or negative times', () => {
    const s = quantize(reading(1, 1000, 45.1234, { voltageV: 230.0004, currentA: 0.1956, todayWh: 12.4, monthWh: 99.6 }));
    assert.deepEqual(s, { at: 1000, powerMw: 45123, voltageMv: 230000, currentMa: 196, todayWh: 12, monthWh: 100, deviceOn: true });
    assert.deepEqual(toReading(1, s), reading(1, 1000, 45.123, { voltageV: 230, currentA: 0.196, todayWh: 12, monthWh: 100 }));
    for (const bad of [
      reading(1, 1000, Number.NaN),
      reading(1, 1000, Number.POSITIVE_INFINITY),
      reading(1, 1000.5, 1),
      reading(1, -1, 1),
      reading(1, 1000, 1, { todayWh: Number.NaN }),
      reading(1, 1000, 1e15),
    ]) {
      assert.throws(() => quantize(bad), (e: unknown) => e instanceof SampleCodecError && e.code === 'ENERGY_BAD_SAMPLE');
    }
    assert.throws(() => encodeBlock([]), { code: 'ENERGY_BAD_SAMPLE' });
  });
});
