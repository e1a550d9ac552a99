// The hub's model of its root folder: keeps the store (what peers see) and the folder (what BaluHost and Samba see)
// in step, in both directions, without ever overwriting a change it has not read:
//   refresh(path)      disk -> store: a file changed on disk is ingested as a new version; a file gone from disk
//                      becomes a deletion. If the store moved on meanwhile (a peer committed), conflict rules apply.
//   materialize(path)  store -> disk: the current version is written atomically with its mtime, or removed.
// Both run under the path's lock; the disk index (disk-index.ts) says whether a file on disk is one we know.
// The store keeps the root's bytes in the root (its backing folder, see store/backing.ts): files read from disk are
// ingested as located, and a version written into the root is reported back (noteWritten), so its chunk files go.

import { resolve } from 'node:path';
import type { Store, FileRecord, WrittenFile } from '../../store/index.ts';
import { firstOffsets, isStoreError } from '../../store/index.ts';
import type { Logger } from '../log.ts';
import type { SyncState } from './state.ts';
import type { PathLocks } from './locks.ts';
import type { DiskIndex } from './disk-index.ts';
import { matches } from './disk-index.ts';
import { commitNewFiles, type NewFile } from './new-files.ts';
import { SweepSoon } from './sweep-soon.ts';
import { GroupFlush } from './group-flush.ts';
import { absoluteName, DirectWrites, DirSyncs, holds, pathChanged, readRootFile, removeFile, safePath, statFile, writeAtomic, type DiskStat, type ReadDir } from './root-files.ts';
import { Staging } from './staging.ts';
import { RootFileWriter } from './root-file-writer.ts';
import { SMALL_FILE_BYTES, SmallFiles } from './small-files.ts';
import { adoptChunkFiles } from './adopt-chunk-files.ts';
import { followStore } from './follow-store.ts';
import { scanRoot } from './root-scan.ts';
import { auditRoot } from './root-audit.ts';
import { isSyncError } from './errors.ts';
import { LostVersions } from './lost-versions.ts';
import { originOf, recordRootConflict, resolveDiskConflict, type DiskConflictDeps } from './disk-conflict.ts';
import { IgnoreRules } from './ignore.ts';
import { KeptVersions, VERSIONS_DIR, type KeptVersionsOptions } from './versions.ts';
import { dropIgnoredRecords, forgetIgnoredLocked } from './hub-ignore.ts';

export interface HubRootOptions {
  store: Store;
  state: SyncState;
  disk: DiskIndex;
  locks: PathLocks;
  root: string;
  log: Logger;
  /** Lists a directory of the root (tests make one unreadable with it). */
  readDir?: ReadDir;
  /** Writes small files in batches (tests pass a closed one: the hub then writes them itself). */
  smallFiles?: RootFileWriter;
  /** Patterns of paths left out of the sync (BALUPI_HUB_IGNORE; none if unset; the kept versions' folder always). */
  ignore?: readonly string[];
  /** How long and how much of what a peer's change deletes or replaces is kept (versions.ts; unset: nothing). */
  keep?: KeptVersionsOptions;
}

/** Writes of one file whose path changes on disk under each of them before the root writer gives up for now. */
const MATERIALIZE_TRIES = 3;

/** Sequences of commitNew's versions remembered for the root writer (more: it checks them as any other). */
const MAX_PLACED = 16_384;

export class HubRoot {
  private readonly o: HubRootOptions;
  private readonly dirs = new DirSyncs();
  private readonly direct = new DirectWrites();
  /** Small files: linked from their chunk files, or written in batches by a worker thread (small-files.ts). */
  private readonly smallFiles: SmallFiles;
  /** Staging files of pushed large files (write-once push); only when the store keeps the root's bytes in the root. */
  readonly staging: Staging | undefined;
  /** The store keeps the root's bytes in the root (StoreOptions.backingDir) rather than in chunk files as well. */
  private readonly located: boolean;
  /** Versions commitNew put in place and recorded itself, by sequence: the root writer has nothing to do for them. */
  private readonly placed = new Set<number>();
  /** Versions written into the root, told to the store in shared transactions (one durable write for many files). */
  private written: WrittenFile[] = [];
  private readonly noteGroup: GroupFlush;
  /** Versions that wait for a peer to send bytes lost from the root; the runtime starts it (lost-versions.ts). */
  readonly lost: LostVersions;
  /** The sweep, soon after a write failed because its path changed: it may have left a temp file (sweep-soon.ts). */
  readonly strays: SweepSoon;
  readonly ignore: IgnoreRules;
  /** Files a peer's change deleted or replaced, kept for a while (versions.ts). */
  readonly versions: KeptVersions;
  /** What resolving a disk edit against a peer's version needs of this (disk-conflict.ts). */
  private readonly conflicts: DiskConflictDeps;

  constructor(opts: HubRootOptions) {
    this.o = opts;
    this.ignore = new IgnoreRules([...(opts.ignore ?? []), `/${VERSIONS_DIR}`]);
    this.versions = new KeptVersions(opts.root, { days: 0, ...opts.keep, log: opts.log });
    this.located = opts.store.backingDir !== undefined && resolve(opts.store.backingDir) === resolve(opts.root);
    const writer = opts.smallFiles ?? new RootFileWriter({ blake3: opts.store.stats().hasher });
    this.smallFiles = new SmallFiles({ store: opts.store, writer, located: this.located, dirs: this.dirs, direct: this.direct });
    this.staging = this.located ? new Staging(opts.root, opts.store, this.dirs, { ignores: (p) => this.ignore.ignores(p), ...(opts.readDir ? { readDir: opts.readDir } : {}) }) : undefined;
    this.lost = new LostVersions(opts);
    this.conflicts = { ...opts, located: this.located, lost: this.lost, heldInFile: (p, r) => this.heldInFile(p, r), materializeLocked: (p) => this.materializeLocked(p) };
    this.strays = new SweepSoon(() => this.sweepStaging(), opts.log);
    this.noteGroup = new GroupFlush(async () => {
      const items = this.written;
      this.written = [];
      if (items.length === 0) return;
      const noted = await this.o.store.noteWritten(items, { awaitUnlinks: false });
      // A staging file goes once the store reads its bytes from the path instead. If the path moved on meanwhile, the
      // store still counts on the staging file (the newer version may share chunks), so it stays for gc and the sweep.
      await Promise.all(items.map((it, i) => (noted[i] && it.from !== undefined ? this.staging?.unlink(it.from) : undefined)));
    });
  }

  /** At start, before the scan: temp files of an earlier run and staging files nothing can claim any more go (staging.ts). */
  async sweepStaging(): Promise<void> {
    if (!this.staging) return;
    const swept = await this.staging.sweep();
    if (swept.files + swept.locations > 0) this.o.log.info(swept, 'hub root: removed stale temp and staging files');
  }

  /**
   * Periodic upkeep (SyncRuntime runs it every few hours): the store's gc drops chunks no file references any more,
   * among them those of staging files no commit claimed (an upload abandoned: the file changed on the pi meanwhile),
   * and the sweep then removes such staging files from the root.
   */
  async maintain(): Promise<void> {
    if (!this.staging) return;
    const gc = await this.o.store.gc();
    if (gc.stagedChunks + gc.orphanFiles + gc.tempFiles > 0) this.o.log.info(gc, 'hub store: garbage collected');
    await this.sweepStaging();
    await this.expireVersions();
  }

  /** Kept versions past their days, or past the bound in bytes, go (versions.ts): at start and in the upkeep. */
  async expireVersions(): Promise<void> {
    const expired = await this.versions.expire();
    if (expired.files > 0) this.o.log.info(expired, 'hub root: removed kept versions past their time or the bound');
  }

  /**
   * The root's file at `path` holds `version` now: once the store knows, its chunk files go. Not waited for here: the
   * note queues for the store's lock behind the transactions of incoming uploads, and the writer should not wait
   * with it (notesWritten() does). Until then, or if it fails, the chunk files merely stay.
   */
  private noteWritten(path: string, version: number, verify = false, from?: string): void {
    if (!this.located) return;
    this.written.push({ path, version, verify, ...(from === undefined ? {} : { from }) });
    this.noteGroup.flush().catch((err: unknown) => this.o.log.warn({ err }, 'hub root: could not tell the store about written files; their chunk files stay'));
  }

  /** Resolves once the store knows about every file written so far. */
  async notesWritten(): Promise<void> {
    await this.noteGroup.flush().catch(() => {});
  }

  get root(): string {
    return this.o.root;
  }

  refresh(path: string): Promise<void> {
    return this.o.locks.run(path, () => this.refreshLocked(path));
  }

  async materialize(path: string): Promise<void> {
    await this.o.locks.run(path, () => this.materializeLocked(path));
    await this.notesWritten();
  }

  /**
   * Reads the whole folder (root-scan.ts; ignored paths are passed by), then writes again what the root writer passed
   * and the root lacks (root-audit.ts): at start, and at each rescan.
   */
  async scan(): Promise<{ files: number; skipped: number }> {
    const { root, disk, log, readDir } = this.o;
    const ignores = (p: string) => this.ignore.ignores(p);
    const scanned = await scanRoot({ root, disk, log, refresh: (p) => this.refreshSafely(p), ...(readDir ? { readDir } : {}), skip: ignores });
    await auditRoot({ ...this.o, ignores, repair: (p) => this.refreshSafely(p).then(() => this.materialize(p)) });
    return scanned;
  }

  /** At start, before the scan: records of paths the rules have come to ignore leave the sync (hub-ignore.ts). */
  dropIgnored(): Promise<number> {
    return dropIgnoredRecords(this.o, this.ignore);
  }

  /** refresh(), logging instead of throwing for names the store cannot take (e.g. a file name with a newline). */
  async refreshSafely(path: string): Promise<void> {
    try {
      await this.refresh(path);
    } catch (err) {
      if (isStoreError(err, 'invalid_name')) this.o.log.warn({ path }, 'hub root: file name not syncable, skipped');
      else if ((err as NodeJS.ErrnoException).code === 'ENOENT') await this.refresh(path).catch(() => {});
      else throw err;
    }
  }

  private async refreshLocked(path: string): Promise<void> {
    const { store, disk, state } = this.o;
    // A known file moved under an ignored name (into the trash, say) is gone as far as the sync goes; its file stays.
    if (this.ignore.ignores(path)) return void (await forgetIgnoredLocked(store, disk, path));
    const abs = await safePath(this.o.root, path).catch(async (err: unknown) => {
      // A file the hub knew, below a file now (its folder was replaced by one): gone. Anything else below a file or a
      // symlink is refused, as a peer's write there is.
      if (isSyncError(err, 'unsafe_path') && err.details?.belowFile === true && (await disk.get(path)) !== undefined) return null;
      throw err;
    });
    for (let attempt = 0; attempt < 5; attempt++) {
      const st = abs === null ? null : await statFile(abs);
      const known = await disk.get(path);
      const rec = await store.record(path);
      if (!st || abs === null) {
        // The version the disk held. Without a disk entry, the store's version if its bytes lay in this very file (a
        // crash came between the store's commit of a read and the disk entry); otherwise never on disk as far as we
        // know (a peer's file may be on its way).
        const held = known?.v ?? (rec && (await this.heldInFile(path, rec)) ? rec.version : undefined);
        if (held === undefined) return;
        if (rec && !rec.deleted && held !== rec.version) {
          // Deleted on disk while a peer changed it: the modification wins (the hub's deletion lost); write it back
          // (without the disk entry, which would have the writer wait for the watcher to read the removal).
          if (known) await disk.del(path);
          await recordRootConflict(this.o, path, null, state.peerId, await originOf(state, path), 'modified_vs_deleted');
          return this.materializeLocked(path);
        }
        if (rec && !rec.deleted) {
          try {
            await store.delete(path, { baseVersion: rec.version });
          } catch (err) {
            if (isStoreError(err, 'conflict')) continue;
            throw err;
          }
        }
        // Only now: a crash between dropping the entry and the deletion left a version that the next start's scan
        // could not see was gone, on the pis for good (soak seed 5607: hub killed while it read a folder's move).
        if (known) await disk.del(path);
        return;
      }
      if (matches(st, known)) return; // unchanged since we last read or wrote it
      if (rec && !rec.deleted && matches(st, rec)) {
        await disk.set(path, st, rec.version);
        return;
      }
      // The disk has content the store does not: a local edit. Based on the version the disk held (0: a new file).
      const base = known && known.v > 0 ? known.v : 0;
      const storeMovedOn = rec !== undefined && rec.version !== base && !(rec.deleted && base === 0);
      try {
        if (storeMovedOn && !rec.deleted) {
          if (await resolveDiskConflict(this.conflicts, path, abs, st, rec)) return;
          continue;
        }
        const result = await store.ingest(path, readRootFile(abs, st.size), { mtimeMs: st.mtimeMs, mode: st.mode }, { baseVersion: rec?.version ?? 0, located: this.located });
        if (storeMovedOn) await recordRootConflict(this.o, path, null, await originOf(state, path), state.peerId, 'modified_vs_deleted'); // a peer's deletion lost
        await state.setOrigin(path, state.peerId);
        const after = await statFile(abs);
        // The disk held this version when it was read (with the stat from before the read): recorded even when the
        // file was written to meanwhile, so that the next read is based on it. Otherwise that read found the store
        // ahead of the disk index and took the hub's own version for a peer's: a conflict copy of a half-written file.
        await disk.set(path, st, result.file.version);
        if (!matches(after, st)) continue; // written to while we read it: read again
        return;
      } catch (err) {
        if (isStoreError(err, 'conflict')) continue;
        if (isStoreError(err, 'path_conflict') && (await this.readReplaced(path, err.details?.file))) continue;
        throw err;
      }
    }
    this.o.log.warn({ path }, 'hub root: file keeps changing, will read it at its next change');
  }

  /** Whether the store has every chunk of `rec` (live, not empty) at its place in the root file at `path`. */
  private async heldInFile(path: string, rec: FileRecord): Promise<boolean> {
    if (!this.located || rec.deleted || rec.chunks.length === 0) return false;
    const first = firstOffsets(rec.chunks);
    const at = await this.o.store.locatedAt(path, [...first.keys()]);
    return [...first.values()].every((offset, i) => at[i] === offset);
  }

  /**
   * What keeps `path` out of the store (its file `blocker` where the directory of `path` now is, or its files below
   * `path` where `path` is now a file), if the disk no longer has it: read first, which deletes it. A folder that took
   * the place of a file of the same name (or the other way round) otherwise stayed out of the store, even after a
   * restart. True if anything was read.
   */
  private async readReplaced(path: string, blocker: unknown): Promise<boolean> {
    if (typeof blocker !== 'string') return false;
    // The blocker itself too: its deletion may be under way already (its disk entry gone, its record not yet).
    const candidates = new Set([blocker]);
    if (blocker.startsWith(`${path}/`)) for await (const p of this.o.disk.paths(path)) candidates.add(p);
    const gone: string[] = [];
    for (const p of candidates) if ((await statFile(absoluteName(this.o.root, p))) === null) gone.push(p);
    for (const p of gone) await this.refresh(p);
    return gone.length > 0;
  }

  /** New files a peer sent with their bytes, written straight into place (new-files.ts); only with a located store. */
  async commitNew(items: NewFile[]): Promise<(FileRecord | undefined)[]> {
    if (!this.located || items.length === 0) return items.map(() => undefined);
    const placed = (r: FileRecord): void => {
      if (this.placed.size >= MAX_PLACED) this.placed.clear(); // versions superseded before the writer saw them
      this.placed.add(r.seq);
    };
    const { store, disk, locks, root } = this.o;
    const write = (abs: string, data: Uint8Array, meta: { mtimeMs: number; mode: number; size: number }) =>
      this.smallFiles.writeBytes(abs, [data], meta, null).catch((err: unknown) => {
        if (pathChanged(err)) this.strays.soon();
        throw err;
      });
    return commitNewFiles({ store, disk, locks, root, write, placed }, items);
  }

  /**
   * Writes the store's version of `path` into the folder. Every write replaces only what was on disk when this looked
   * (put-in-place.js): a person or program that writes the path meanwhile makes it throw RootChanged, and the next try
   * reads their change first, so that both versions survive.
   */
  private async materializeLocked(path: string): Promise<void> {
    if (this.ignore.ignores(path)) return; // never written nor removed: the sync leaves it alone (hub-ignore.ts)
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.materializeOnce(path);
      } catch (err) {
        // A chunk whose bytes are gone: changed on disk (corrupt_chunk), or no longer held anywhere (not_found). If
        // settle finds them held elsewhere after all (the read was of a root file being saved over, and a chunk file
        // or another root file still holds them: it forgot the stale place), the next try reads them from there.
        // Before, that version was never written (soak seed 4205, two pis).
        const lostBytes = isStoreError(err, 'corrupt_chunk') || isStoreError(err, 'not_found');
        if (lostBytes && (await this.lost.settle(path))) return;
        // A change of the path: looked at again (found soak-testing: the version was never written).
        if (!lostBytes && !pathChanged(err)) throw err;
        if (!lostBytes) this.strays.soon();
        if (attempt === MATERIALIZE_TRIES) {
          if (lostBytes) throw err;
          // Still being written to: the watcher's event for the next change brings the path back here.
          this.o.log.warn({ path }, 'hub root: the file kept changing on disk while the hub wrote it; left as it is');
          return;
        }
      }
    }
  }

  private async materializeOnce(path: string): Promise<void> {
    const { store, disk } = this.o;
    const abs = await safePath(this.o.root, path);
    let st = await statFile(abs);
    let known = await disk.get(path);
    let rec = await store.record(path);
    // Removed since it was last read or written here, by someone else: their removal is read by the watcher (after the
    // other changes around it: a move's new paths first). Written back, a file renamed on the NAS while this writer
    // caught up with the store (after a start, say) reappeared under its old name beside the new one.
    if (!st && known) {
      // Logged: soak seeds 3013 and 4607 left versions unwritten without a word, and this is one way to get there.
      if (rec && !rec.deleted && rec.version !== known.v) this.o.log.info({ path, version: rec.version }, 'hub root: not written: its file went from disk unseen; waiting for the watcher to read that');
      return;
    }
    if (st && !matches(st, known) && !(rec && !rec.deleted && matches(st, rec))) {
      // Someone changed the file and we have not read it yet: read it first, so that nothing is lost.
      await this.refreshLocked(path);
      st = await statFile(abs);
      known = await disk.get(path);
      rec = await store.record(path);
      if (st && !matches(st, known)) return; // still changing; its next event brings us back
    }
    if (!rec || rec.deleted) {
      const present = st;
      if (present) await this.versions.around(abs, path, present.size, () => removeFile(this.o.root, abs, present));
      await disk.del(path);
      return;
    }
    if (st && matches(st, rec)) {
      if (known?.v !== rec.version) await disk.set(path, st, rec.version);
      this.noteWritten(path, rec.version, true, this.staging?.existing(rec, abs)); // e.g. written before a crash that came before the note
      return;
    }
    if (!st && !holds(abs, null)) {
      // statFile sees only regular files: a directory or a symlink of someone's stands there. Not replaced, and not
      // written in vain (the write would end in RootChanged).
      this.o.log.warn({ path }, 'hub root: a directory or link stands where this file goes; left as it is');
      return;
    }
    if (rec.state !== 'local') {
      this.o.log.info({ path }, 'hub root: not written yet; waiting for a peer to send its bytes');
      return;
    }
    const current = rec;
    await this.versions.around(abs, path, st?.size, () => this.write(path, abs, current, st));
  }

  /** Writes `rec` at `path` over what `st` says is there (materializeOnce, which decided that it must). */
  private async write(path: string, abs: string, rec: FileRecord, st: DiskStat | null): Promise<void> {
    const { store, disk } = this.o;
    const staged = await this.staging?.place(rec, abs, st);
    if (staged !== undefined) {
      await disk.set(path, staged.written, rec.version);
      this.noteWritten(path, rec.version, false, staged.stage);
      return;
    }
    let written: DiskStat | undefined;
    let version = rec.version;
    if (rec.size <= SMALL_FILE_BYTES) {
      written = await this.smallFiles.write(abs, rec, st);
    } else {
      const opened = await store.openRead(path, undefined, { reuseBuffers: true, touch: false });
      const r = opened.record;
      version = r.version;
      written = await writeAtomic(abs, opened.stream, { mtimeMs: Math.floor(r.mtimeMs), mode: r.mode, size: r.size }, { dirs: this.dirs, direct: this.direct, expect: st });
    }
    await disk.set(path, written, version);
    this.noteWritten(path, version);
  }

  /** Once per data directory, the chunk files of files already in the folder go (adopt-chunk-files.ts). */
  adoptChunkFiles(signal?: AbortSignal): Promise<{ files: number; bytes: number }> {
    if (!this.located) return Promise.resolve({ files: 0, bytes: 0 });
    return adoptChunkFiles({ store: this.o.store, disk: this.o.disk, state: this.o.state, root: this.o.root }, signal);
  }

  /** Writes every store change into the folder until `signal` aborts (follow-store.ts). */
  followStore(signal: AbortSignal, concurrency?: number): Promise<void> {
    const { store, state, log, locks } = this.o;
    return followStore({ store, state, log, locks, placed: this.placed, materializeLocked: (path) => this.materializeLocked(path), notesWritten: () => this.notesWritten() }, signal, concurrency);
  }
}
