// Hour / day / month aggregates of one device, and the energy integral they are built on.
//
// Energy integration: the trapezoid rule over consecutive samples (power assumed to move linearly between polls).
// Why trapezoid and not a step: the P110's current_power is an instantaneous reading, so between two polls we know
// nothing better than a straight line; for a load that switches at a random moment inside a poll interval the
// trapezoid is unbiased (the switch is on average mid-interval), whereas a forward step attributes every switch a
// full interval late. It is also the rule BaluHost uses, so the Pi's and the NAS's kWh agree.
// An interval longer than `maxGapMs` (default 3 poll intervals) is not bridged: it contributes no energy and no
// covered time (the plug was unreachable; we do not invent consumption). An interval crossing a bucket edge is split
// at the edge with the interpolated power, so hour energies add up exactly to the day's and month's.
//
// The plug's own counter (today_energy, Wh) is aggregated beside it as `counterWh` (see plug-counter.ts): counter
// increments are attributed to the bucket of the sample that observed them, whatever the gap before it.
//
// Rollups are pure functions of the raw samples (plus the neighbours just outside the bucket), so the incremental
// path and `recompute` share this code and produce byte-identical records.

import type { RawSample } from './sample-codec.ts';
import { counterDeltaWh, type DayClock } from './plug-counter.ts';

export type Resolution = 'hour' | 'day' | 'month';

/** The stored aggregate. Integer fields stay exact; energy is a float64 summed in a fixed (time) order. */
export interface RollupAcc {
  samples: number;
  /** Σ power over the samples, mW (exact integer). */
  sumMw: number;
  /** min / max power over the samples, mW; 0 when samples = 0. */
  minMw: number;
  maxMw: number;
  /** Integrated energy inside the bucket. */
  energyWh: number;
  /** Time inside the bucket bridged by the integral (≤ bucket length). */
  coveredMs: number;
  /** Energy from the plug's own counter, null when no sample carried today_energy. */
  counterWh: number | null;
}

/** A bucket as returned to callers. */
export interface Rollup {
  deviceId: number;
  resolution: Resolution;
  start: number;
  end: number;
  samples: number;
  /** Mean of the sampled power values (null without samples). */
  avgW: number | null;
  minW: number | null;
  maxW: number | null;
  energyWh: number;
  coveredMs: number;
  counterWh: number | null;
  /** True when the bucket includes the still-open hour (values will grow). */
  partial: boolean;
}

export interface IntegrationOptions {
  maxGapMs: number;
  /** Local days, for the counter's midnight reset. */
  clock: DayClock;
}

const MWMS_PER_WH = 3.6e9;

/**
 * Energy of the trapezoid between (t1,p1) and (t2,p2) restricted to [lo, hi), in mW·ms (exact integers when the
 * segment is not cut: summing in these units and converting once per bucket keeps rounding error minimal).
 */
export function segmentMwMs(t1: number, p1: number, t2: number, p2: number, lo: number, hi: number): number {
  const a = Math.max(t1, lo), b = Math.min(t2, hi);
  if (b <= a) return 0;
  if (a === t1 && b === t2) return ((p1 + p2) * (t2 - t1)) / 2;
  const slope = (p2 - p1) / (t2 - t1);
  const pa = a === t1 ? p1 : p1 + slope * (a - t1);
  const pb = b === t2 ? p2 : p1 + slope * (b - t1);
  return ((pa + pb) * (b - a)) / 2;
}

/**
 * Aggregate the samples of one bucket [start, end).
 * `samples` must be exactly the samples with start ≤ at < end, in time order; `prev` is the last sample before
 * `start` (any age: the counter needs it even across a long gap) and `next` the first sample at or after `end`.
 */
export function aggregateBucket(
  samples: readonly RawSample[],
  prev: RawSample | null,
  next: RawSample | null,
  start: number,
  end: number,
  opts: IntegrationOptions,
): RollupAcc {
  let sumMw = 0, minMw = 0, maxMw = 0, energy = 0, coveredMs = 0;
  let counterWh: number | null = null;
  let before = prev;
  for (let i = 0; i < samples.length; i++) {
    const s = samples[i]!;
    if (i === 0) { minMw = s.powerMw; maxMw = s.powerMw; }
    else {
      if (s.powerMw < minMw) minMw = s.powerMw;
      if (s.powerMw > maxMw) maxMw = s.powerMw;
    }
    sumMw += s.powerMw;
    if (before) {
      if (s.at - before.at <= opts.maxGapMs) {
        energy += segmentMwMs(before.at, before.powerMw, s.at, s.powerMw, start, end);
        coveredMs += Math.min(s.at, end) - Math.max(before.at, start);
      }
      const d = counterDeltaWh(before, s, opts.clock);
      if (d !== null) counterWh = (counterWh ?? 0) + d;
    }
    before = s;
  }
  const last = samples[samples.length - 1];
  if (last && next && next.at - last.at <= opts.maxGapMs) {
    energy += segmentMwMs(last.at, last.powerMw, next.at, next.powerMw, start, end);
    coveredMs += end - last.at;
  }
  return { samples: samples.length, sumMw, minMw, maxMw, energyWh: energy / MWMS_PER_WH, coveredMs, counterWh };
}

/** Combine finer buckets (in time order) into a coarser one. */
export function combine(parts: readonly RollupAcc[]): RollupAcc {
  let samples = 0, sumMw = 0, minMw = 0, maxMw = 0, energyWh = 0, coveredMs = 0;
  let counterWh: number | null = null;
  for (const p of parts) {
    if (p.samples > 0) {
      if (samples === 0) { minMw = p.minMw; maxMw = p.maxMw; }
      else {
        if (p.minMw < minMw) minMw = p.minMw;
        if (p.maxMw > maxMw) maxMw = p.maxMw;
      }
    }
    samples += p.samples;
    sumMw += p.sumMw;
    energyWh += p.energyWh;
    coveredMs += p.coveredMs;
    if (p.counterWh !== null) counterWh = (counterWh ?? 0) + p.counterWh;
  }
  return { samples, sumMw, minMw, maxMw, energyWh, coveredMs, counterWh };
}

export function isEmpty(a: RollupAcc): boolean {
  return a.samples === 0 && a.energyWh === 0 && a.coveredMs === 0 && a.counterWh === null;
}

export function toRollup(
  deviceId: number, resolution: Resolution, start: number, end: number, a: RollupAcc, partial: boolean,
): Rollup {
  const has = a.samples > 0;
  return {
    deviceId, resolution, start, end,
    samples: a.samples,
    avgW: has ? a.sumMw / a.samples / 1000 : null,
    minW: has ? a.minMw / 1000 : null,
    maxW: has ? a.maxMw / 1000 : null,
    energyWh: a.energyWh,
    coveredMs: a.coveredMs,
    counterWh: a.counterWh,
    partial,
  };
}

// ---- storage encoding: varints + one float64 --------------------------------------------------------------------

const ROLLUP_VERSION = 1;

function zig(v: number): number { return v >= 0 ? v * 2 : -v * 2 - 1; }
function unzig(z: number): number { return z % 2 === 0 ? z / 2 : -(z + 1) / 2; }

// Scratch space for reading the big-endian float without allocating a DataView per record.
const F64_BYTES = new Uint8Array(8);
const F64_VIEW = new DataView(F64_BYTES.buffer);

export function encodeRollup(a: RollupAcc): Uint8Array {
  const out: number[] = [ROLLUP_VERSION];
  const put = (v: number): void => {
    while (v >= 128) { out.push((v % 128) | 128); v = Math.floor(v / 128); }
    out.push(v);
  };
  put(a.samples);
  put(zig(a.sumMw));
  put(zig(a.minMw));
  put(zig(a.maxMw));
  put(a.coveredMs);
  put(a.counterWh === null ? 0 : zig(a.counterWh) + 1);
  const f = new Uint8Array(8);
  new DataView(f.buffer).setFloat64(0, a.energyWh);
  const bytes = new Uint8Array(out.length + 8);
  bytes.set(out);
  bytes.set(f, out.length);
  return bytes;
}

export class RollupCodecError extends Error {
  readonly code = 'ENERGY_CORRUPT_ROLLUP';
  constructor(message: string) {
    super(message);
    this.name = 'RollupCodecError';
  }
}

export function decodeRollup(bytes: Uint8Array): RollupAcc {
  if (bytes[0] !== ROLLUP_VERSION) throw new RollupCodecError(`unknown rollup version ${bytes[0]}`);
  let i = 1;
  const get = (): number => {
    let v = 0, mul = 1;
    for (;;) {
      const b = bytes[i++];
      if (b === undefined) throw new RollupCodecError('rollup truncated');
      v += (b & 127) * mul;
      if (b < 128) return v;
      mul *= 128;
    }
  };
  const samples = get();
  const sumMw = unzig(get());
  const minMw = unzig(get());
  const maxMw = unzig(get());
  const coveredMs = get();
  const c = get();
  if (bytes.length !== i + 8) throw new RollupCodecError('rollup has the wrong length');
  for (let k = 0; k < 8; k++) F64_BYTES[k] = bytes[i + k]!;
  const energyWh = F64_VIEW.getFloat64(0);
  return { samples, sumMw, minMw, maxMw, energyWh, coveredMs, counterWh: c === 0 ? null : unzig(c - 1) };
}

// ---- hour rollups are stored packed per local day (one key per device-day instead of 24) --------------------------
// A year of hourly values is then ~365 keys, which keeps the 1-year hourly query far below a per-hour key scan.

const PACK_VERSION = 1;

export function encodeHourPack(packStart: number, hours: ReadonlyArray<readonly [number, RollupAcc]>): Uint8Array {
  const parts: Uint8Array[] = [];
  const head: number[] = [PACK_VERSION];
  putVarint(head, hours.length);
  parts.push(Uint8Array.from(head));
  for (const [start, acc] of hours) {
    const h: number[] = [];
    putVarint(h, zig(start - packStart));
    const body = encodeRollup(acc);
    putVarint(h, body.length);
    parts.push(Uint8Array.from(h), body);
  }
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}

export function decodeHourPack(packStart: number, bytes: Uint8Array): Array<[number, RollupAcc]> {
  if (bytes[0] !== PACK_VERSION) throw new RollupCodecError(`unknown hour pack version ${bytes[0]}`);
  const pos = { i: 1 };
  const n = getVarint(bytes, pos);
  const out: Array<[number, RollupAcc]> = [];
  for (let k = 0; k < n; k++) {
    const start = packStart + unzig(getVarint(bytes, pos));
    const len = getVarint(bytes, pos);
    if (pos.i + len > bytes.length) throw new RollupCodecError('hour pack truncated');
    out.push([start, decodeRollup(bytes.subarray(pos.i, pos.i + len))]);
    pos.i += len;
  }
  return out;
}

function putVarint(out: number[], v: number): void {
  while (v >= 128) { out.push((v % 128) | 128); v = Math.floor(v / 128); }
  out.push(v);
}

function getVarint(bytes: Uint8Array, pos: { i: number }): number {
  let v = 0, mul = 1;
  for (;;) {
    const b = bytes[pos.i++];
    if (b === undefined) throw new RollupCodecError('hour pack truncated');
    v += (b & 127) * mul;
    if (b < 128) return v;
    mul *= 128;
  }
}

/** Sum per-device rollups of the same buckets into totals (power sums, energy sums; min/max are not additive). */
export interface TotalBucket {
  start: number;
  end: number;
  devices: number;
  /** Σ of the devices' mean power. */
  avgW: number | null;
  energyWh: number;
  counterWh: number | null;
  partial: boolean;
}

export function sumAcrossDevices(perDevice: readonly (readonly Rollup[])[]): TotalBucket[] {
  const byStart = new Map<number, TotalBucket>();
  for (const list of perDevice) {
    for (const r of list) {
      let b = byStart.get(r.start);
      if (!b) {
        b = { start: r.start, end: r.end, devices: 0, avgW: null, energyWh: 0, counterWh: null, partial: false };
        byStart.set(r.start, b);
      }
      b.devices++;
      if (r.avgW !== null) b.avgW = (b.avgW ?? 0) + r.avgW;
      b.energyWh += r.energyWh;
      if (r.counterWh !== null) b.counterWh = (b.counterWh ?? 0) + r.counterWh;
      b.partial ||= r.partial;
    }
  }
  return [...byStart.values()].sort((a, b) => a.start - b.start);
}
