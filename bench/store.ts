// Storage engine benchmark: every figure is printed with a baseline measured in the same run.
//
//   npx node bench/store.ts            hashing, chunking, ingest vs plain copy, read-back vs raw read, many small files,
//                                      2 GiB peak RSS
//   npx node bench/store.ts --quick    the same without the 2 GiB file
//   npx node bench/store.ts --params   chunk-size sweep (how the FastCDC min/avg/max were chosen)
//   npx node bench/store.ts --rss      only the 2 GiB peak-RSS measurement
//   npx node bench/store.ts --small    only the many-small-files measurement
//
// Temp files go to $TMPDIR (or --dir DIR) and are removed afterwards. Not a test: nothing here asserts.

import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { PerformanceObserver, constants, monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Chunker, DEFAULT_CHUNK_PARAMS, blake3, fileSource, openStore } from '../store/index.ts';
import type { Blake3, ChunkParams, StoreOptions } from '../store/index.ts';
import { writeRandomFile } from '../test/helpers/random-file.ts';

const MiB = 1024 * 1024;
const args = process.argv.slice(2);
const flag = (name: string): boolean => args.includes(name);
const option = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const mbps = (bytes: number, ms: number): number => bytes / MiB / (ms / 1000);
const fmt = (x: number, d = 0): string => x.toFixed(d);

async function timed(fn: () => Promise<unknown> | unknown): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

async function drain(stream: AsyncIterable<unknown>): Promise<void> {
  for await (const _ of stream) void _;
}

function hashMBps(impl: Blake3, buf: Buffer, slice: number): number {
  const t = performance.now();
  const h = impl.create();
  for (let off = 0; off < buf.length; off += slice) h.update(buf.subarray(off, off + slice));
  h.digest();
  return mbps(buf.length, performance.now() - t);
}

function chunkerMBps(buf: Buffer, params: ChunkParams): { mbps: number; chunks: number } {
  const c = new Chunker(params);
  let chunks = 0;
  const t = performance.now();
  for (let off = 0; off < buf.length; off += MiB) chunks += c.push(buf.subarray(off, off + MiB)).length;
  if (c.finish() > 0) chunks += 1;
  return { mbps: mbps(buf.length, performance.now() - t), chunks };
}

async function section<T>(title: string, fn: () => Promise<T>): Promise<T> {
  console.log(`\n## ${title}`);
  return fn();
}

async function hashingAndChunking(): Promise<void> {
  const buf = randomBytes(256 * MiB);
  await section('BLAKE3 only (256 MiB in memory, best of 3 after a warm-up)', async () => {
    const rows: [string, number, number][] = [];
    for (const name of ['native', 'wasm'] as const) {
      const impl = blake3(name);
      hashMBps(impl, buf.subarray(0, 32 * MiB), MiB);
      const big = Math.max(...[0, 1, 2].map(() => hashMBps(impl, buf, MiB)));
      const small = Math.max(...[0, 1, 2].map(() => hashMBps(impl, buf, 256 * 1024)));
      rows.push([name, big, small]);
    }
    for (const [name, big, small] of rows) console.log(`${name.padEnd(7)} ${fmt(big).padStart(6)} MB/s (1 MiB updates)  ${fmt(small).padStart(6)} MB/s (256 KiB updates)`);
    console.log(`native / wasm: ${fmt(rows[0]![1] / rows[1]![1], 1)}x`);
  });
  await section('FastCDC chunker only (256 MiB in memory, default sizes, best of 3)', async () => {
    chunkerMBps(buf.subarray(0, 32 * MiB), DEFAULT_CHUNK_PARAMS);
    const runs = [0, 1, 2].map(() => chunkerMBps(buf, DEFAULT_CHUNK_PARAMS));
    const best = Math.max(...runs.map((r) => r.mbps));
    console.log(`${fmt(best)} MB/s, mean chunk ${fmt(buf.length / runs[0]!.chunks / 1024)} KiB ` +
      `(min/avg/max ${DEFAULT_CHUNK_PARAMS.minSize / 1024}/${DEFAULT_CHUNK_PARAMS.avgSize / 1024}/${DEFAULT_CHUNK_PARAMS.maxSize / 1024} KiB)`);
  });
}

/** Plain copy baseline: stream the same file to a new file and fsync it (what `cp && sync` costs). */
async function plainCopy(src: string, dst: string): Promise<number> {
  const ms = await timed(async () => {
    await pipeline(fs.createReadStream(src, { highWaterMark: MiB }), fs.createWriteStream(dst));
    const fh = await fsp.open(dst, 'r+');
    await fh.sync();
    await fh.close();
  });
  await fsp.rm(dst);
  return ms;
}

async function ingestOnce(root: string, src: string, opts: Partial<StoreOptions> = {}): Promise<{ ms: number; elMaxMs: number; elP99Ms: number }> {
  const dir = path.join(root, `store-${Math.random().toString(36).slice(2)}`);
  const store = await openStore({ dir, ...opts });
  const el = monitorEventLoopDelay({ resolution: 5 });
  el.enable();
  const ms = await timed(() => store.ingest('bench.bin', fileSource(src)));
  el.disable();
  await store.close();
  await fsp.rm(dir, { recursive: true });
  return { ms, elMaxMs: el.max / 1e6, elP99Ms: el.percentile(99) / 1e6 };
}

async function ingestAndRead(root: string): Promise<void> {
  const size = 512 * MiB;
  const src = path.join(root, 'source.bin');
  await writeRandomFile(src, size);
  await section(`Ingest (chunk + hash + write + fsync + index) vs plain copy + fsync, ${size / MiB} MiB file, 5 alternating runs`, async () => {
    const copy: number[] = [];
    const ing: number[] = [];
    const el: number[] = [];
    const elP99: number[] = [];
    await ingestOnce(root, src); // warm-up (JIT, page cache)
    for (let i = 0; i < 5; i++) {
      copy.push(mbps(size, await plainCopy(src, path.join(root, 'copy.bin'))));
      const r = await ingestOnce(root, src);
      ing.push(mbps(size, r.ms));
      el.push(r.elMaxMs);
      elP99.push(r.elP99Ms);
    }
    const wasm = mbps(size, (await ingestOnce(root, src, { blake3: 'wasm' })).ms);
    const inWorker: number[] = [];
    for (let i = 0; i < 3; i++) inWorker.push(mbps(size, (await ingestOnce(root, src, { ingestInWorker: true })).ms));
    console.log(`plain copy  median ${fmt(median(copy))} MB/s  (runs ${copy.map((x) => fmt(x)).join(' ')})`);
    console.log(`ingest      median ${fmt(median(ing))} MB/s  (runs ${ing.map((x) => fmt(x)).join(' ')})`);
    console.log(`ingest / plain copy: ${fmt(median(ing) / median(copy), 2)}   [goal >= 0.50]`);
    console.log(`ingest hashing in a worker (default only with 4+ cores): median ${fmt(median(inWorker))} MB/s (${fmt(median(inWorker) / median(copy), 2)} of plain copy)`);
    console.log(`ingest with the wasm BLAKE3 fallback: ${fmt(wasm)} MB/s (${fmt(wasm / median(copy), 2)} of plain copy)`);
    console.log(`event-loop delay during ingest: p99 ${fmt(median(elP99), 1)} ms, longest ${fmt(median(el), 1)} ms (medians over the runs)`);
  });
  await section(`Read-back (verify every chunk) vs raw read of the same file (1 MiB reads), ${size / MiB} MiB, 7 alternating runs`, async () => {
    const defaultWorkers = os.availableParallelism() > 1 ? 1 : 0;
    for (const workers of [...new Set([defaultWorkers, 2, 1, 0])]) {
      const dir = path.join(root, `read-${workers}`);
      const store = await openStore({ dir, workers });
      await store.ingest('bench.bin', fileSource(src));
      const raw: number[] = [];
      const rd: number[] = [];
      let elMax = 0;
      await drain(await store.read('bench.bin'));
      for (let i = 0; i < 7; i++) {
        raw.push(mbps(size, await timed(() => drain(fs.createReadStream(src, { highWaterMark: MiB })))));
        const el = monitorEventLoopDelay({ resolution: 5 });
        el.enable();
        rd.push(mbps(size, await timed(async () => drain(await store.read('bench.bin')))));
        el.disable();
        elMax = Math.max(elMax, el.max / 1e6);
      }
      await store.close();
      await fsp.rm(dir, { recursive: true });
      const label = `store, ${workers ? `${workers} worker${workers > 1 ? 's' : ''}` : 'main thread'}${workers === defaultWorkers ? ' (default)' : ''}`;
      console.log(`${label.padEnd(34)} median ${fmt(median(rd))} MB/s vs raw ${fmt(median(raw))} MB/s: ${fmt(median(rd) / median(raw), 2)}` +
        `   (runs ${rd.map((x) => fmt(x)).join(' ')} / ${raw.map((x) => fmt(x)).join(' ')}; longest event-loop stall ${fmt(elMax, 1)} ms)`);
    }
    console.log('read / raw read goal: >= 0.70 (default configuration)');
  });
  await fsp.rm(src);
}

/** Child process: ingest one file and report the peak RSS (sampled, and the kernel's high-water mark). */
async function rssChild(dir: string, file: string): Promise<void> {
  const store = await openStore({ dir });
  const before = process.memoryUsage.rss();
  let peak = before;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 10);
  const ms = await timed(() => store.ingest('big.bin', fileSource(file)));
  clearInterval(timer);
  await store.close();
  // The kernel's high-water mark for this address space (VmHWM). Not getrusage's maxRSS: Linux carries the
  // pre-exec peak over, i.e. the RSS of the forked parent (this bench, with its 256 MiB buffers).
  const hwm = /VmHWM:\s+(\d+) kB/.exec(await fsp.readFile('/proc/self/status', 'utf8').catch(() => ''));
  process.stdout.write(JSON.stringify({ before, peak: Math.max(peak, hwm ? Number(hwm[1]) * 1024 : 0), ms }) + '\n');
}

async function peakRss(root: string): Promise<void> {
  const size = 2048 * MiB;
  await section('Peak RSS while ingesting a 2 GiB file (separate process)', async () => {
    const file = path.join(root, 'big.bin');
    await writeRandomFile(file, size);
    const self = fileURLToPath(import.meta.url);
    const child = spawn(process.execPath, [self, '--rss-child', path.join(root, 'rss-store'), file], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => void (out += d.toString()));
    await new Promise((resolve) => child.on('exit', resolve));
    await fsp.rm(file);
    await fsp.rm(path.join(root, 'rss-store'), { recursive: true, force: true });
    const r = JSON.parse(out) as { before: number; peak: number; ms: number };
    console.log(`RSS after opening the store ${fmt(r.before / 1e6)} MB, peak during ingest ${fmt(r.peak / 1e6)} MB (${fmt(r.peak / MiB)} MiB)   [goal < 150 MB]`);
    console.log(`(2 GiB ingested at ${fmt(mbps(size, r.ms))} MB/s)`);
  });
}

async function paramSweep(root: string): Promise<void> {
  const candidates: [string, ChunkParams][] = [
    ['16K/64K/256K (casync)', { minSize: 16 * 1024, avgSize: 64 * 1024, maxSize: 256 * 1024 }],
    ['64K/256K/1M', { minSize: 64 * 1024, avgSize: 256 * 1024, maxSize: 1024 * 1024 }],
    ['256K/1M/4M', { minSize: 256 * 1024, avgSize: 1024 * 1024, maxSize: 4 * 1024 * 1024 }],
    ['512K/2M/8M', { minSize: 512 * 1024, avgSize: 2 * 1024 * 1024, maxSize: 8 * 1024 * 1024 }],
  ];
  const size = 256 * MiB;
  const buf = randomBytes(size);
  const src = path.join(root, 'sweep.bin');
  await fsp.writeFile(src, buf);
  const mid = 128 * MiB + 4321;
  const edited = Buffer.concat([buf.subarray(0, mid), Buffer.from([7]), buf.subarray(mid)]);
  await section(`Chunk size sweep (${size / MiB} MiB random file; ingest = full store path with one fsync'd file per chunk)`, async () => {
    console.log('min/avg/max             chunker   mean chunk  chunks/GiB  ingest   1-byte insert: new chunks / new bytes');
    for (const [label, params] of candidates) {
      chunkerMBps(buf.subarray(0, 32 * MiB), params);
      const ch = Math.max(...[0, 1, 2].map(() => chunkerMBps(buf, params).mbps));
      const { chunks } = chunkerMBps(buf, params);
      const ingest: number[] = [];
      for (let i = 0; i < 3; i++) ingest.push(mbps(size, (await ingestOnce(root, src, { chunkParams: params })).ms));
      const dir = path.join(root, 'sweep-store');
      const store = await openStore({ dir, chunkParams: params });
      await store.ingest('a', (async function* () { yield buf; })());
      const ins = await store.ingest('b', (async function* () { yield edited; })());
      await store.close();
      await fsp.rm(dir, { recursive: true });
      console.log(`${label.padEnd(22)} ${fmt(ch).padStart(6)} MB/s ${fmt(size / chunks / 1024).padStart(7)} KiB ${fmt((1024 * chunks) / 256).padStart(9)}` +
        ` ${fmt(median(ingest)).padStart(6)} MB/s   ${ins.newChunks} / ${fmt(ins.newBytes / 1024)} KiB`);
    }
  });
  await fsp.rm(src);
}

/**
 * Many small files, one ingest each (a phone's photo folder, the hub's first scan): per-file costs dominate. Baseline:
 * writing the same files with fs.writeFile and an fsync each. Also counts V8's full mark-compacts during the ingests,
 * which a fresh chunk-sized buffer per file used to trigger every few files.
 */
async function smallFiles(root: string): Promise<void> {
  const count = 2000;
  const files = Array.from({ length: count }, (_, i) => randomBytes(1024 + ((i * 7919) % (63 * 1024))));
  const bytes = files.reduce((a, f) => a + f.length, 0);
  await section(`${count} small files (1-64 KiB, ${fmt(bytes / MiB)} MiB): ingest one by one vs write + fsync, 3 alternating runs`, async () => {
    const plain: number[] = [];
    const ing: number[] = [];
    const marks: number[] = [];
    for (let r = 0; r < 3; r++) {
      const dir = path.join(root, `plain-${r}`);
      await fsp.mkdir(dir);
      plain.push(
        await timed(async () => {
          for (let i = 0; i < count; i++) {
            const fh = await fsp.open(path.join(dir, `f${i}`), 'w');
            await fh.writeFile(files[i]!);
            await fh.sync();
            await fh.close();
          }
        }),
      );
      await fsp.rm(dir, { recursive: true });
      const store = await openStore({ dir: path.join(root, `small-${r}`) });
      let majorGcs = 0;
      const obs = new PerformanceObserver((list) => {
        for (const e of list.getEntries()) if (((e as { detail?: { kind?: number } }).detail)?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) majorGcs += 1;
      });
      obs.observe({ entryTypes: ['gc'] });
      ing.push(
        await timed(async () => {
          for (let i = 0; i < count; i++) await store.ingest(`d/f${i}`, Readable.from([files[i]!]));
        }),
      );
      await new Promise((resolve) => setImmediate(resolve)); // let the observer see the last entries
      obs.disconnect();
      marks.push(majorGcs);
      await store.close();
      await fsp.rm(path.join(root, `small-${r}`), { recursive: true });
    }
    console.log(`write + fsync  median ${fmt(median(plain))} ms  (${fmt(median(plain) / count, 2)} ms per file)`);
    console.log(`ingest         median ${fmt(median(ing))} ms  (${fmt(median(ing) / count, 2)} ms per file), full mark-compacts per run: ${marks.join(', ')}`);
    console.log(`ingest / write + fsync time: ${fmt(median(ing) / median(plain), 2)}`);
  });
}

async function main(): Promise<void> {
  if (args[0] === '--rss-child') return rssChild(args[1]!, args[2]!);
  const base = option('--dir') ?? os.tmpdir();
  const root = await fsp.mkdtemp(path.join(base, 'balupi-bench-'));
  console.log(`# bench/store.ts  ${new Date().toISOString()}  node ${process.version}  ${os.cpus().length} x ${os.cpus()[0]?.model}`);
  console.log(`load average at start: ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}   temp dir: ${root}`);
  try {
    if (flag('--params')) {
      await paramSweep(root);
    } else if (flag('--rss')) {
      await peakRss(root);
    } else if (flag('--small')) {
      await smallFiles(root);
    } else {
      await hashingAndChunking();
      await ingestAndRead(root);
      await smallFiles(root);
      if (!flag('--quick')) await peakRss(root);
    }
  } finally {
    await fsp.rm(root, { recursive: true, force: true });
  }
  console.log(`\nload average at end: ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
}

await main();
