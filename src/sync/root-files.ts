// The hub's root folder on disk. Names coming from peers are validated (store/names.ts) and every existing ancestor
// directory must be a real directory, not a symlink, so nothing a peer sends can write outside the root. Files are
// written atomically: a temp file in the same directory (named with TEMP_PREFIX, which the watcher ignores), fsync,
// permissions and mtime, rename, fsync of the directory (shared by files written at the same time). Large files are
// written around the page cache (store/direct-io.ts): a push of a gigabyte would otherwise fill it with bytes nobody
// reads now.

import fs from 'node:fs/promises';
import fsCb, { type Dirent } from 'node:fs';
import { Readable, Writable } from 'node:stream';
import { promisify } from 'node:util';
import path from 'node:path';
import { AlignedArena, DirectWriter, directUnsupported, fileSource, O_DIRECT, uniqueSuffix, validateName, writeAll, type AlignedSlot } from '../../store/index.ts';
import { SyncError } from './errors.ts';
import { GroupFlush } from './group-flush.ts';
import { holds, putInPlaceSync, RootChanged, type Expected } from './put-in-place.js';

export { holds, RootChanged, type Expected };

export const TEMP_PREFIX = '.balupi-tmp-';

/**
 * A write failed because its path changed on disk meanwhile: RootChanged, or ENOENT when the path's folder was removed
 * during the write (deleted or moved on the NAS), its temp file with it (which may then lie in the moved folder).
 */
export function pathChanged(err: unknown): boolean {
  return err instanceof RootChanged || (err as NodeJS.ErrnoException).code === 'ENOENT';
}

export function isOwnTemp(p: string): boolean {
  return path.basename(p).startsWith(TEMP_PREFIX);
}

/**
 * Names of the write temp files this process uses right now (names are unique per process and never reused). One in
 * the root that is not among them is a leftover: of an earlier run, or of a write whose folder was moved away on the
 * NAS in the middle (its rename failed, and its cleanup looked under the old name). See sweep-soon.ts.
 */
const liveTemps = new Set<string>();

/** A new temp file name (no directory), live until tempDone: registered before the file exists. */
export function newTempName(): string {
  const name = `${TEMP_PREFIX}${uniqueSuffix()}`;
  liveTemps.add(name);
  return name;
}

/** The temp file `tmp` (a name or a path) is renamed into place, removed, or left to the sweep. */
export function tempDone(tmp: string): void {
  liveTemps.delete(path.basename(tmp));
}

export function isLiveTemp(tmp: string): boolean {
  return liveTemps.has(path.basename(tmp));
}

export interface DiskStat {
  size: number;
  mtimeMs: number;
  mode: number;
}

/** Roots as given, resolved once (absolute, normalized: safePath appends names to them as they are). */
const resolvedRoots = new Map<string, string>();

/**
 * The absolute path of a root-relative name, refusing anything that could leave the root. validateName already
 * refuses absolute names and empty, "." and ".." segments, so the name appended to the resolved root is a normalized
 * path inside it, built without path.join / path.relative: those normalize character by character, and for the
 * thousands of names a push brings they were a sixth of what the hub allocated.
 */
export async function safePath(root: string, rel: string): Promise<string> {
  validateName(rel);
  let base = resolvedRoots.get(root);
  if (base === undefined) {
    base = path.resolve(root);
    if (resolvedRoots.size < 16) resolvedRoots.set(root, base);
  }
  const prefix = base === path.sep ? base : base + path.sep;
  for (let end = rel.indexOf('/'); end >= 0; end = rel.indexOf('/', end + 1)) {
    const dir = prefix + rel.slice(0, end);
    const st = lstatOrNull(dir);
    if (st === null) break; // does not exist yet: created as a real directory when written
    if (!st.isDirectory()) throw new SyncError('unsafe_path', `${rel}: ${rel.slice(0, end)} is not a directory (symlink or file)`, { details: { path: rel, belowFile: st.isFile() } });
  }
  return prefix + rel;
}

/** The size, whole-millisecond mtime and permission bits of a stat, as the disk index compares them. */
export function diskStatOf(st: fsCb.Stats): DiskStat {
  return { size: st.size, mtimeMs: Math.floor(st.mtimeMs), mode: st.mode & 0o7777 };
}

/** A regular file's size, mtime and permissions; null if missing or not a regular file. */
export async function statFile(abs: string): Promise<DiskStat | null> {
  const st = lstatOrNull(abs);
  return st?.isFile() ? diskStatOf(st) : null;
}

/**
 * lstat, synchronously: the root writer checks every path component and file it touches, thousands per second in a
 * burst of small files. The inodes are in the kernel's cache (a microsecond each), while each thread-pool round
 * trip costs a wake-up and a context switch on a 2-core machine. null when missing.
 */
function lstatOrNull(p: string): fsCb.Stats | null {
  try {
    // Without throwing for a missing file: most files a push writes are new, and an ENOENT error object (message,
    // stack) cost more than the lstat itself.
    return fsCb.lstatSync(p, { throwIfNoEntry: false }) ?? null;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return null;
    throw err;
  }
}

/**
 * temp file (write, permissions, mtime, fdatasync on one fd) -> rename -> fsync of the directory. With `dirs`, the
 * directory fsync is shared with the other writers of the moment (see DirSyncs); either way it is done before this
 * resolves, so the caller may record the file as written. `source` is piped into the file, so a store stream opened
 * with `reuseBuffers` reads each chunk into a reused buffer that goes back once its write has completed; a small
 * file's bytes may come as buffers instead (no stream, no pipe: a push writes thousands of such files). With
 * `direct`, a file of `meta.size` >= DIRECT_MIN_BYTES is written around the page cache when the file system allows.
 * Returns the written file's size, mtime and mode, taken from its descriptor before the rename: what the hub wrote,
 * even if someone edits the file the moment it appears (a later look would take that edit for the hub's own).
 * `expect` is what the caller saw at `abs` before it began (put-in-place.js): if someone wrote there meanwhile, this
 * throws RootChanged and replaces nothing.
 */
export async function writeAtomic(
  abs: string,
  source: Readable | readonly Uint8Array[],
  meta: { mtimeMs: number; mode: number; size?: number },
  opts: { dirs?: DirSyncs; direct?: DirectWrites; expect?: Expected } = {},
): Promise<DiskStat> {
  const dir = path.dirname(abs);
  const tmp = path.join(dir, newTempName());
  let written: DiskStat;
  try {
    written = await writeTemp(tmp, abs, source, meta, opts);
  } finally {
    tempDone(tmp);
  }
  await (opts.dirs ? opts.dirs.sync(dir) : syncDir(dir));
  return written;
}

/** writeAtomic's temp file, written, flushed and renamed to `abs`; removed if anything fails. */
async function writeTemp(tmp: string, abs: string, source: Readable | readonly Uint8Array[], meta: { mtimeMs: number; mode: number; size?: number }, opts: { direct?: DirectWrites; expect?: Expected }): Promise<DiskStat> {
  let written: DiskStat;
  const fd = await createInDir(tmp, () => openNew(tmp));
  try {
    const stream = source instanceof Readable ? source : undefined;
    const direct = stream && opts.direct && (meta.size ?? 0) >= DIRECT_MIN_BYTES ? await opts.direct.open(tmp) : undefined;
    try {
      if (direct) await opts.direct!.pipe(stream!, direct, fd);
      else if (stream) await pipeInto(stream, fd);
      else await writeParts(source as readonly Uint8Array[], fd);
      await fchmod(fd, meta.mode);
      await futimes(fd, meta.mtimeMs / 1000, meta.mtimeMs / 1000);
      await fdatasync(fd);
      written = diskStatOf(fsCb.fstatSync(fd)); // by descriptor: no path lookup in a directory others write into
    } finally {
      await closeFd(fd);
      if (direct) {
        await closeFd(direct.fd);
        direct.slot.release();
      }
    }
    putInPlaceSync(tmp, abs, opts.expect);
  } catch (err) {
    if (source instanceof Readable) source.destroy();
    await fs.rm(tmp, { force: true });
    throw err;
  }
  return written;
}

/** Files from this size on are written directly, each through a slot of DIRECT_SLOT_BYTES. */
const DIRECT_MIN_BYTES = 1024 * 1024;
const DIRECT_SLOT_BYTES = 4 * 1024 * 1024;

/**
 * Direct writes of a root's large files (one per root writer): the aligned memory their bytes pass through, and
 * whether the file system takes them. `openDirect` opens an existing temp file for writing with O_DIRECT (injectable,
 * so tests can refuse it).
 */
export class DirectWrites {
  /** False once the file system refused direct writes (opening with O_DIRECT, or a write, failed with EINVAL). */
  allowed = O_DIRECT !== undefined;
  readonly arena = new AlignedArena(2 * DIRECT_SLOT_BYTES);
  readonly #openDirect: (tmp: string) => Promise<number>;

  constructor(openDirect: (tmp: string) => Promise<number> = (tmp) => openFd(tmp, fsCb.constants.O_WRONLY | O_DIRECT!)) {
    this.#openDirect = openDirect;
  }

  /** A second descriptor of the new temp file, with O_DIRECT, and a slot to write from; undefined if none can be had. */
  async open(tmp: string): Promise<{ fd: number; slot: AlignedSlot } | undefined> {
    if (!this.allowed) return undefined;
    const slot = await this.arena.acquire(DIRECT_SLOT_BYTES);
    if (!slot) return undefined;
    try {
      return { fd: await this.#openDirect(tmp), slot };
    } catch (err) {
      slot.release();
      if (!directUnsupported(err)) throw err;
      this.allowed = false;
      return undefined;
    }
  }

  /**
   * Pipes `source` into the file: whole blocks through the direct descriptor, the last partial block through `fd`. A
   * write the file system refuses (EINVAL) fails this file, which is written the ordinary way when it is tried again.
   */
  async pipe(source: Readable, direct: { fd: number; slot: AlignedSlot }, fd: number): Promise<void> {
    const w = new DirectWriter(direct.fd, direct.slot);
    try {
      await pipeTo(source, (chunk) => w.write(chunk));
      const rest = await w.end();
      await writeAll(fd, rest.tail, rest.at);
    } catch (err) {
      if (directUnsupported(err)) this.allowed = false;
      throw err;
    }
  }
}

// Plain fds and callbacks, not FileHandle: a few thousand small files are written in a burst, and the promise
// wrappers cost more main-thread time per file than the system calls. The staging files use the same calls.
export const fchmod = promisify(fsCb.fchmod);
export const futimes = promisify(fsCb.futimes);
export const fdatasync = promisify(fsCb.fdatasync);
export const ftruncate = promisify(fsCb.ftruncate);
export const closeFd = promisify(fsCb.close);
export const openFd = promisify(fsCb.open);
const openNew = (file: string): Promise<number> => openFd(file, 'wx', 0o600);

/**
 * `create()`, which creates the file `abs`, and when it fails because the directory is missing, the directory and
 * then `create()` again. The directory is usually there: created only when the first try says it is not (one
 * round trip per file less).
 */
export async function createInDir(abs: string, create: () => Promise<number>): Promise<number> {
  try {
    return await create();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    await fs.mkdir(path.dirname(abs), { recursive: true });
    return create();
  }
}

/** Writes `parts` one after the other into `fd`. */
async function writeParts(parts: readonly Uint8Array[], fd: number): Promise<void> {
  let pos = 0;
  for (const part of parts) {
    await writeAll(fd, part, pos);
    pos += part.length;
  }
}

/** Pipes `source` into `fd` (at increasing offsets); resolves once every byte is written. */
function pipeInto(source: Readable, fd: number): Promise<void> {
  let pos = 0;
  return pipeTo(source, async (chunk) => {
    await writeAll(fd, chunk, pos);
    pos += chunk.length;
  });
}

/** Pipes `source` into `write`, one chunk at a time; resolves once the last write has completed. */
function pipeTo(source: Readable, write: (chunk: Buffer) => Promise<void>): Promise<void> {
  const sink = new Writable({
    highWaterMark: 1024 * 1024,
    write(chunk: Buffer, _enc, cb) {
      write(chunk).then(() => cb(), cb);
    },
  });
  return new Promise((resolve, reject) => {
    source.once('error', (err) => (sink.destroy(), reject(err)));
    sink.once('error', reject);
    sink.once('finish', resolve);
    source.pipe(sink);
  });
}

async function syncDir(dir: string): Promise<void> {
  const fh = await fs.open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Shared directory fsyncs for files written at the same time: each writer adds its directory and waits for the next
 * round, which fsyncs every directory added before it started (a group commit, as GroupFlush does for the index).
 * Many files landing in a few directories then cost a few fsyncs instead of one each.
 */
export class DirSyncs {
  private pending = new Set<string>();
  private readonly group = new GroupFlush(async () => {
    const dirs = [...this.pending];
    this.pending = new Set();
    await Promise.all(dirs.map(syncDir));
  });

  sync(dir: string): Promise<void> {
    this.pending.add(dir);
    return this.group.flush();
  }
}

/**
 * Removes the file `abs` and the directories it leaves empty up to `root`. With `expect`, only if it is still the file
 * the caller saw (RootChanged otherwise: someone wrote it since, and their file stays).
 */
export async function removeFile(root: string, abs: string, expect?: Expected): Promise<void> {
  if (expect !== undefined && !holds(abs, expect)) throw new RootChanged(abs);
  await fs.rm(abs, { force: true });
  let dir = path.dirname(abs);
  while (dir.length > root.length && dir.startsWith(root + path.sep)) {
    try {
      await fs.rmdir(dir);
    } catch {
      break; // not empty (or gone): stop
    }
    dir = path.dirname(dir);
  }
}

/**
 * The root-relative POSIX name of `abs`, a path under `root` as path.join / chokidar build them: sliced off when `abs`
 * starts with the root (path.relative resolves both paths first, thousands of times per push), else path.relative.
 */
export function relativeName(root: string, abs: string): string {
  if (abs.length > root.length + 1 && abs.startsWith(root) && abs[root.length] === path.sep && path.sep === '/') return abs.slice(root.length + 1);
  return path.relative(root, abs).split(path.sep).join('/');
}

/**
 * A root file as ingest's source, read in pieces sized to the file (up to 1 MiB): a 1 MiB read buffer per small file
 * was new external memory for V8 each time and kept its full mark-compacts running through a scan of many files.
 */
export const readRootFile = (abs: string, size: number) => fileSource(abs, Math.min(1024 * 1024, Math.max(16 * 1024, 2 ** Math.ceil(Math.log2(size + 1)))));

/** The path under `root` of the root-relative POSIX name `rel` (relativeName's inverse). */
export function absoluteName(root: string, rel: string): string {
  return path.join(root, ...rel.split('/'));
}

/** Lists a directory (injectable, so that tests can make one unreadable even when they run as root). */
export type ReadDir = (dir: string) => Promise<Dirent[]>;
const readDirents: ReadDir = (dir) => fs.readdir(dir, { withFileTypes: true });

/**
 * Every regular file under `dir` (root-relative POSIX names), skipping symlinks and our own temp files (with `temps`:
 * only those), and files and folders `skip` names. A directory that vanished is empty; one that cannot be listed
 * (permissions) throws, unless `onUnreadable` takes it (with its root-relative name), in which case the walk goes on
 * without it.
 */
export async function* walk(
  root: string,
  dir = root,
  opts: { onUnreadable?: (rel: string, err: unknown) => void; readDir?: ReadDir; temps?: boolean; skip?: (rel: string) => boolean } = {},
): AsyncGenerator<{ rel: string; abs: string }> {
  const rel = (abs: string) => relativeName(root, abs);
  let entries;
  try {
    entries = await (opts.readDir ?? readDirents)(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return;
    if (!opts.onUnreadable) throw err;
    opts.onUnreadable(rel(dir), err);
    return;
  }
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    const abs = path.join(dir, e.name);
    const name = rel(abs);
    if (opts.skip?.(name)) continue;
    if (e.isDirectory()) yield* walk(root, abs, opts);
    else if (e.isFile() && isOwnTemp(e.name) === (opts.temps ?? false)) yield { rel: name, abs };
  }
}

/**
 * Our own temp files under the root (what walk skips), e.g. staging files; not under folders `skip` names (left out of
 * the sync: no write of ours goes there) nor under one that cannot be listed (BaluHost's root-only `lost+found` on a
 * disk of its own: before, that ended every sweep).
 */
export function walkTemps(root: string, opts: { skip?: (rel: string) => boolean; readDir?: ReadDir } = {}): AsyncGenerator<{ rel: string; abs: string }> {
  return walk(root, root, { temps: true, onUnreadable: () => {}, ...opts });
}
