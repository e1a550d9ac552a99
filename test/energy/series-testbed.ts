// Shared set-up of the series-side tests: a temporary classic-level database and deterministic readings.

import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ClassicLevel } from 'classic-level';
import type { PlugReading } from '../../src/energy/types.ts';

export interface TempDb {
  dir: string;
  db: ClassicLevel<string, string>;
  reopen(): Promise<ClassicLevel<string, string>>;
  cleanup(): Promise<void>;
}

export async function tempDb(prefix = 'balupi-energy-'): Promise<TempDb> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
  const t: TempDb = {
    dir,
    db: new ClassicLevel<string, string>(dir),
    async reopen() {
      if (t.db.status === 'open') await t.db.close();
      t.db = new ClassicLevel<string, string>(dir);
      await t.db.open();
      return t.db;
    },
    async cleanup() {
      if (t.db.status === 'open') await t.db.close();
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
  await t.db.open();
  return t;
}

/** Sum of file sizes in a directory (what `du -b` would count for LevelDB's flat layout). */
export async function dirBytes(dir: string): Promise<number> {
  let total = 0;
  for (const name of await fs.readdir(dir)) total += (await fs.stat(path.join(dir, name))).size;
  return total;
}

export function reading(deviceId: number, at: number, powerW: number, extra: Partial<PlugReading> = {}): PlugReading {
  return { deviceId, at, powerW, voltageV: null, currentA: null, todayWh: null, monthWh: null, deviceOn: true, ...extra };
}

/** A small deterministic PRNG (mulberry32) so failures reproduce. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function gaussian(rand: () => number): number {
  return Math.sqrt(-2 * Math.log(rand() || 1e-12)) * Math.cos(2 * Math.PI * rand());
}
