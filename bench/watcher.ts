// Hub watcher cost: files arriving in a directory that already holds many files, watched by chokidar with the hub's
// options, against the same writes with nothing watching (baseline, same run). chokidar re-lists a directory and
// lstat()s every entry on an event in it; the figure that matters is the watcher's CPU per arriving file as the
// directory grows.
//
//   npx node bench/watcher.ts [--existing N] [--arriving N]

import fs from 'node:fs/promises';
import path from 'node:path';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { watch } from 'chokidar';

const { values } = parseArgs({
  options: { existing: { type: 'string', default: '10000' }, arriving: { type: 'string', default: '2000' }, rate: { type: 'string', default: '500' } },
});
const existing = Number(values.existing);
const arriving = Number(values.arriving);
/** Files per second: a push from a pi delivers a steady stream, not one burst. */
const rate = Number(values.rate);

const work = await fs.mkdtemp(path.join(os.tmpdir(), 'balupi-watch-bench-'));
const payload = Buffer.alloc(4096, 7);

async function prepare(dir: string): Promise<void> {
  await fs.mkdir(dir, { recursive: true });
  for (let i = 0; i < existing; i += 500) {
    await Promise.all(Array.from({ length: Math.min(500, existing - i) }, (_, j) => fs.writeFile(path.join(dir, `old-${i + j}.bin`), payload)));
  }
}

/** Writes the arriving files the way the hub's root writer does (temp, then rename), `rate` per second. */
async function arrive(dir: string): Promise<void> {
  const t0 = performance.now();
  for (let i = 0; i < arriving; i++) {
    const due = t0 + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
    const tmp = path.join(dir, `.balupi-tmp-${i}`);
    await fs.writeFile(tmp, payload);
    await fs.rename(tmp, path.join(dir, `new-${i}.bin`));
  }
}

function cpuMs(from: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(from);
  return (d.user + d.system) / 1000;
}

// Baseline: the same writes, no watcher.
const plainDir = path.join(work, 'plain');
await prepare(plainDir);
let c0 = process.cpuUsage();
let t0 = performance.now();
await arrive(plainDir);
const plain = { cpu: cpuMs(c0), wall: performance.now() - t0 };

// Watched: the hub's chokidar options; done when every arriving file was reported and events stopped.
const watchedDir = path.join(work, 'watched');
await prepare(watchedDir);
const watcher = watch(watchedDir, { ignoreInitial: true, followSymlinks: false, ignored: (p: string) => path.basename(p).startsWith('.balupi-tmp-'), alwaysStat: false });
await new Promise<void>((resolve) => watcher.once('ready', () => resolve()));
let seen = 0;
let lastEvent = performance.now();
const allSeen = new Promise<void>((resolve) => {
  watcher.on('add', () => {
    lastEvent = performance.now();
    if (++seen === arriving) resolve();
  });
});
c0 = process.cpuUsage();
t0 = performance.now();
await arrive(watchedDir);
const written = performance.now() - t0;
await allSeen;
const reported = performance.now() - t0;
const watched = { cpu: cpuMs(c0), wall: reported };
await watcher.close();
await fs.rm(work, { recursive: true, force: true });

console.log(`${arriving} files arriving in a directory of ${existing} (temp + rename, ${rate} per second)`);
console.log(`  no watcher:       ${plain.wall.toFixed(0)} ms wall, ${plain.cpu.toFixed(0)} ms CPU`);
console.log(`  chokidar (hub):   writes done at ${written.toFixed(0)} ms, all ${arriving} adds reported at ${watched.wall.toFixed(0)} ms (last at ${(lastEvent - t0).toFixed(0)} ms), ${watched.cpu.toFixed(0)} ms CPU`);
console.log(`  ratio: ${(watched.cpu / plain.cpu).toFixed(1)}× the CPU of the writes alone; ${((watched.cpu - plain.cpu) / arriving).toFixed(2)} ms of watcher CPU per arriving file`);
