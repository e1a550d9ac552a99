// What the hub knows about its root folder: per path, the size and mtime of the file on disk and the store version it
// holds (LevelDB sublevel `hub-disk`). A file whose size or mtime differs from this entry was changed by someone else
// (BaluHost, Samba, a user) since the hub last read or wrote it. This is what lets the hub tell a local edit from a
// file it has not written yet, across restarts, so that neither is ever overwritten by the other.

import type { ClassicLevel } from 'classic-level';
import type { AbstractSublevel } from 'abstract-level';
import type { DiskStat } from './root-files.ts';

type Db = ClassicLevel<string, string>;

export interface DiskEntry {
  s: number;
  m: number;
  /** Store version the file holds; -1: content known (kept elsewhere), may be replaced. */
  v: number;
}

export function matches(st: DiskStat | null, e: { size: number; mtimeMs: number } | DiskEntry | undefined | null): boolean {
  if (!st || !e) return false;
  const [size, mtime] = 's' in e ? [e.s, e.m] : [e.size, e.mtimeMs];
  return st.size === size && st.mtimeMs === Math.floor(mtime);
}

export class DiskIndex {
  private readonly sub: AbstractSublevel<Db, string | Buffer | Uint8Array, string, DiskEntry>;

  constructor(db: Db) {
    this.sub = db.sublevel<string, DiskEntry>('hub-disk', { valueEncoding: 'json' });
  }

  async get(path: string): Promise<DiskEntry | undefined> {
    return this.getNow(path);
  }

  /** get(), synchronously: a cached read is microseconds, a thread-pool round trip is not. */
  getNow(path: string): DiskEntry | undefined {
    return this.sub.getSync(path);
  }

  async set(path: string, st: { size: number; mtimeMs: number }, version: number): Promise<void> {
    await this.sub.put(path, { s: st.size, m: Math.floor(st.mtimeMs), v: version });
  }

  async del(path: string): Promise<void> {
    await this.sub.del(path);
  }

  /** Paths at `dir` or below ('' = all). */
  async *paths(dir = ''): AsyncGenerator<string> {
    const range = dir === '' ? {} : { gte: dir + '/', lt: dir + '0' };
    if (dir !== '' && (await this.sub.get(dir)) !== undefined) yield dir;
    for await (const k of this.sub.keys(range)) yield k;
  }
}
