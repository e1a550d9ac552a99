// LevelDB (classic-level) indexes, one sublevel per concern, and the transaction type that ties every index change of
// one operation (plus the counters) into a single atomic batch.
//
//   files    path -> live FileRecord            tombs    path -> deleted FileRecord (so listings never see them)
//   changes  seq  -> path (latest seq per path) chunks   hash -> ChunkRow (size, refs, localRefs, present)
//   dirty    hash -> size (not yet on the hub)  heat     path -> decayed access counter
//   hot      heatKey|path -> '' (eviction candidates, coldest first)
//   locs     hash + path -> offset (where a file of the backing folder holds the chunk's bytes; the hub's root)
//   meta     'counters' | 'config' | 'clean'

import { ClassicLevel } from 'classic-level';
import type { AbstractSublevel, AbstractSnapshot } from 'abstract-level';
import type { ChunkRow, ChunkRowJson, Counters, FileRecord, FileRecordJson } from './records.ts';
import { decodeChunk, decodeFile, encodeChunk, encodeFile, zeroCounters } from './records.ts';
import { mapIoError } from './errors.ts';

type Root = ClassicLevel<string, string>;
export type Sub<V> = AbstractSublevel<Root, string | Buffer | Uint8Array, string, V>;

export interface Heat {
  /** Decayed access count as of `t`. */
  c: number;
  t: number;
  /** The file's key in `hot` while it is an eviction candidate (local, not pinned). */
  k?: string;
}

export interface StoreConfig {
  format: 1;
  chunkParams: { minSize: number; avgSize: number; maxSize: number };
  /** 80 % of the free space seen at first start; used when no explicit budget is configured. */
  defaultBudget: number;
}

/**
 * Point reads are synchronous (classic-level's getSync): LevelDB answers from its block cache or the page cache in
 * microseconds, while every async get is a thread-pool round trip (~0.1 ms, more while chunk writes keep the pool
 * busy). The store's transactions run one at a time and read before they write, so those round trips used to
 * serialize every commit (3,000 synced-in records took ~3 s). The async signatures stay, so callers do not change.
 */
export function readNow<V>(sub: Sub<V>, key: string, snapshot?: AbstractSnapshot): V | undefined {
  return snapshot ? sub.getSync(key, { snapshot }) : sub.getSync(key);
}

export function readManyNow<V>(sub: Sub<V>, keys: string[]): (V | undefined)[] {
  return keys.map((k) => sub.getSync(k));
}

export interface Location {
  /** Relative to the backing folder, as a store path. */
  path: string;
  offset: number;
}

/** Keys of `locs` are the 64-character hash followed by the path, so a chunk's locations are one key range. */
function locRange(hash: string): { gte: string; lt: string } {
  return { gte: hash, lt: hash.slice(0, -1) + String.fromCharCode(hash.charCodeAt(hash.length - 1) + 1) };
}

/** Adds the directories `path` sits in ('a' and 'a/b' for 'a/b/c'). */
function addDirsOf(dirs: Set<string>, path: string): void {
  for (let i = path.indexOf('/'); i > 0; i = path.indexOf('/', i + 1)) dirs.add(path.slice(0, i));
}

export function seqKey(seq: number): string {
  return seq.toString().padStart(16, '0');
}

export class Indexes {
  readonly db: Root;
  readonly files: Sub<FileRecordJson>;
  readonly tombs: Sub<FileRecordJson>;
  readonly changes: Sub<string>;
  readonly chunks: Sub<ChunkRowJson>;
  readonly dirty: Sub<number>;
  readonly heat: Sub<Heat>;
  readonly hot: Sub<string>;
  readonly locs: Sub<number>;
  readonly meta: Sub<unknown>;
  /**
   * Every directory a file record is or was under: a superset (a directory stays when its files go). A path not in
   * it has never been a directory, so the tree check (commit.ts) needs no LevelDB iterator for it, the common case.
   * Built by one scan of the file keys when first asked, then kept up by putFile; transactions run one at a time,
   * so no record can be committed unseen between the scan and the first putFile after it.
   */
  private dirs: Set<string> | undefined;
  private dirsLoading: Promise<Set<string>> | undefined;

  private constructor(db: Root) {
    this.db = db;
    const json = { valueEncoding: 'json' } as const;
    this.files = db.sublevel<string, FileRecordJson>('files', json);
    this.tombs = db.sublevel<string, FileRecordJson>('tombs', json);
    this.changes = db.sublevel<string, string>('changes', { valueEncoding: 'utf8' });
    this.chunks = db.sublevel<string, ChunkRowJson>('chunks', json);
    this.dirty = db.sublevel<string, number>('dirty', json);
    this.heat = db.sublevel<string, Heat>('heat', json);
    this.hot = db.sublevel<string, string>('hot', { valueEncoding: 'utf8' });
    this.locs = db.sublevel<string, number>('locs', json);
    this.meta = db.sublevel<string, unknown>('meta', json);
  }

  /** Throws classic-level's LEVEL_DATABASE_NOT_OPEN (cause LEVEL_LOCKED) when another process holds the directory. */
  static async open(location: string): Promise<Indexes> {
    // LevelDB's defaults (8 MiB block cache, 4 MiB write buffer) already fit the Pi's 1 GB.
    const db: Root = new ClassicLevel<string, string>(location, { keyEncoding: 'utf8', valueEncoding: 'utf8' });
    await db.open();
    return new Indexes(db);
  }

  close(): Promise<void> {
    return this.db.close();
  }

  snapshot(): AbstractSnapshot {
    return this.db.snapshot();
  }

  async getFile(path: string, snapshot?: AbstractSnapshot): Promise<FileRecord | undefined> {
    const j = readNow(this.files, path, snapshot);
    return j === undefined ? undefined : decodeFile(path, j);
  }

  async getTomb(path: string, snapshot?: AbstractSnapshot): Promise<FileRecord | undefined> {
    const j = readNow(this.tombs, path, snapshot);
    return j === undefined ? undefined : decodeFile(path, j);
  }

  async getChunk(hash: string): Promise<ChunkRow | undefined> {
    const j = readNow(this.chunks, hash);
    return j === undefined ? undefined : decodeChunk(j);
  }

  async getChunks(hashes: string[]): Promise<(ChunkRow | undefined)[]> {
    if (hashes.length === 0) return [];
    const js = readManyNow(this.chunks, hashes);
    return js.map((j) => (j === undefined ? undefined : decodeChunk(j)));
  }

  /** The backing-folder locations of a chunk's bytes (see ChunkRow.locs), in path order. */
  async locationsOf(hash: string): Promise<Location[]> {
    const out: Location[] = [];
    for await (const [key, offset] of this.locs.iterator(locRange(hash))) out.push({ path: key.slice(hash.length), offset });
    return out;
  }

  async readCounters(): Promise<Counters> {
    return { ...zeroCounters(), ...((await this.meta.get('counters')) as Partial<Counters> | undefined) };
  }

  /** A durable write of one meta key (the sublevel put() typings do not carry classic-level's `sync`). */
  async putMetaSync(key: string, value: unknown): Promise<void> {
    await this.db.batch([{ type: 'put', sublevel: this.meta, key, value }] as never, { sync: true });
  }

  /** False only if `path` has never had a file below it (see `dirs`); true means "look it up". */
  async mayBeDirectory(path: string): Promise<boolean> {
    if (!this.dirs) {
      this.dirsLoading ??= (async () => {
        const dirs = new Set<string>();
        for await (const key of this.files.keys()) addDirsOf(dirs, key);
        return (this.dirs = dirs);
      })().finally(() => (this.dirsLoading = undefined));
      await this.dirsLoading;
    }
    return this.dirs!.has(path);
  }

  /** A live record for `path` is being written (by putFile). */
  noteFilePath(path: string): void {
    if (this.dirs) addDirsOf(this.dirs, path);
  }

  async readConfig(): Promise<StoreConfig | undefined> {
    return (await this.meta.get('config')) as StoreConfig | undefined;
  }
}

type Op =
  | { type: 'put'; sublevel: Sub<any>; key: string; value: unknown }
  | { type: 'del'; sublevel: Sub<any>; key: string };

/**
 * Collects the index changes of one operation. Chunk rows and dirty flags are read through the transaction so that
 * several changes to the same chunk compose, and the counters follow every row change automatically. Callers run
 * transactions one at a time (the store's write lock), which is what makes read-modify-write of rows safe.
 */
export class Tx {
  readonly counters: Counters;
  private readonly idx: Indexes;
  private readonly ops: Op[] = [];
  private readonly rows = new Map<string, ChunkRow | undefined>();
  private readonly dirtyRows = new Map<string, number | undefined>();
  /** Locations changed in this transaction (key hash + path; undefined: deleted). */
  private readonly locRows = new Map<string, number | undefined>();
  private readonly after: (() => void | Promise<void>)[] = [];

  constructor(idx: Indexes, counters: Counters) {
    this.idx = idx;
    this.counters = { ...counters };
  }

  get empty(): boolean {
    return this.ops.length === 0;
  }

  /** Loads chunk rows and dirty flags for the given hashes (once each) before they are read or changed. */
  async load(hashes: Iterable<string>): Promise<void> {
    const want = [...new Set(hashes)].filter((h) => !this.rows.has(h));
    if (want.length === 0) return;
    const rows = await this.idx.getChunks(want);
    const dirty = readManyNow(this.idx.dirty, want);
    want.forEach((h, i) => {
      this.rows.set(h, rows[i]);
      this.dirtyRows.set(h, dirty[i]);
    });
  }

  chunk(hash: string): ChunkRow | undefined {
    if (!this.rows.has(hash)) throw new Error(`chunk ${hash} not loaded in transaction`);
    const row = this.rows.get(hash);
    return row && { ...row };
  }

  isDirty(hash: string): boolean {
    this.chunk(hash);
    return this.dirtyRows.get(hash) !== undefined;
  }

  setChunk(hash: string, row: ChunkRow | undefined): void {
    const prev = this.chunk(hash);
    const c = this.counters;
    if (prev) {
      c.chunks -= 1;
      if (prev.present) c.storedBytes -= prev.size;
    }
    if (row) {
      c.chunks += 1;
      if (row.present) c.storedBytes += row.size;
      this.ops.push({ type: 'put', sublevel: this.idx.chunks, key: hash, value: encodeChunk(row) });
    } else {
      this.ops.push({ type: 'del', sublevel: this.idx.chunks, key: hash });
      this.setDirty(hash, 0, false);
    }
    this.rows.set(hash, row && { ...row });
  }

  setDirty(hash: string, size: number, dirty: boolean): void {
    const prev = this.dirtyRows.get(hash);
    if ((prev !== undefined) === dirty) return;
    const c = this.counters;
    if (dirty) {
      c.dirtyChunks += 1;
      c.dirtyBytes += size;
      this.dirtyRows.set(hash, size);
      this.ops.push({ type: 'put', sublevel: this.idx.dirty, key: hash, value: size });
    } else {
      c.dirtyChunks -= 1;
      c.dirtyBytes -= prev!;
      this.dirtyRows.set(hash, undefined);
      this.ops.push({ type: 'del', sublevel: this.idx.dirty, key: hash });
    }
  }

  /** Where `path` in the backing folder holds chunk `hash`, if it is recorded (as of this transaction). */
  location(hash: string, path: string): number | undefined {
    const key = hash + path;
    return this.locRows.has(key) ? this.locRows.get(key) : readNow(this.idx.locs, key);
  }

  /** Records (or with undefined, forgets) a location and keeps the row's count in step. The row must exist. */
  setLocation(hash: string, path: string, offset: number | undefined): void {
    const before = this.location(hash, path);
    if (before === offset) return;
    const row = this.chunk(hash);
    if (!row) throw new Error(`index inconsistency: location of chunk ${hash} without a row`);
    row.locs = (row.locs ?? 0) + (before === undefined ? 1 : 0) - (offset === undefined ? 1 : 0);
    if (row.locs === 0) delete row.locs;
    if (offset !== undefined && (!row.at || row.at.path === path)) row.at = { path, offset };
    else if (offset === undefined && row.at?.path === path) delete row.at;
    this.setChunk(hash, row);
    const key = hash + path;
    this.locRows.set(key, offset);
    if (offset === undefined) this.ops.push({ type: 'del', sublevel: this.idx.locs, key });
    else this.ops.push({ type: 'put', sublevel: this.idx.locs, key, value: offset });
  }

  /** Forgets every location of a chunk (before its row goes). */
  async dropLocations(hash: string): Promise<void> {
    if (!this.chunk(hash)?.locs) return;
    for (const l of await this.locationsOf(hash)) this.setLocation(hash, l.path, undefined);
  }

  /** Every location of a chunk as of this transaction. */
  async locationsOf(hash: string): Promise<Location[]> {
    const committed = await this.idx.locationsOf(hash);
    const out = new Map(committed.map((l) => [l.path, l.offset]));
    for (const [key, offset] of this.locRows) {
      if (!key.startsWith(hash)) continue;
      if (offset === undefined) out.delete(key.slice(hash.length));
      else out.set(key.slice(hash.length), offset);
    }
    return [...out].map(([path, offset]) => ({ path, offset }));
  }

  putFile(r: FileRecord): void {
    if (!r.deleted) this.idx.noteFilePath(r.path);
    this.ops.push({ type: 'put', sublevel: r.deleted ? this.idx.tombs : this.idx.files, key: r.path, value: encodeFile(r) });
  }

  delFile(path: string, deleted: boolean): void {
    this.ops.push({ type: 'del', sublevel: deleted ? this.idx.tombs : this.idx.files, key: path });
  }

  putChange(seq: number, path: string): void {
    this.ops.push({ type: 'put', sublevel: this.idx.changes, key: seqKey(seq), value: path });
  }

  delChange(seq: number): void {
    this.ops.push({ type: 'del', sublevel: this.idx.changes, key: seqKey(seq) });
  }

  putHeat(path: string, heat: Heat): void {
    this.ops.push({ type: 'put', sublevel: this.idx.heat, key: path, value: heat });
  }

  delHeat(path: string): void {
    this.ops.push({ type: 'del', sublevel: this.idx.heat, key: path });
  }

  putHot(key: string, path: string): void {
    this.ops.push({ type: 'put', sublevel: this.idx.hot, key, value: path });
  }

  delHot(key: string): void {
    this.ops.push({ type: 'del', sublevel: this.idx.hot, key });
  }

  putMeta(key: string, value: unknown): void {
    this.ops.push({ type: 'put', sublevel: this.idx.meta, key, value });
  }

  /** Runs after the batch is durable (e.g. unlinking chunk files the batch stopped referencing). */
  afterCommit(fn: () => void | Promise<void>): void {
    this.after.push(fn);
  }

  /** Writes the batch (with the counters). `sync` for anything a crash must not lose. */
  async write(sync: boolean): Promise<void> {
    if (this.ops.length === 0) return;
    this.ops.push({ type: 'put', sublevel: this.idx.meta, key: 'counters', value: this.counters });
    try {
      await this.idx.db.batch(this.ops as never, { sync });
    } catch (err) {
      throw mapIoError(err, 'writing the index');
    }
  }

  /**
   * Starts the post-commit work, in order, each step's synchronous part before the next (an unlink registers itself
   * with the engine before it yields, so writers of the same chunk wait for it); resolves once all of it is done. Best
   * effort: a failed unlink leaves an unreferenced file that gc removes later.
   */
  runAfter(): Promise<void> {
    const running: Promise<unknown>[] = [];
    for (const fn of this.after) {
      try {
        const r = fn();
        if (r instanceof Promise) running.push(r.catch(() => {}));
      } catch {
        // see above
      }
    }
    return Promise.all(running).then(() => {});
  }
}
