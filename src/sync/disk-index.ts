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
  /**
   * Entries set (or, null, deleted) and not written yet: the root writer sets one per file, thousands per push, and a
   * put each cost a thread-pool round trip. What is set until the next turn of the event loop goes in one batch, one
   * batch at a time; reads see these entries meanwhile.
   */
  #queued = new Map<string, DiskEntry | null>();
  #waiters: { resolve: () => void; reject: (err: unknown) => void }[] = [];
  #writing = new Map<string, DiskEntry | null>();
  #written: Promise<void> = Promise.resolve();
  #scheduled = false;
  #placing = new Map<string, DiskStat>();

  constructor(db: Db) {
    this.sub = db.sublevel<string, DiskEntry>('hub-disk', { valueEncoding: 'json' });
  }

  async get(path: string): Promise<DiskEntry | undefined> {
    return this.getNow(path);
  }

  /** get(), synchronously: a cached read is microseconds, a thread-pool round trip is not. */
  getNow(path: string): DiskEntry | undefined {
    for (const pending of [this.#queued, this.#writing]) if (pending.has(path)) return pending.get(path) ?? undefined;
    return this.sub.getSync(path);
  }

  /**
   * Marks `path` as being put in place by the hub itself, with this size and mtime, until the returned release is
   * called. Its entry can only be set once the store has recorded the file, and the watcher hears of the new file
   * before that: isPlacing() lets it tell the hub's own file from someone else's without reading it (a push of 3,000
   * small files otherwise brought 3,000 reads of files the hub had just written).
   */
  placing(path: string, st: DiskStat): () => void {
    this.#placing.set(path, st);
    return () => {
      if (this.#placing.get(path) === st) this.#placing.delete(path);
    };
  }

  /** Whether `st` is what the hub is putting at `path` right now (placing()). */
  isPlacing(path: string, st: DiskStat): boolean {
    return matches(st, this.#placing.get(path));
  }

  /** Resolves once the entry is written (with others set at the same time). */
  set(path: string, st: { size: number; mtimeMs: number }, version: number): Promise<void> {
    return this.#queue(path, { s: st.size, m: Math.floor(st.mtimeMs), v: version });
  }

  del(path: string): Promise<void> {
    return this.#queue(path, null);
  }

  /** Paths at `dir` or below ('' = all), once what was set before is written. */
  async *paths(dir = ''): AsyncGenerator<string> {
    while (this.#queued.size > 0 || this.#writing.size > 0) await this.#flushNow().catch(() => {});
    const range = dir === '' ? {} : { gte: dir + '/', lt: dir + '0' };
    if (dir !== '' && (await this.sub.get(dir)) !== undefined) yield dir;
    for await (const k of this.sub.keys(range)) yield k;
  }

  #queue(path: string, entry: DiskEntry | null): Promise<void> {
    this.#queued.set(path, entry);
    const written = new Promise<void>((resolve, reject) => this.#waiters.push({ resolve, reject }));
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => void this.#flushNow().catch(() => {}));
    }
    return written;
  }

  /** Writes what is queued, after the batch being written (if any); resolves once it is written. */
  #flushNow(): Promise<void> {
    this.#scheduled = false;
    this.#written = this.#written.then(async () => {
      if (this.#queued.size === 0) return;
      const batch = (this.#writing = this.#queued);
      const waiters = this.#waiters;
      this.#queued = new Map();
      this.#waiters = [];
      try {
        await this.sub.batch([...batch].map(([key, value]) => (value ? { type: 'put' as const, key, value } : { type: 'del' as const, key })));
        for (const w of waiters) w.resolve();
      } catch (err) {
        for (const w of waiters) w.reject(err);
      } finally {
        this.#writing = new Map();
      }
    });
    return this.#written;
  }
}
