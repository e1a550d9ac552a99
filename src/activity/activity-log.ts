// BaluHost's activity feed on the Pi (../shared/reference/baluhost-api.md §3.9): what clients report (BaluApp posts
// its opens, uploads and moves) and what happened to files through this Pi (new local versions and deletions seen in
// the store's change events). The BaluApp dashboard shows "recent files" from it.
//
// LevelDB sublevel `activity`, keys are the entry id as 16 hex digits (so iteration order is age); the log keeps the
// newest MAX_ENTRIES and trims the rest, so it cannot grow without bound on the Pi's SD card.
import type { AbstractLevel, AbstractSublevel } from 'abstract-level';
import type { FileRecord } from '../../store/index.ts';

export const ACTION_TYPES = [
  'file.open', 'file.download', 'file.upload', 'file.edit', 'file.delete', 'file.move', 'file.rename', 'file.share',
  'file.permission', 'folder.create', 'sync.triggered',
] as const;
export type ActionType = (typeof ACTION_TYPES)[number];

export interface Activity {
  id: number;
  action_type: ActionType;
  file_path: string;
  file_name: string;
  is_directory: boolean;
  file_size: number | null;
  mime_type: string | null;
  /** 'client': reported by an app; 'server': a change made through this Pi. */
  source: 'client' | 'server';
  device_id: string | null;
  user_id: number | null;
  username: string | null;
  /** Milliseconds since the epoch: when it happened (the client's occurred_at, else when it was recorded). */
  at: number;
}

export type NewActivity = Omit<Activity, 'id'>;

export interface RecentFile {
  file_path: string;
  file_name: string;
  is_directory: boolean;
  file_size: number | null;
  mime_type: string | null;
  last_action: ActionType;
  last_action_at: number;
  action_count: number;
}

const MAX_ENTRIES = 5000;
/** Fingerprints of recent client reports: a batch the app re-sends after a timeout counts as deduplicated. */
const MAX_FINGERPRINTS = 2000;

const keyOf = (id: number) => id.toString(16).padStart(16, '0');
const fingerprint = (a: NewActivity) => JSON.stringify([a.user_id, a.action_type, a.file_path, a.device_id, a.at]);

export class ActivityLog {
  readonly #db: AbstractSublevel<any, any, string, Activity>;
  #nextId = 1;
  #count = 0;
  /**
   * Entries go only by trimming the oldest, so the ids from here to #nextId - 1 are all present: trimming can name
   * its keys. Finding them with an iterator instead cost a seek past every tombstone earlier trims left, per append:
   * in a hub's first scan of 30,000 files, ~4 s of its main thread and ~15 s of LevelDB's CPU.
   */
  #oldestId = 1;
  /** Changes waiting for the next append: a burst of store changes is written as one batch. */
  #pending: NewActivity[] = [];
  #pendingWrite: Promise<void> | undefined;
  readonly #fingerprints = new Set<string>();
  /** Appends run one after another so ids stay in order and trimming sees a settled count. */
  #chain: Promise<unknown> = Promise.resolve();

  private constructor(db: AbstractSublevel<any, any, string, Activity>) {
    this.#db = db;
  }

  static async open(parent: AbstractLevel<any, any, any>): Promise<ActivityLog> {
    const log = new ActivityLog(parent.sublevel<string, Activity>('activity', { valueEncoding: 'json' }));
    for await (const a of log.#db.values()) {
      if (log.#count === 0) log.#oldestId = a.id;
      log.#count += 1;
      log.#nextId = a.id + 1;
      if (a.source === 'client') log.#remember(fingerprint(a));
    }
    return log;
  }

  /** Client-reported activities; returns how many were stored and how many were repeats of earlier reports. */
  report(items: NewActivity[]): Promise<{ accepted: number; deduplicated: number }> {
    return this.#serial(async () => {
      const fresh: NewActivity[] = [];
      for (const a of items) {
        const fp = fingerprint(a);
        if (this.#fingerprints.has(fp)) continue;
        this.#remember(fp);
        fresh.push(a);
      }
      await this.#append(fresh);
      return { accepted: fresh.length, deduplicated: items.length - fresh.length };
    });
  }

  /**
   * A store change made on this Pi: a new local version is an upload (an edit when it replaces one), a tombstone a
   * deletion. Versions that arrived from the hub as metadata only ('remote') are the NAS's activity, not ours.
   */
  recordChange(r: FileRecord, now = Date.now()): Promise<void> {
    if (!r.deleted && r.state !== 'local') return Promise.resolve();
    const action: ActionType = r.deleted ? 'file.delete' : r.version > 1 ? 'file.edit' : 'file.upload';
    const top = r.path.split('/')[0] ?? '';
    this.#pending.push({
      action_type: action,
      file_path: r.path,
      file_name: r.path.slice(r.path.lastIndexOf('/') + 1),
      is_directory: false,
      file_size: r.deleted ? null : r.size,
      mime_type: null,
      source: 'server',
      device_id: null,
      user_id: null,
      // The store does not know who wrote a version; a home folder names its owner.
      username: top === 'Shared' ? null : top,
      at: now,
    });
    this.#pendingWrite ??= this.#serial(() => {
      const items = this.#pending;
      this.#pending = [];
      this.#pendingWrite = undefined;
      return this.#append(items);
    });
    return this.#pendingWrite;
  }

  /** Newest first, filtered by `keep`; `offset`/`limit` page through what is kept. */
  async recent(opts: { limit: number; offset?: number; keep: (a: Activity) => boolean }): Promise<{ items: Activity[]; total: number }> {
    const items: Activity[] = [];
    let total = 0;
    const offset = opts.offset ?? 0;
    for await (const a of this.#db.values({ reverse: true })) {
      if (!opts.keep(a)) continue;
      if (total >= offset && items.length < opts.limit) items.push(a);
      total += 1;
    }
    return { items, total };
  }

  /** One row per path, newest action first: what BaluApp's dashboard shows as recent files. */
  async recentFiles(opts: { limit: number; keep: (a: Activity) => boolean }): Promise<RecentFile[]> {
    const byPath = new Map<string, RecentFile>();
    for await (const a of this.#db.values({ reverse: true })) {
      if (!opts.keep(a)) continue;
      const seen = byPath.get(a.file_path);
      if (seen) {
        seen.action_count += 1;
        continue;
      }
      if (byPath.size >= opts.limit) continue; // still counting actions of the paths already chosen
      byPath.set(a.file_path, {
        file_path: a.file_path,
        file_name: a.file_name,
        is_directory: a.is_directory,
        file_size: a.file_size,
        mime_type: a.mime_type,
        last_action: a.action_type,
        last_action_at: a.at,
        action_count: 1,
      });
    }
    return [...byPath.values()];
  }

  /** Resolves when every append so far is on disk. */
  idle(): Promise<unknown> {
    return this.#chain;
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#chain.then(fn, fn);
    this.#chain = run.catch(() => {});
    return run;
  }

  async #append(items: NewActivity[]): Promise<void> {
    if (items.length === 0) return;
    // Ids are taken only once the batch is written: a failed write leaves no gap in them.
    const ops: { type: 'put' | 'del'; key: string; value?: Activity }[] = items.map((a, i) => {
      const entry: Activity = { ...a, id: this.#nextId + i };
      return { type: 'put', key: keyOf(entry.id), value: entry };
    });
    const excess = Math.max(0, this.#count + items.length - MAX_ENTRIES);
    for (let id = this.#oldestId; id < this.#oldestId + excess; id++) ops.push({ type: 'del', key: keyOf(id) });
    await this.#db.batch(ops as never);
    this.#nextId += items.length;
    this.#oldestId += excess;
    this.#count += items.length - excess;
  }

  #remember(fp: string): void {
    this.#fingerprints.add(fp);
    if (this.#fingerprints.size > MAX_FINGERPRINTS) this.#fingerprints.delete(this.#fingerprints.values().next().value!);
  }
}
