// The hub's write-once push. A large file pushed by a peer was written twice on the hub: its chunks into chunk files
// as they arrived, then, after the commit, the whole file again into the root. Chunks uploaded with a place
// (ChunkPlace in sync.proto) now go straight into a staging file beside the path, named by the version's whole-file
// hash and starting with the temp prefix (the watcher and the scan pass it by), and once durable they are recorded as
// held there (Store.noteStaged): have/want counts them and a resumed upload skips them. When that version is written
// into the root, the root writer fills in what the upload did not bring (chunks the hub held already) and puts the
// staging file in place: each pushed byte is written once.
//
// Staging files no commit claims are left to the store's gc (their rows are unreferenced, so it drops them and their
// locations after its grace period) and to the sweep that follows it, at the hub's start and every few hours, which
// removes staging files without locations and forgets locations whose staging file is gone.

import fs from 'node:fs/promises';
import fsCb from 'node:fs';
import path from 'node:path';
import { AlignedArena, O_DIRECT, validateName, writeAll, type FileRecord, type Store } from '../../store/index.ts';
import { absoluteName, closeFd, diskStatOf, fchmod, fdatasync, ftruncate, futimes, isLiveTemp, newTempName, openFd, tempDone, TEMP_PREFIX, walkTemps, type DirSyncs, type DiskStat, type ReadDir } from './root-files.ts';
import { putInPlaceSync, type Expected } from './put-in-place.js';
import { bytesToHash, type Place, type RemoteFile } from './wire.ts';
import { localRun, WholeHashes, workerRun } from './whole-hashes.ts';
import { DIRECT_ARENA_BYTES, StageWriter } from './stage-writer.ts';
import { ignoredPath } from './errors.ts';

export const STAGE_PREFIX = `${TEMP_PREFIX}stage-`;
/** Smaller files are not staged: a staging file costs more than it saves for a file of a few chunks. */
export const STAGE_MIN_BYTES = 8 * 1024 * 1024;
/** A staging file nothing counts on is removed once it has not been written to for this long. */
const STALE_MS = 60 * 60 * 1000;

/** The root-relative staging file of one version (whole-file hash) of `filePath`: in the same directory. */
export function stagingPath(filePath: string, fileHash: string): string {
  const dir = path.posix.dirname(filePath);
  return dir === '.' ? STAGE_PREFIX + fileHash : `${dir}/${STAGE_PREFIX}${fileHash}`;
}

/** The staging file a version of a file would have: only files of STAGE_MIN_BYTES and more are staged. */
function stageOfVersion(v: { path: string; size: number; hash: string }): string | undefined {
  return v.size >= STAGE_MIN_BYTES && v.hash ? stagingPath(v.path, v.hash) : undefined;
}

export function isStagingName(name: string): boolean {
  return name.startsWith(STAGE_PREFIX);
}

/** A checked chunk bound for a staging file. */
export interface StagedWrite {
  stage: string;
  hash: string;
  data: Uint8Array;
  offset: number;
  /** The size of the whole file (Place.fileSize). */
  fileSize: number;
}

export class Staging {
  readonly #root: string;
  readonly #store: Store;
  readonly #dirs: DirSyncs;
  /** Upload calls writing into each staging file. */
  readonly #claims = new Map<string, number>();
  /**
   * Staging files being put in place, or put there and not unlinked yet (their name is a second name of a root file
   * until then): no upload may write into them, and a file is put in place only while no upload writes into it.
   */
  readonly #placing = new Set<string>();
  /** Whole-file hashes of staging files whose chunks arrived in order, so that their commit need not read them back. */
  readonly #whole: WholeHashes;
  /**
   * Chunks are written into staging files around the page cache while the file system takes it: a pushed gigabyte
   * written through it cost the hub ~2.5 s of system time in fresh pages on the dev VM, and evicts what is hot on the
   * Pi. `openDirect` opens an existing staging file for direct writes (injectable, so tests can refuse it).
   */
  readonly direct: { allowed: boolean; readonly arena: AlignedArena; readonly open: (abs: string) => Promise<number> };

  /**
   * Paths the hub leaves out of the sync: a chunk placed there ends its upload (INVALID_ARGUMENT), so that a pi does
   * not send the rest of a large file whose commit would be refused (it fails that file for good).
   */
  readonly #ignores: (path: string) => boolean;

  /** Lists a directory of the root (tests make one unreadable with it). */
  readonly #readDir: ReadDir | undefined;

  constructor(root: string, store: Store, dirs: DirSyncs, opts: { openDirect?: (abs: string) => Promise<number>; ignores?: (path: string) => boolean; readDir?: ReadDir } = {}) {
    this.#root = root;
    this.#ignores = opts.ignores ?? (() => false);
    this.#readDir = opts.readDir;
    this.#store = store;
    this.#dirs = dirs;
    this.#whole = new WholeHashes(() => {
      const session = store.hashSession();
      return session ? workerRun(session) : localRun();
    });
    this.direct = {
      allowed: O_DIRECT !== undefined,
      arena: new AlignedArena(DIRECT_ARENA_BYTES),
      open: opts.openDirect ?? ((abs) => openFd(abs, fsCb.constants.O_WRONLY | O_DIRECT!)),
    };
  }

  /**
   * The staging file a chunk with this place goes to; undefined when the place cannot be used (stored as usual).
   * Throws for a place the hub leaves out of the sync.
   */
  stageOf(place: Place | undefined, length: number): string | undefined {
    if (!place || place.fileSize < BigInt(STAGE_MIN_BYTES) || place.fileHash.length !== 32) return undefined;
    if (place.offset < 0n || place.offset + BigInt(length) > place.fileSize) return undefined;
    try {
      validateName(place.path);
    } catch {
      return undefined;
    }
    if (this.#ignores(place.path)) throw ignoredPath(place.path);
    return stagingPath(place.path, bytesToHash(place.fileHash));
  }

  /**
   * Whether `f`'s chunks, exactly as listed, arrived into its staging file in order and hashed to its whole-file hash
   * (whole-hashes.ts): then its commit need not read the file back to check that.
   */
  vouches(f: RemoteFile): boolean {
    const stage = stageOfVersion(f);
    return stage !== undefined && this.#whole.vouches(stage, f.chunks);
  }

  /**
   * For StageWriter: whether a chunk on its way into its staging file matches its hash, taken with the whole-file hash
   * (whole-hashes.ts); `w.data` may be replaced by the buffer now holding its bytes.
   */
  async check(w: StagedWrite): Promise<boolean> {
    const fileHash = w.stage.slice(w.stage.lastIndexOf(STAGE_PREFIX) + STAGE_PREFIX.length);
    const out = await this.#whole.check(w.stage, fileHash, w.fileSize, w.offset, w.hash, w.data);
    if (!out) return this.#store.checkChunk(w.hash, w.data);
    w.data = out.data;
    return out.ok;
  }

  /** Writes into staging files for one upload call; close() it when the call ends. */
  writer(): StageWriter {
    return new StageWriter(this.#root, this.#store, this.#dirs, this);
  }

  /** For StageWriter: an upload call starts writing into `stage`; false while that file is being put in place. */
  claim(stage: string): boolean {
    if (this.#placing.has(stage)) return false;
    this.#claims.set(stage, (this.#claims.get(stage) ?? 0) + 1);
    return true;
  }

  /** For StageWriter: that upload call is done with `stage`. */
  release(stage: string): void {
    const n = (this.#claims.get(stage) ?? 1) - 1;
    if (n > 0) this.#claims.set(stage, n);
    else this.#claims.delete(stage);
  }

  /**
   * Puts the staging file of `rec` at `abs` (already checked with safePath), if there is one: the chunks it does not
   * hold at their offsets are copied in from the store, then permissions, mtime, fdatasync, and a hard link under a
   * temp name renamed over the path, so the staging name still holds the bytes until the store has moved their
   * locations (noteWritten's `from`; then unlink() it). Returns the staging path and the stat of what was put in
   * place (writeAtomic says why from the descriptor), or undefined when there is no staging file (the caller writes
   * the file as usual). The path must still hold `expect` (what the caller saw there) when the file is put in
   * place: RootChanged otherwise, and the staging file stays for the next try.
   */
  async place(rec: FileRecord, abs: string, expect: Expected): Promise<{ stage: string; written: DiskStat } | undefined> {
    const stage = stageOfVersion(rec);
    // Checked and taken before the first await: an upload into it, or another path of the same content and directory
    // being put in place, makes this file copy instead (two root files must never share an inode).
    if (stage === undefined || this.#busy(stage)) return undefined;
    this.#placing.add(stage);
    let written: DiskStat | undefined;
    try {
      written = await this.#place(rec, abs, stage, expect);
      return written && { stage, written };
    } finally {
      if (!written) this.#placing.delete(stage);
    }
  }

  async #place(rec: FileRecord, abs: string, stage: string, expect: Expected): Promise<DiskStat | undefined> {
    const stageAbs = path.join(path.dirname(abs), path.posix.basename(stage));
    let fd: number;
    try {
      fd = await openFd(stageAbs, fsCb.constants.O_WRONLY);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    let written: DiskStat;
    try {
      // A second name of a root file already (put in place before a crash that came before its unlink): not used.
      if (fsCb.fstatSync(fd).nlink > 1) return undefined;
      const at = await this.#store.locatedAt(stage, rec.chunks.map((c) => c.hash));
      let offset = 0;
      for (let i = 0; i < rec.chunks.length; i++) {
        const c = rec.chunks[i]!;
        if (at[i] !== offset) await writeAll(fd, await this.#store.getChunk(c.hash), offset);
        offset += c.size;
      }
      await ftruncate(fd, rec.size);
      await fchmod(fd, rec.mode);
      const mtime = Math.floor(rec.mtimeMs) / 1000;
      await futimes(fd, mtime, mtime);
      await fdatasync(fd);
      written = diskStatOf(fsCb.fstatSync(fd));
    } finally {
      await closeFd(fd);
    }
    const tmp = path.join(path.dirname(abs), newTempName());
    try {
      await fs.link(stageAbs, tmp);
      putInPlaceSync(tmp, abs, expect);
    } catch (err) {
      await fs.rm(tmp, { force: true });
      throw err;
    } finally {
      tempDone(tmp);
    }
    await this.#dirs.sync(path.dirname(abs));
    return written;
  }

  /**
   * The staging file of `rec` if there is one on disk (e.g. left beside a file written before a crash), and no upload
   * writes into it or puts it in place right now.
   */
  existing(rec: FileRecord, abs: string): string | undefined {
    const stage = stageOfVersion(rec);
    if (stage === undefined || this.#busy(stage)) return undefined;
    return fsCb.existsSync(path.join(path.dirname(abs), path.posix.basename(stage))) ? stage : undefined;
  }

  /** Removes a staging file whose locations the store has dropped (after place()). */
  async unlink(stage: string): Promise<void> {
    await fs.rm(absoluteName(this.#root, stage), { force: true });
    this.#placing.delete(stage);
  }

  /**
   * Forgets the locations of staging files that are gone (a crash after the rename), and removes staging files that
   * hold nothing the store counts on (gc dropped their unreferenced chunks, or a crash came before their first chunks
   * were recorded) once nobody has written into them for STALE_MS. A staging file an upload writes into is claimed,
   * and one it wrote into lately is too young: neither is touched. Run at the hub's start and, after the store's gc,
   * periodically (HubRoot.maintain), and soon after a write into the root failed because its path changed
   * (HubRoot.strays). Also removes the root's other temp files (of a write into the root, see root-files.ts) that no
   * write of this process uses (newTempName): a hub killed mid-write left them, or a write whose folder was moved on
   * the NAS in the middle, and nothing would ever finish or remove them. Returns how many files (staging and others)
   * and locations went.
   */
  async sweep(now = Date.now()): Promise<{ files: number; locations: number }> {
    const out = { files: 0, locations: 0 };
    const located = await this.#store.locatedPaths(isStagingName);
    for (const [stage, hashes] of located) {
      if (this.#busy(stage)) continue;
      const exists = await fs.stat(absoluteName(this.#root, stage)).then(
        () => true,
        () => false,
      );
      if (exists || this.#busy(stage)) continue;
      await this.#store.forgetLocations(stage, hashes);
      out.locations += hashes.length;
    }
    for await (const t of walkTemps(this.#root, { skip: this.#ignores, ...(this.#readDir ? { readDir: this.#readDir } : {}) })) {
      if (!isStagingName(path.posix.basename(t.rel))) {
        const st = await fs.stat(t.abs).catch(() => null);
        if (st && !isLiveTemp(t.rel)) {
          await fs.rm(t.abs, { force: true });
          out.files += 1;
        }
        continue;
      }
      if (located.has(t.rel)) continue;
      const st = await fs.stat(t.abs).catch(() => null);
      if (!st || now - st.mtimeMs < STALE_MS || this.#busy(t.rel)) continue;
      fsCb.rmSync(t.abs, { force: true }); // synchronous: no upload can claim it between the check and the removal
      out.files += 1;
    }
    return out;
  }

  #busy(stage: string): boolean {
    return this.#claims.has(stage) || this.#placing.has(stage);
  }
}
