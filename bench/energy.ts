// Energy series benchmark: one year of 30 s samples for 3 plugs (~3.15 M samples) through EnergySeries.append
// (fsync'd group commits, hour blocks, rollups), against a key-per-sample LevelDB layout (u32 device | u64 BE time
// → 8-byte value, the anchor's 15.9 B/sample layout) written alongside in the same run.
//
// Prints: bytes per sample on disk after compaction, write rate, and p50/p99 latency of a 1-day raw query and a
// 1-year hourly query, each with the baseline and the ratio.
// Run: npx node bench/energy.ts [--days 365]

import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ClassicLevel } from 'classic-level';
import { EnergySeries } from '../src/energy/series.ts';
import { Calendar } from '../src/energy/calendar.ts';
import { seriesKey, KIND } from '../src/energy/series-keys.ts';
import { encodeRollup, decodeRollup } from '../src/energy/rollup.ts';
import type { PlugReading } from '../src/energy/types.ts';

const TZ = 'Europe/Berlin';
const INTERVAL = 30_000;
const DEVICES = [1, 2, 3];
const daysArg = process.argv.indexOf('--days');
const DAYS = daysArg > 0 ? Number(process.argv[daysArg + 1]) : 365;
const cal = new Calendar(TZ);
const START = cal.localToInstant(2025, 11, 1); // covers the March and October DST changes
const END = START + DAYS * 86_400_000;
const SPAN = DAYS === 365 ? '1-year' : `${DAYS}-day`;

// ---- deterministic signal -------------------------------------------------------------------------------------

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rand = rng(2026);
const gauss = (): number => Math.sqrt(-2 * Math.log(rand() || 1e-12)) * Math.cos(2 * Math.PI * rand());

interface PlugSim { todayWh: number; monthWh: number; day: number; month: number; nasLevel: number }
const sims = new Map<number, PlugSim>(DEVICES.map((d) => [d, { todayWh: 0, monthWh: 0, day: -1, month: -1, nasLevel: 45 }]));

/** Realistic-ish loads: a NAS (standby/idle/active), a desk PC + monitor, a fridge compressor cycle. */
function power(dev: number, at: number, hour: number): number {
  const sim = sims.get(dev)!;
  if (dev === 1) {
    if (rand() < 0.002) sim.nasLevel = hour >= 1 && hour < 7 ? 6 : rand() < 0.3 ? 85 : 45;
    return sim.nasLevel * (1 + 0.03 * gauss());
  }
  if (dev === 2) return (hour >= 9 && hour < 12) || (hour >= 19 && hour < 23) ? 25 + gauss() : 0.4 + 0.02 * gauss();
  const phase = (at / 60_000) % 40;
  return phase < 12 ? 85 + 2 * gauss() : 1.2 + 0.05 * gauss();
}

function reading(dev: number, tick: number): PlugReading | null {
  if (rand() < 0.002) return null; // a missed poll
  const at = tick * INTERVAL + dev * 997 + Math.round(gauss() * 15);
  const p = cal.parts(at);
  const sim = sims.get(dev)!;
  if (p.day !== sim.day) { sim.day = p.day; sim.todayWh = 0; }
  if (p.month !== sim.month) { sim.month = p.month; sim.monthWh = 0; }
  const w = Math.max(0, Math.round(power(dev, at, p.hour) * 1000) / 1000);
  const wh = (w * INTERVAL) / 3_600_000;
  sim.todayWh += wh;
  sim.monthWh += wh;
  return {
    deviceId: dev, at, powerW: w, voltageV: null, currentA: null,
    todayWh: Math.floor(sim.todayWh), monthWh: Math.floor(sim.monthWh), deviceOn: true,
  };
}

// ---- helpers ----------------------------------------------------------------------------------------------------

async function dirBytes(dir: string): Promise<number> {
  let total = 0;
  for (const name of await fs.readdir(dir)) total += (await fs.stat(path.join(dir, name))).size;
  return total;
}

function kpsKey(dev: number, at: number): Uint8Array {
  const k = new Uint8Array(12);
  const v = new DataView(k.buffer);
  v.setUint32(0, dev);
  v.setUint32(4, Math.floor(at / 2 ** 32));
  v.setUint32(8, at % 2 ** 32);
  return k;
}

/** Key-per-hour layout in the baseline db: 0xff | device | hour start (kept apart from the per-sample keys). */
function hourKey(dev: number, t: number): Uint8Array {
  const k = new Uint8Array(13);
  k[0] = 0xff;
  k.set(kpsKey(dev, t), 1);
  return k;
}

function kpsValue(r: PlugReading): Uint8Array {
  const b = new Uint8Array(8);
  const v = new DataView(b.buffer);
  v.setUint32(0, Math.round(r.powerW * 1000));
  v.setUint32(4, r.todayWh ?? 0);
  return b;
}

async function latency(runs: number, fn: (i: number) => Promise<unknown>): Promise<{ p50: number; p99: number }> {
  for (let i = 0; i < 5; i++) await fn(i); // warm-up (JIT, block cache)
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await fn(i);
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  const q = (p: number) => times[Math.min(times.length - 1, Math.floor(p * times.length))]!;
  return { p50: q(0.5), p99: q(0.99) };
}

const fmt = (n: number, d = 2) => n.toFixed(d);

// ---- run --------------------------------------------------------------------------------------------------------

const loadAtStart = os.loadavg().map((l) => l.toFixed(1)).join(' ');
const root = await fs.mkdtemp(path.join(os.tmpdir(), 'balupi-bench-energy-'));
const oursDir = path.join(root, 'series'), kpsDir = path.join(root, 'kps');
const ours = new ClassicLevel<string, string>(oursDir);
const kps = new ClassicLevel<Uint8Array, Uint8Array>(kpsDir, { keyEncoding: 'view', valueEncoding: 'view' });
await ours.open();
await kps.open();
const series = new EnergySeries(ours.sublevel('energy'), { timeZone: TZ, maintainEveryMs: 0, now: () => END });
await series.open();

console.log(`energy bench: ${DAYS} days × ${DEVICES.length} plugs at 30 s, zone ${TZ}, data in ${root}`);
let samples = 0, oursMs = 0, kpsMs = 0;
const ticksPerChunk = 120; // one hour of polls per group of concurrent appends
const firstTick = Math.ceil(START / INTERVAL), lastTick = Math.floor(END / INTERVAL);
for (let tick = firstTick; tick < lastTick; tick += ticksPerChunk) {
  const chunk: PlugReading[] = [];
  for (let t = tick; t < Math.min(lastTick, tick + ticksPerChunk); t++) {
    for (const d of DEVICES) { const r = reading(d, t); if (r) chunk.push(r); }
  }
  samples += chunk.length;
  let t0 = performance.now();
  await Promise.all(chunk.map((r) => series.append(r)));
  oursMs += performance.now() - t0;
  t0 = performance.now();
  // Same durability as ours: one fsync'd batch per group.
  await kps.batch(chunk.map((r) => ({ type: 'put' as const, key: kpsKey(r.deviceId, r.at), value: kpsValue(r) })), { sync: true } as never);
  kpsMs += performance.now() - t0;
}
console.log(`wrote ${samples} samples`);

// A key-per-hour rollup layout (8,760 keys per plug-year, the naive alternative to our day packs) for the
// hourly-query baseline, filled with our own hourly values so both answers are the same.
for (const dev of DEVICES) {
  const hours = await series.rollups(dev, 'hour', START, END);
  await kps.batch(hours.map((h) => ({
    type: 'put' as const, key: hourKey(dev, h.start),
    value: encodeRollup({ samples: h.samples, sumMw: Math.round((h.avgW ?? 0) * 1000 * h.samples), minMw: (h.minW ?? 0) * 1000,
      maxMw: (h.maxW ?? 0) * 1000, energyWh: h.energyWh, coveredMs: h.coveredMs, counterWh: h.counterWh }),
  })));
}

await series.compact();
await kps.compactRange(new Uint8Array(0), Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff));
const oursBytes = await dirBytes(oursDir), kpsBytes = await dirBytes(kpsDir);

// Queries: random (device, local day) pairs for raw; each device's whole year for hourly.
const qr = rng(7);
const days = Array.from({ length: 200 }, () => {
  const dev = DEVICES[Math.floor(qr() * DEVICES.length)]!;
  const day = cal.dayStart(START + Math.floor(qr() * (DAYS - 1)) * 86_400_000 + 43_200_000);
  return { dev, from: day, to: cal.dayEnd(day) };
});
let rawRows = 0;
const rawOurs = await latency(days.length, async (i) => {
  const q = days[i % days.length]!;
  rawRows = (await series.raw(q.dev, q.from, q.to)).length;
});
const rawKps = await latency(days.length, async (i) => {
  const q = days[i % days.length]!;
  const entries = await kps.iterator({ gte: kpsKey(q.dev, q.from), lt: kpsKey(q.dev, q.to) }).all();
  return entries.map(([k, v]) => {
    const kv = new DataView(k.buffer, k.byteOffset, 12), vv = new DataView(v.buffer, v.byteOffset, 8);
    return { at: kv.getUint32(4) * 2 ** 32 + kv.getUint32(8), powerW: vv.getUint32(0) / 1000, todayWh: vv.getUint32(4) };
  });
});
let hourRows = 0;
const hourOurs = await latency(200, async (i) => {
  hourRows = (await series.rollups(DEVICES[i % 3]!, 'hour', START, END)).length;
});
// Baseline: a plain range scan of exactly the same keys (our day packs), no decoding, no open-hour merge.
const energyS = ours.sublevel('energy').sublevel<Uint8Array, Uint8Array>('s', { keyEncoding: 'view', valueEncoding: 'view' });
const hourScan = await latency(200, async (i) => {
  const dev = DEVICES[i % 3]!;
  return energyS.iterator({ gte: seriesKey(dev, KIND.hour, START), lt: seriesKey(dev, KIND.hour, END) }).all();
});
const hourPerKey = await latency(200, async (i) => {
  const dev = DEVICES[i % 3]!;
  const entries = await kps.iterator({ gte: hourKey(dev, START), lt: hourKey(dev, END) }).all();
  return entries.map(([, v]) => decodeRollup(v));
});
// For scale: the same hourly answer computed from key-per-sample rows (no rollups), 3 runs.
const hourFromKps = await latency(3, async (i) => {
  const dev = DEVICES[i % 3]!;
  const sums = new Map<number, number>();
  for await (const [k, v] of kps.iterator({ gte: kpsKey(dev, START), lt: kpsKey(dev, END) })) {
    const at = new DataView(k.buffer, k.byteOffset, 12).getUint32(8) + new DataView(k.buffer, k.byteOffset, 12).getUint32(4) * 2 ** 32;
    const h = at - (at % 3_600_000);
    sums.set(h, (sums.get(h) ?? 0) + new DataView(v.buffer, v.byteOffset, 8).getUint32(0));
  }
  return sums.size;
});

const t0 = performance.now();
await series.recompute(1, { from: START, to: END });
const recomputeMs = performance.now() - t0;

await series.close();
await ours.close();
await kps.close();
await fs.rm(root, { recursive: true, force: true });

const perSample = oursBytes / samples, kpsPerSample = kpsBytes / samples;
console.log('');
console.log('| metric | EnergySeries | key-per-sample baseline | ratio |');
console.log('|---|---|---|---|');
console.log(`| bytes per sample on disk (after compactRange, whole db dir) | ${fmt(perSample)} | ${fmt(kpsPerSample)} | ${fmt(kpsPerSample / perSample, 1)}× smaller |`);
console.log(`| write rate, samples/s (both: one fsync'd batch per hour of 3 plugs) | ${fmt(samples / (oursMs / 1000), 0)} | ${fmt(samples / (kpsMs / 1000), 0)} | ours/baseline ${fmt(kpsMs / oursMs, 2)} |`);
console.log(`| 1-day raw query (${rawRows} rows) p50 / p99 ms | ${fmt(rawOurs.p50)} / ${fmt(rawOurs.p99)} | ${fmt(rawKps.p50)} / ${fmt(rawKps.p99)} | baseline/ours p50 ${fmt(rawKps.p50 / rawOurs.p50)}, p99 ${fmt(rawKps.p99 / rawOurs.p99)} |`);
console.log(`| ${SPAN} hourly query (${hourRows} rows) p50 / p99 ms, vs a plain scan of the same keys (${DAYS + 1} day packs, no decode) | ${fmt(hourOurs.p50)} / ${fmt(hourOurs.p99)} | ${fmt(hourScan.p50)} / ${fmt(hourScan.p99)} | ours/scan p50 ${fmt(hourOurs.p50 / hourScan.p50)}, p99 ${fmt(hourOurs.p99 / hourScan.p99)} |`);
console.log(`| ${SPAN} hourly query p50 / p99 ms, vs a key-per-hour rollup layout (${hourRows} keys, scan + decode) | ${fmt(hourOurs.p50)} / ${fmt(hourOurs.p99)} | ${fmt(hourPerKey.p50)} / ${fmt(hourPerKey.p99)} | baseline/ours p50 ${fmt(hourPerKey.p50 / hourOurs.p50)}, p99 ${fmt(hourPerKey.p99 / hourOurs.p99)} |`);
console.log(`| ${SPAN} hourly from key-per-sample rows (no rollups) p50 ms | — | ${fmt(hourFromKps.p50, 0)} | ${fmt(hourFromKps.p50 / hourOurs.p50, 0)}× slower |`);
console.log(`| recompute ${SPAN} of rollups, one plug | ${fmt(recomputeMs / 1000, 1)} s | | |`);
console.log('');
console.log(`goals: ≤ 4 B/sample → ${perSample <= 4 ? 'met' : 'MISSED'} (${fmt(perSample)}); 1-year hourly p99 < 50 ms → ` +
  `${hourOurs.p99 < 50 ? 'met' : 'MISSED'} (${fmt(hourOurs.p99)} ms)`);
console.log(`rss ${fmt(process.memoryUsage().rss / 2 ** 20, 0)} MiB, node ${process.version}, ${os.cpus().length} × ${os.cpus()[0]?.model ?? '?'}, ` +
  `load average at start ${loadAtStart}, at end ${os.loadavg().map((l) => l.toFixed(1)).join(' ')} (other work on the machine inflates p99)`);
