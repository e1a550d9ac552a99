// Compact encoding of raw plug samples.
//
// A *block* holds one device's samples of one local hour (≈120 at 30 s). It is columnar and bit-packed:
//   - time: first instant, first delta, then delta-of-delta, all in ms (a steady 30 s poll with network jitter
//     costs ~6–8 bits per sample; a perfectly regular one 1 bit);
//   - power, voltage, current, today/month counters: first value, then deltas;
//   - deltas and delta-of-deltas are zigzag-mapped and Rice-coded with a per-column parameter k chosen for the
//     block (near-optimal for the Laplace-like noise of a power signal), with an escape for outliers (resets, jumps);
//   - month_energy is stored relative to today_energy (they rise together, so the difference is constant within a
//     local day and costs 1 bit per sample or nothing);
//   - nullable columns carry a 2-bit mode (all null / all present / all equal / mixed with a presence bitmap).
// Values are quantized to the plug's own units (mW, mV, mA, Wh), so encode/decode is lossless on that grid.
//
// A *single sample* encoding (byte-aligned varints) is used for the write-ahead entries of the open hour.

import type { PlugReading } from './types.ts';
import {
  BitWriter, BitReader, SampleCodecError, zig, unzig, bitLength, writeLen, readLen, writeRice, readRice,
} from './bit-stream.ts';

export { SampleCodecError };

/** A reading quantized to the plug's native integer units. */
export interface RawSample {
  at: number;
  powerMw: number;
  voltageMv: number | null;
  currentMa: number | null;
  todayWh: number | null;
  monthWh: number | null;
  deviceOn: boolean;
}


const LIMIT = 2 ** 46; // |value| bound: keeps zigzagged deltas of any two values below 2^53
const BLOCK_VERSION = 1;
const MAX_BLOCK_SAMPLES = 1 << 20;
const SAMPLE_VERSION = 1;

function q(value: number | null, scale: number, field: string): number | null {
  if (value === null) return null;
  const v = Math.round(value * scale);
  if (!Number.isFinite(v) || Math.abs(v) >= LIMIT) {
    throw new SampleCodecError('ENERGY_BAD_SAMPLE', `${field} out of range: ${value}`);
  }
  return v === 0 ? 0 : v; // no -0
}

/** Quantize a reading to mW / mV / mA / Wh. Throws ENERGY_BAD_SAMPLE on NaN, infinities or absurd values. */
export function quantize(r: PlugReading): RawSample {
  if (!Number.isSafeInteger(r.at) || r.at < 0 || r.at >= LIMIT) {
    throw new SampleCodecError('ENERGY_BAD_SAMPLE', `timestamp must be a non-negative integer ms, got ${r.at}`);
  }
  const powerMw = q(r.powerW, 1000, 'powerW');
  if (powerMw === null) throw new SampleCodecError('ENERGY_BAD_SAMPLE', 'powerW is required');
  return {
    at: r.at,
    powerMw,
    voltageMv: q(r.voltageV, 1000, 'voltageV'),
    currentMa: q(r.currentA, 1000, 'currentA'),
    todayWh: q(r.todayWh, 1, 'todayWh'),
    monthWh: q(r.monthWh, 1, 'monthWh'),
    deviceOn: r.deviceOn === true,
  };
}

export function toReading(deviceId: number, s: RawSample): PlugReading {
  return {
    deviceId,
    at: s.at,
    powerW: s.powerMw / 1000,
    voltageV: s.voltageMv === null ? null : s.voltageMv / 1000,
    currentA: s.currentMa === null ? null : s.currentMa / 1000,
    todayWh: s.todayWh,
    monthWh: s.monthWh,
    deviceOn: s.deviceOn,
  };
}

// ---- nullable integer columns ---------------------------------------------------------------------------------

const MODE_NULL = 0, MODE_ALL = 1, MODE_CONST = 2, MODE_MIXED = 3;

function writeColumn(w: BitWriter, col: readonly (number | null)[]): void {
  const present: number[] = [];
  for (const v of col) if (v !== null) present.push(v);
  const first = present[0];
  if (first === undefined) { w.write(MODE_NULL, 2); return; }
  const allPresent = present.length === col.length;
  if (allPresent && present.every((v) => v === first)) {
    w.write(MODE_CONST, 2);
    writeLen(w, first);
    return;
  }
  w.write(allPresent ? MODE_ALL : MODE_MIXED, 2);
  if (!allPresent) for (const v of col) w.writeBit(v !== null);
  writeLen(w, first);
  if (present.length > 1) {
    const deltas: number[] = [];
    for (let i = 1; i < present.length; i++) deltas.push(present[i]! - present[i - 1]!);
    writeRice(w, deltas);
  }
}

function readColumn(r: BitReader, n: number): (number | null)[] {
  const mode = r.read(2);
  if (mode === MODE_NULL) return new Array<number | null>(n).fill(null);
  if (mode === MODE_CONST) return new Array<number | null>(n).fill(readLen(r));
  const mask: boolean[] = [];
  if (mode === MODE_MIXED) for (let i = 0; i < n; i++) mask.push(r.readBit() === 1);
  const count = mode === MODE_ALL ? n : mask.filter(Boolean).length;
  const values: number[] = [readLen(r)];
  if (count > 1) {
    const deltas: number[] = [];
    readRice(r, count - 1, deltas);
    for (const d of deltas) values.push(values[values.length - 1]! + d);
  }
  if (mode === MODE_ALL) return values;
  const out: (number | null)[] = [];
  let j = 0;
  for (let i = 0; i < n; i++) out.push(mask[i] ? values[j++]! : null);
  return out;
}

// ---- blocks -------------------------------------------------------------------------------------------------

/** Encode samples (strictly increasing `at`, at least one) as one block. */
export function encodeBlock(samples: readonly RawSample[]): Uint8Array {
  const n = samples.length;
  if (n === 0 || n > MAX_BLOCK_SAMPLES) {
    throw new SampleCodecError('ENERGY_BAD_SAMPLE', `a block holds 1…${MAX_BLOCK_SAMPLES} samples, not ${n}`);
  }
  const w = new BitWriter();
  w.write(BLOCK_VERSION, 8);
  w.write(bitLength(n), 5);
  w.write(n, bitLength(n));
  const at0 = samples[0]!.at;
  writeLen(w, at0);
  if (n > 1) {
    const d1 = samples[1]!.at - at0;
    writeLen(w, d1);
    if (n > 2) {
      const dods: number[] = [];
      let prev = d1;
      for (let i = 2; i < n; i++) {
        const d = samples[i]!.at - samples[i - 1]!.at;
        dods.push(d - prev);
        prev = d;
      }
      writeRice(w, dods);
    }
  }
  writeColumn(w, samples.map((s) => s.powerMw));
  writeColumn(w, samples.map((s) => s.voltageMv));
  writeColumn(w, samples.map((s) => s.currentMa));
  writeColumn(w, samples.map((s) => s.todayWh));
  writeColumn(w, samples.map((s) => (s.monthWh === null ? null : s.monthWh - (s.todayWh ?? 0))));
  const on0 = samples[0]!.deviceOn;
  if (samples.every((s) => s.deviceOn === on0)) {
    w.writeBit(false);
    w.writeBit(on0);
  } else {
    w.writeBit(true);
    for (const s of samples) w.writeBit(s.deviceOn);
  }
  return w.finish();
}

export function decodeBlock(bytes: Uint8Array): RawSample[] {
  if (bytes[0] !== BLOCK_VERSION) {
    throw new SampleCodecError('ENERGY_CORRUPT_BLOCK', `unknown block version ${bytes[0]}`);
  }
  const r = new BitReader(bytes, 1);
  const n = r.read(r.read(5));
  // A block is one hour of one plug; a count beyond this is damage, not data (and must not allocate gigabytes).
  if (n === 0 || n > MAX_BLOCK_SAMPLES) throw new SampleCodecError('ENERGY_CORRUPT_BLOCK', `implausible sample count ${n}`);
  const at: number[] = [readLen(r)];
  if (n > 1) {
    let d = readLen(r);
    at.push(at[0]! + d);
    if (n > 2) {
      const dods: number[] = [];
      readRice(r, n - 2, dods);
      for (const dod of dods) {
        d += dod;
        at.push(at[at.length - 1]! + d);
      }
    }
  }
  const power = readColumn(r, n);
  const volt = readColumn(r, n);
  const curr = readColumn(r, n);
  const today = readColumn(r, n);
  const monthRel = readColumn(r, n);
  const mixedOn = r.readBit() === 1;
  const on0 = mixedOn ? false : r.readBit() === 1;
  const out: RawSample[] = [];
  for (let i = 0; i < n; i++) {
    const t = today[i] ?? null;
    const m = monthRel[i] ?? null;
    out.push({
      at: at[i]!,
      powerMw: power[i] ?? 0,
      voltageMv: volt[i] ?? null,
      currentMa: curr[i] ?? null,
      todayWh: t,
      monthWh: m === null ? null : m + (t ?? 0),
      deviceOn: mixedOn ? r.readBit() === 1 : on0,
    });
  }
  return out;
}

// ---- single samples (write-ahead entries) ---------------------------------------------------------------------

function pushVarint(out: number[], v: number): void {
  while (v >= 128) {
    out.push((v % 128) | 128);
    v = Math.floor(v / 128);
  }
  out.push(v);
}

function readVarint(bytes: Uint8Array, pos: { i: number }): number {
  let v = 0, mul = 1;
  for (;;) {
    const b = bytes[pos.i++];
    if (b === undefined) throw new SampleCodecError('ENERGY_CORRUPT_SAMPLE', 'sample truncated');
    v += (b & 127) * mul;
    if (b < 128) return v;
    mul *= 128;
  }
}

/** Encode a sample without its timestamp (the write-ahead key carries it). */
export function encodeSample(s: RawSample): Uint8Array {
  const out: number[] = [SAMPLE_VERSION];
  const opt = [s.voltageMv, s.currentMa, s.todayWh, s.monthWh];
  let flags = s.deviceOn ? 1 : 0;
  opt.forEach((v, i) => { if (v !== null) flags |= 2 << i; });
  out.push(flags);
  pushVarint(out, zig(s.powerMw));
  for (const v of opt) if (v !== null) pushVarint(out, zig(v));
  return Uint8Array.from(out);
}

export function decodeSample(at: number, bytes: Uint8Array): RawSample {
  if (bytes[0] !== SAMPLE_VERSION) {
    throw new SampleCodecError('ENERGY_CORRUPT_SAMPLE', `unknown sample version ${bytes[0]}`);
  }
  const pos = { i: 1 };
  const flags = bytes[pos.i++] ?? 0;
  const powerMw = unzig(readVarint(bytes, pos));
  const opt: (number | null)[] = [];
  for (let i = 0; i < 4; i++) opt.push(flags & (2 << i) ? unzig(readVarint(bytes, pos)) : null);
  return {
    at,
    powerMw,
    voltageMv: opt[0] ?? null,
    currentMa: opt[1] ?? null,
    todayWh: opt[2] ?? null,
    monthWh: opt[3] ?? null,
    deviceOn: (flags & 1) === 1,
  };
}
