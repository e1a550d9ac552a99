// Cache counters for GET /api/cache/stats: downloads served from the Pi's own chunks (hits) or fetched from the hub
// (misses), and files evicted to make room. They are kept across restarts in the daemon's LevelDB (sublevel
// `cache-stats`), written at most every FLUSH_MS and at close, so a crash loses at most those seconds of counting;
// `since` says when counting began. Bytes, budget and dedup come from the store itself.

import type { ClassicLevel } from 'classic-level';
import type { AbstractSublevel } from 'abstract-level';
import type { FileRecord, Store } from '../../store/index.ts';

type Db = ClassicLevel<string, string>;

interface Counts {
  hits: number;
  misses: number;
  hitBytes: number;
  missBytes: number;
  evictions: number;
  evictedBytes: number;
  since: number;
}

const FLUSH_MS = 30_000;

export interface CacheStatsReport {
  hit_rate: number | null;
  hits: number;
  misses: number;
  hit_bytes: number;
  miss_bytes: number;
  cached_bytes: number;
  budget_bytes: number;
  budget_use: number;
  evictions: number;
  evicted_bytes: number;
  dedup_ratio: number;
  files: number;
  local_files: number;
  logical_bytes: number;
  local_bytes: number;
  unsynced_bytes: number;
  counting_since: string;
}

export class CacheStats {
  private readonly sub: AbstractSublevel<Db, string | Buffer | Uint8Array, string, Counts>;
  private readonly store: Store;
  private c: Counts;
  private dirty = false;
  private readonly timer: NodeJS.Timeout;
  private readonly onEvict: (rec: FileRecord) => void;

  private constructor(store: Store, sub: CacheStats['sub'], counts: Counts) {
    this.store = store;
    this.sub = sub;
    this.c = counts;
    this.onEvict = (rec) => {
      this.c.evictions += 1;
      this.c.evictedBytes += rec.size;
      this.dirty = true;
    };
    store.on('evict', this.onEvict);
    this.timer = setInterval(() => void this.flush().catch(() => {}), FLUSH_MS);
    this.timer.unref();
  }

  static async open(db: Db, store: Store): Promise<CacheStats> {
    const sub = db.sublevel<string, Counts>('cache-stats', { valueEncoding: 'json' });
    const saved = await sub.get('counts');
    const zero: Counts = { hits: 0, misses: 0, hitBytes: 0, missBytes: 0, evictions: 0, evictedBytes: 0, since: Date.now() };
    return new CacheStats(store, sub, { ...zero, ...saved });
  }

  /** A download served from chunks already here. */
  hit(bytes: number): void {
    this.c.hits += 1;
    this.c.hitBytes += bytes;
    this.dirty = true;
  }

  /** A download that needed bytes from the hub. */
  miss(bytes: number): void {
    this.c.misses += 1;
    this.c.missBytes += bytes;
    this.dirty = true;
  }

  report(): CacheStatsReport {
    const s = this.store.stats();
    const served = this.c.hits + this.c.misses;
    return {
      hit_rate: served === 0 ? null : this.c.hits / served,
      hits: this.c.hits,
      misses: this.c.misses,
      hit_bytes: this.c.hitBytes,
      miss_bytes: this.c.missBytes,
      cached_bytes: s.storedBytes,
      budget_bytes: s.budgetBytes,
      budget_use: s.budgetUse,
      evictions: this.c.evictions,
      evicted_bytes: this.c.evictedBytes,
      dedup_ratio: s.dedupRatio,
      files: s.files,
      local_files: s.localFiles,
      logical_bytes: s.logicalBytes,
      local_bytes: s.localBytes,
      unsynced_bytes: s.dirtyBytes,
      counting_since: new Date(this.c.since).toISOString(),
    };
  }

  async flush(): Promise<void> {
    if (!this.dirty) return;
    this.dirty = false;
    await this.sub.put('counts', { ...this.c });
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    this.store.off('evict', this.onEvict);
    await this.flush();
  }
}
