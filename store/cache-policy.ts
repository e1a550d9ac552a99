// What stays on the Pi's disk: a byte budget, hotness per file, and eviction of clean files (coldest first) from the
// high-water mark down to the low-water mark. Evicted files keep their records and become 'remote'.
//
// Hotness is a decayed access counter: every access adds 1, and the count halves every HALF_LIFE_MS. This behaves
// like the plan's `count / (1 + days since last access)` (frequent and recent both count, old popularity fades) with
// one property that matters for an index: for exponential decay the ORDER of two files never changes while neither is
// accessed, because log2(count at time t) = log2(c) + (t0 - t) / H and the `- t / H` term is common to every file.
// So `log2(c) + t0 / H` is a time-independent sort key and the eviction candidates can live in a LevelDB sublevel
// sorted coldest-first, updated only when a file is accessed, instead of being rescanned and re-scored.

import type { Engine } from './engine.ts';
import type { Heat } from './indexes.ts';
import type { FileRecord } from './records.ts';
import type { Tx } from './indexes.ts';

/** A week: weekly habits (the Sunday photo sort) keep their files warm. */
export const HALF_LIFE_MS = 7 * 24 * 3600 * 1000;

export function decayedCount(h: Heat | undefined, now: number): number {
  if (!h) return 0;
  return h.c * 2 ** (-Math.max(0, now - h.t) / HALF_LIFE_MS);
}

/** One more access at `now`. */
export function bumpHeat(prev: Heat | undefined, now: number): Heat {
  return { c: decayedCount(prev, now) + 1, t: now };
}

/** Fixed-width, lexicographically sortable: coldest first. */
export function hotKey(h: Heat, path: string): string {
  const score = Math.log2(Math.max(h.c, 1e-9)) + h.t / HALF_LIFE_MS;
  // Shift so realistic scores (log2 of counts >= -30, times since 1970) stay positive, then fixed-point.
  const fixed = Math.round((score + 1e6) * 1e9);
  return fixed.toString().padStart(20, '0') + '|' + path;
}

/** Whether a record belongs in the eviction index. */
export function isEvictionCandidate(r: FileRecord): boolean {
  return !r.deleted && r.state === 'local' && !r.pinned;
}

/** Writes the file's heat and keeps its entry in the `hot` index in step with it. */
export function putHeat(tx: Tx, path: string, prev: Heat | undefined, next: Heat | undefined, candidate: boolean): void {
  if (prev?.k !== undefined) tx.delHot(prev.k);
  if (!next) {
    tx.delHeat(path);
    return;
  }
  const h: Heat = { c: next.c, t: next.t };
  if (candidate) {
    h.k = hotKey(h, path);
    tx.putHot(h.k, path);
  }
  tx.putHeat(path, h);
}

const EVICT_BATCH_FILES = 64;

/**
 * Turns local files into remote ones, coldest first, until stored bytes reach `target`. Skips pinned files, files
 * with any dirty (unsynced) chunk and files in use (a read or commit holds one of their chunks). A chunk's bytes go
 * when no local file references it any more. Caller holds the write lock.
 */
export async function evictLocked(engine: Engine, target: number): Promise<{ files: number; bytes: number }> {
  if (engine.closed || engine.counters.storedBytes <= target) return { files: 0, bytes: 0 };
  const before = engine.counters.storedBytes;
  let files = 0;
  const it = engine.idx.hot.iterator();
  try {
    let exhausted = false;
    while (!exhausted && engine.counters.storedBytes > target) {
      await engine.transactLocked(async (tx) => {
        let n = 0;
        while (n < EVICT_BATCH_FILES && tx.counters.storedBytes > target) {
          const entry = await it.next();
          if (!entry) {
            exhausted = true;
            return;
          }
          const [key, path] = entry;
          const rec = await engine.idx.getFile(path);
          if (!rec || !isEvictionCandidate(rec)) {
            tx.delHot(key); // stale entry
            continue;
          }
          const hashes = rec.chunks.map((c) => c.hash);
          if (hashes.some((h) => engine.holds.has(h))) continue;
          await tx.load(hashes);
          if (hashes.some((h) => tx.isDirty(h))) continue;
          // Bytes kept in the backing folder (the hub's root) are not the cache's to drop.
          if (hashes.some((h) => tx.chunk(h)?.locs)) continue;
          demote(engine, tx, rec);
          const heat = await engine.idx.heat.get(path);
          putHeat(tx, path, heat, heat, false);
          n += 1;
          files += 1;
          tx.afterCommit(() => void engine.events.emit('evict', { ...rec, state: 'remote' }));
        }
      });
    }
  } finally {
    await it.close();
  }
  return { files, bytes: before - engine.counters.storedBytes };
}

/**
 * local -> remote: drop one local reference per chunk entry; bytes no local file needs any more leave the disk, unless
 * `keepBytes` (a version waiting for the rest of its bytes: lost-bytes.ts). Returns the new record.
 */
export function demote(engine: Engine, tx: Tx, rec: FileRecord, opts: { keepBytes?: boolean } = {}): FileRecord {
  for (const c of rec.chunks) {
    const row = tx.chunk(c.hash);
    if (!row) throw new Error(`index inconsistency: chunk ${c.hash} of ${rec.path} has no row`);
    row.localRefs -= 1;
    if (!opts.keepBytes && row.localRefs <= 0 && row.present && !tx.isDirty(c.hash) && !engine.holds.has(c.hash)) {
      row.present = false;
      const h = c.hash;
      tx.afterCommit(() => engine.writes.unlinkUnheld(h));
    }
    tx.setChunk(c.hash, row);
  }
  const next: FileRecord = { ...rec, state: 'remote' };
  tx.putFile(next);
  tx.counters.localFiles -= 1;
  tx.counters.localBytes -= rec.size;
  return next;
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return `${i === 0 ? v.toFixed(0) : v.toFixed(1)} ${units[i]}`;
}
