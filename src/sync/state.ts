// The sync layer's own persistent state, in sublevels of the daemon's LevelDB (the store keeps file records; this
// keeps what one peer knows about another):
//   sync-meta       peerId, hubIndexId, hubCursor (last hub sequence applied), localCursor (last local sequence
//                   examined for uploads), rootCursor (hub: last sequence written into the root folder)
//   sync-base       path -> the hub's version and content this peer last agreed on (the base of the next commit)
//   sync-conflicts  time|n -> a resolved conflict, for `balupi conflicts`
//   sync-fetch      path -> '' (files whose bytes are wanted: pinned or hot, fetched when the hub is reachable)
//   sync-fetch-large  the same for files of LARGE_FILE_BYTES and more, which are fetched in a lane of their own
//   sync-pins       dir  -> '' (pinned directories: files under them are pinned as they appear)
//   sync-origin     path -> id of the peer whose commit made the current version (names conflict copies)
//   sync-deferred   path -> the hub's newest record this Pi left aside for a local change not pushed yet (pull.ts)

import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { ClassicLevel } from 'classic-level';
import type { AbstractSublevel } from 'abstract-level';
import { laneOf, type Lane } from './push-lanes.ts';
import type { RemoteFile } from './wire.ts';

type Db = ClassicLevel<string, string>;
type Sub<V> = AbstractSublevel<Db, string | Buffer | Uint8Array, string, V>;

/** The hub's record of a path as this peer last agreed with it. */
export interface BaseEntry {
  /** The hub's version number. */
  v: number;
  /** Content hash ('' when deleted). */
  h: string;
  d: boolean;
}

export interface ConflictRecord {
  /** When it was resolved (ms since epoch). */
  at: number;
  path: string;
  /** Where the losing version was kept; null when the loser was a deletion (nothing to keep). */
  copy: string | null;
  /** Id of the peer whose version lost. */
  loserPeer: string;
  /** Id of the peer whose version won. */
  winnerPeer: string;
  reason: 'both_modified' | 'modified_vs_deleted';
}

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

function newPeerId(): string {
  return [...randomBytes(7)].map((b) => BASE32[b & 31]).join('');
}

/** Numbers kept in the sync state; `rootChunkFilesAdopted`: 1 once the hub has dropped the chunk files of files already in its root (HubRoot.adoptChunkFiles). */
type NumberKey = 'hubCursor' | 'localCursor' | 'rootCursor' | 'rootChunkFilesAdopted' | 'hubIgnoreRules' | 'hubIgnoreSeen';

/** How a base is stored (a tombstone keeps no hash). */
function baseEntry(e: { version: number; hash: string; deleted: boolean }): BaseEntry {
  return { v: e.version, h: e.deleted ? '' : e.hash, d: e.deleted };
}

/** A file whose bytes are wanted, and its size (which decides its fetch lane). */
export interface Wanted {
  path: string;
  size: number;
}

export class SyncState {
  readonly peerId: string;
  private readonly meta: Sub<unknown>;
  private readonly base: Sub<BaseEntry>;
  private readonly conflicts: Sub<ConflictRecord>;
  /** Wanted files by lane: the small ones (and any wanted before lanes existed) and the large ones. */
  private readonly fetch: Record<Lane, Sub<string>>;
  private readonly pins: Sub<string>;
  private readonly origin: Sub<string>;
  private readonly deferred: Sub<RemoteFile>;
  /** Origins noted but not written yet (noteOrigin). */
  private readonly unwrittenOrigins = new Map<string, string>();
  private originWrites = Promise.resolve();
  private conflictSerial = 0;
  /**
   * 'wanted' once a file's bytes are wanted by wantBytes: the Pi's fetch loop wakes for it. A push that loses a
   * conflict wants the hub's winning version; woken only by feed pages, the loop left it unfetched when the feed had
   * brought that version before the push was answered (found by bench/soak-sync.ts).
   */
  readonly events = new EventEmitter();

  private constructor(db: Db, peerId: string) {
    this.peerId = peerId;
    this.meta = db.sublevel<string, unknown>('sync-meta', { valueEncoding: 'json' });
    this.base = db.sublevel<string, BaseEntry>('sync-base', { valueEncoding: 'json' });
    this.conflicts = db.sublevel<string, ConflictRecord>('sync-conflicts', { valueEncoding: 'json' });
    this.fetch = {
      small: db.sublevel<string, string>('sync-fetch', { valueEncoding: 'utf8' }),
      large: db.sublevel<string, string>('sync-fetch-large', { valueEncoding: 'utf8' }),
    };
    this.pins = db.sublevel<string, string>('sync-pins', { valueEncoding: 'utf8' });
    this.origin = db.sublevel<string, string>('sync-origin', { valueEncoding: 'utf8' });
    this.deferred = db.sublevel<string, RemoteFile>('sync-deferred', { valueEncoding: 'json' });
  }

  static async open(db: Db): Promise<SyncState> {
    const meta = db.sublevel<string, unknown>('sync-meta', { valueEncoding: 'json' });
    let peerId = await meta.get('peerId');
    if (typeof peerId !== 'string') {
      peerId = newPeerId();
      await meta.put('peerId', peerId);
    }
    const state = new SyncState(db, peerId as string);
    // Sublevels open in the background; the synchronous reads below (getSync) refuse one that has not finished yet.
    await Promise.all([state.meta, state.base, state.conflicts, state.fetch.small, state.fetch.large, state.pins, state.origin, state.deferred].map((sub) => sub.open()));
    return state;
  }

  // Point reads use getSync, as the store's do (store/indexes.ts readNow): a cached LevelDB read takes microseconds,
  // an async one a thread-pool round trip, and applying thousands of hub records reads these per record.
  async getNumber(key: NumberKey): Promise<number> {
    const v = this.meta.getSync(key);
    return typeof v === 'number' ? v : 0;
  }

  async setNumber(key: NumberKey, value: number): Promise<void> {
    await this.meta.put(key, value);
  }

  async getHubIndexId(): Promise<string | null> {
    const v = this.meta.getSync('hubIndexId');
    return typeof v === 'string' ? v : null;
  }

  /** A new hub index: cursor and every base entry belong to the old one and are dropped. */
  async resetHub(indexId: string): Promise<void> {
    await this.base.clear();
    await this.deferred.clear();
    await this.meta.batch([
      { type: 'put', key: 'hubIndexId', value: indexId },
      { type: 'put', key: 'hubCursor', value: 0 },
    ]);
  }

  async getBase(path: string): Promise<{ version: number; hash: string; deleted: boolean } | undefined> {
    const b = this.base.getSync(path);
    return b && { version: b.v, hash: b.h, deleted: b.d };
  }

  /**
   * Writes nothing when the base is that already (the hub's feed echoes every file this Pi pushed). A record left
   * aside (setDeferred) that is not newer than the new base is done with: it goes in the same write.
   */
  async setBase(path: string, entry: { version: number; hash: string; deleted: boolean }): Promise<void> {
    const next = baseEntry(entry);
    const cur = this.base.getSync(path);
    const deferred = this.deferred.getSync(path);
    const settled = deferred !== undefined && deferred.version <= next.v;
    if (cur && cur.v === next.v && cur.h === next.h && cur.d === next.d && !settled) return;
    await this.base.db.batch([
      { type: 'put', sublevel: this.base, key: path, value: next },
      ...(settled ? [{ type: 'del' as const, sublevel: this.deferred, key: path }] : []),
    ] as never);
  }

  /**
   * The hub's record of `path` that the feed brought while this Pi had a change there not pushed yet: its push meets
   * the hub's version in a commit. Kept (the newest one) for the case that the change goes back to what the hub last
   * agreed on before it is pushed (written, then deleted again): nothing is pushed then, and this record must be
   * applied after all (the soak's seed 838: the pi lost the NAS's new file that way).
   */
  async setDeferred(r: RemoteFile): Promise<void> {
    const cur = this.deferred.getSync(r.path);
    if (cur && cur.version >= r.version) return;
    await this.deferred.put(r.path, r);
  }

  async getDeferred(path: string): Promise<RemoteFile | undefined> {
    return this.deferred.getSync(path);
  }

  /**
   * setBase for many paths, plus wantBytes for some of them, in one write (a page of new files from the hub, a batch
   * of pushed files). A base without `deleted` is a live file.
   */
  async setBasesAndWants(bases: { path: string; version: number; hash: string; deleted?: boolean }[], wants: Wanted[]): Promise<void> {
    if (bases.length === 0 && wants.length === 0) return;
    const settled = bases.filter((b) => (this.deferred.getSync(b.path)?.version ?? Infinity) <= b.version);
    await this.base.db.batch([
      ...bases.map((b) => ({ type: 'put' as const, sublevel: this.base, key: b.path, value: baseEntry({ deleted: false, ...b }) })),
      ...settled.map((b) => ({ type: 'del' as const, sublevel: this.deferred, key: b.path })),
      ...wants.map((w) => ({ type: 'put' as const, sublevel: this.fetch[laneOf(w.size)], key: w.path, value: '' })),
    ] as never);
  }

  async getOrigin(path: string): Promise<string | undefined> {
    return this.unwrittenOrigins.get(path) ?? this.origin.getSync(path);
  }

  /**
   * Who made the version of `path` just committed: getOrigin says so at once, writeOrigins writes it down (the hub
   * notes a peer's commit at once and writes after its flush: a commit of the same path in between must name the
   * right peer in its conflict copy).
   */
  noteOrigin(path: string, peer: string): void {
    this.unwrittenOrigins.set(path, peer);
  }

  /** Writes every origin noted so far in one write; one write at a time, so that an older one never lands last. */
  writeOrigins(): Promise<void> {
    const write = this.originWrites.then(async () => {
      const noted = [...this.unwrittenOrigins];
      if (noted.length === 0) return;
      await this.origin.batch(noted.map(([key, value]) => ({ type: 'put' as const, key, value })));
      for (const [path, peer] of noted) if (this.unwrittenOrigins.get(path) === peer) this.unwrittenOrigins.delete(path);
    });
    this.originWrites = write.catch(() => {}); // a failed write leaves its origins noted for the next one
    return write;
  }

  async setOrigin(path: string, peer: string): Promise<void> {
    this.noteOrigin(path, peer);
    await this.writeOrigins();
  }

  async recordConflict(c: ConflictRecord): Promise<void> {
    this.conflictSerial = (this.conflictSerial + 1) % 1000;
    await this.conflicts.put(`${String(c.at).padStart(15, '0')}|${String(this.conflictSerial).padStart(3, '0')}`, c);
  }

  async listConflicts(): Promise<ConflictRecord[]> {
    return this.conflicts.values().all();
  }

  async countConflicts(): Promise<number> {
    let n = 0;
    for await (const _ of this.conflicts.keys()) n += 1;
    return n;
  }

  /** The bytes of the file at `path` (of `size` bytes: it decides the fetch lane) are wanted here. */
  async wantBytes(path: string, size: number): Promise<void> {
    await this.fetch[laneOf(size)].put(path, '');
    this.events.emit('wanted', path);
  }

  async gotBytes(paths: string[]): Promise<void> {
    if (paths.length === 0) return;
    await this.base.db.batch(
      (['small', 'large'] as const).flatMap((lane) => paths.map((key) => ({ type: 'del' as const, sublevel: this.fetch[lane], key }))) as never,
    );
  }

  /** Wanted files of one lane, in path order, at most `limit`. */
  async wantedBytes(lane: Lane, limit = 10_000): Promise<string[]> {
    return this.fetch[lane].keys({ limit }).all();
  }

  /** How many files' bytes are wanted (counted up to `limit` per lane). */
  async countWanted(limit = 10_000): Promise<number> {
    return (await this.wantedBytes('small', limit)).length + (await this.wantedBytes('large', limit)).length;
  }

  async pinDir(dir: string, pinned: boolean): Promise<void> {
    if (pinned) await this.pins.put(dir, '');
    else await this.pins.del(dir);
  }

  /** Whether `path` lies under a pinned directory ('' pins everything). */
  async underPinnedDir(path: string): Promise<boolean> {
    if (this.pins.getSync('') !== undefined) return true;
    const parts = path.split('/');
    const prefixes: string[] = [];
    for (let i = 1; i < parts.length; i++) prefixes.push(parts.slice(0, i).join('/'));
    if (prefixes.length === 0) return false;
    return prefixes.some((p) => this.pins.getSync(p) !== undefined);
  }

  async pinnedDirs(): Promise<string[]> {
    return this.pins.keys().all();
  }
}
