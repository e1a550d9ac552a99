// Holds all but a given amount of the machine's available memory in a helper process for a bench run, so that the page
// cache the contenders write into is recycled rather than taken from never-used (or host-returned) pages.
//
// Why: on a VM that hands freed guest memory back to its host (free page reporting), writing into such a page faults
// into the host and costs several times a write into a recycled one. rsync, which writes into the page cache and syncs
// nothing, then takes 0.75 s or 3 s for the same transfer depending on which pages it got. With most memory held, every
// contender writes into recycled pages, as on a machine whose memory is in steady use.
//
// Run directly: npx node bench/_hold-memory.ts GIB  (prints "held GIB" once every page is touched; holds until killed).

import fs from 'node:fs/promises';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const GiB = 1024 ** 3;

/** MemAvailable from /proc/meminfo, in bytes. */
export async function availableBytes(): Promise<number> {
  const m = /^MemAvailable:\s+(\d+) kB$/m.exec(await fs.readFile('/proc/meminfo', 'utf8'));
  if (!m) throw new Error('no MemAvailable in /proc/meminfo');
  return Number(m[1]) * 1024;
}

/**
 * Starts a helper that holds `available - freeGiB` GiB (whole GiB, none if that is below 1) and resolves once it holds
 * them; the returned function stops it.
 */
export async function holdAllBut(freeGiB: number): Promise<{ heldGiB: number; release: () => void }> {
  const heldGiB = Math.floor((await availableBytes()) / GiB - freeGiB);
  if (heldGiB < 1) return { heldGiB: 0, release: () => {} };
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), String(heldGiB)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout! });
  await new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`memory holder exited with ${code}`)));
    lines.once('line', () => resolve());
  });
  child.removeAllListeners('exit');
  return { heldGiB, release: () => void child.kill('SIGTERM') };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const gib = Number(process.argv[2]);
  if (!(gib >= 1)) throw new Error('usage: _hold-memory.ts GIB');
  const held: Buffer[] = [];
  // fill() touches every page; allocUnsafeSlow keeps the pieces out of Node's pool and off the JS heap.
  for (let i = 0; i < gib; i++) held.push(Buffer.allocUnsafeSlow(GiB).fill(1));
  console.log(`held ${gib}`);
  // Started by holdAllBut: gone with the bench (its end of stdin closes) even if the bench is killed.
  if (!process.stdin.isTTY) process.stdin.on('close', () => process.exit(0)).resume();
  setInterval(() => held.length, 60_000);
}
