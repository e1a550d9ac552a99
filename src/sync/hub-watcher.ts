// The hub role's link to its root folder: chokidar reports add/change/unlink (a rename is an unlink plus an add;
// the chunks are already there, so nothing is re-sent), each path is read once it has been quiet for the debounce
// time, and the hub's own temp files are ignored. Start: watch, read the whole folder (the first start ingests it),
// then write every store change committed by peers into the folder.

import fs from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { watch, type ChokidarOptions, type FSWatcher } from 'chokidar';
import type { Logger } from '../log.ts';
import type { HubRoot } from './hub-root.ts';
import { matches, type DiskIndex } from './disk-index.ts';
import { absoluteName, diskStatOf, isOwnTemp, relativeName, statFile, TEMP_PREFIX, walk, type DiskStat } from './root-files.ts';
import type { IgnoreRules } from './ignore.ts';

/**
 * chokidar as the hub uses it. chokidar itself is patched (patches/chokidar+5.0.0.patch):
 * - after listing a directory it waits max(100 ms, 4 x the listing's time) before listing it again. Unpatched, files
 *   arriving one after another had it re-list the directory and lstat() every entry back to back (~10 ms of CPU per
 *   arriving file in a directory of 10,000; bench/watcher.ts); and the event that brought a new file is not passed on
 *   to the file's own listener, which only stat()ed it again;
 * - on Linux a file gets no inotify watch of its own: its directory's watch reports its changes. Unpatched, every file
 *   held a watch, and a root of a few hundred thousand files exceeds fs.inotify.max_user_watches, after which further
 *   watches (directories' too) fail and their changes go unseen;
 * - an event's entry name is first checked with `ignoredName` (an option the patch adds): the events of the hub's own
 *   temp files then cost no path building and matching;
 * - a file's change is a new ctime, mtime or inode. Unpatched, chokidar took any event with atime <= mtime for a
 *   change, so every file renamed into place with an older mtime (the hub's own writes, any sync's) came as an 'add'
 *   and then a 'change' for the same rename.
 */
export function rootWatchOptions(root: string, ignore?: IgnoreRules): ChokidarOptions & { ignoredName: (name: string) => boolean } {
  const rules = ignore && !ignore.empty ? ignore : undefined;
  return {
    ignoreInitial: true,
    followSymlinks: false,
    // An ignored folder is not watched at all (BaluHost's .tmp sees every upload's parts come and go).
    ignored: (p: string) => isOwnTemp(p) || rules?.ignores(relativeName(root, p)) === true,
    ignoredName: (name: string) => name.startsWith(TEMP_PREFIX) || rules?.ignoresName(name) === true,
    alwaysStat: false,
  };
}

/** The longest a file found gone waits for other changes to be read before it is deleted (holdGone). */
const GONE_MAX_WAIT_MS = 2000;

export interface HubWatcherOptions {
  hubRoot: HubRoot;
  disk: DiskIndex;
  log: Logger;
  debounceMs: number;
  /** Paths read at the same time. */
  concurrency?: number;
  /** How often the whole root is read again (0 or unset: never): see rescan. */
  rescanMs?: number;
}

export class HubWatcher {
  private readonly o: HubWatcherOptions;
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly waiting: (() => Promise<void>)[] = [];
  private running = 0;
  private watcher: FSWatcher | null = null;
  private readonly stop = new AbortController();
  private follower: Promise<void> | null = null;
  private adopting: Promise<unknown> | null = null;
  private idleWaiters: (() => void)[] = [];
  /** Paths found gone, read again (and deleted) once the changes around them are read: see holdGone. */
  private readonly gone = new Set<string>();
  private goneTimer: NodeJS.Timeout | undefined;
  private rescanTimer: NodeJS.Timeout | undefined;
  private rescanning: Promise<void> | null = null;

  constructor(opts: HubWatcherOptions) {
    this.o = opts;
  }

  /** Resolves once the folder was read; changes are followed from then on. */
  async start(): Promise<{ files: number; skipped: number; ms: number }> {
    const root = this.o.hubRoot.root;
    const t0 = performance.now();
    const watcher = watch(root, rootWatchOptions(root, this.o.hubRoot.ignore));
    this.watcher = watcher;
    const rel = (abs: string): string => relativeName(root, abs);
    watcher.on('add', (p, st) => this.added(rel(p), st));
    watcher.on('change', (p) => this.schedule(rel(p), 'file'));
    watcher.on('unlink', (p) => this.schedule(rel(p), 'file'));
    watcher.on('addDir', (p) => p !== root && this.schedule(rel(p), 'dir'));
    watcher.on('unlinkDir', (p) => p !== root && this.schedule(rel(p), 'dir'));
    watcher.on('error', (err) => this.o.log.error({ err }, 'hub root watcher error'));
    await new Promise<void>((resolve) => watcher.once('ready', () => resolve()));
    await this.o.hubRoot.dropIgnored();
    const { files, skipped } = await this.o.hubRoot.scan();
    const ms = Math.round(performance.now() - t0);
    this.o.log.info({ root, files, skipped, ms }, 'hub root scanned');
    if (this.o.rescanMs) {
      this.rescanTimer = setInterval(() => this.rescan(), this.o.rescanMs);
      this.rescanTimer.unref();
    }
    const signal = this.stop.signal;
    this.follower = this.o.hubRoot.followStore(signal).catch((err) => {
      if (!signal.aborted) this.o.log.error({ err }, 'hub root writer stopped');
    });
    this.adopting = this.o.hubRoot.adoptChunkFiles(signal).then(
      (r) => r.bytes > 0 && this.o.log.info(r, 'hub root: dropped the chunk files of files the folder already holds'),
      (err: unknown) => this.o.log.warn({ err }, 'hub root: could not drop the chunk files of files the folder holds; they stay'),
    );
    return { files, skipped, ms };
  }

  /**
   * A file appeared. When the event's lstat shows the very size and mtime the disk index has for it, or the hub is
   * putting that very file there right now (its entry is set once the store has recorded it), the file holds what the
   * hub wrote there: nothing to read. That is every new file the hub writes (a push of 3,000 small files otherwise cost
   * 3,000 refreshes: a timer, the path's lock, three lstats and an index read each). An edit after that lstat brings a
   * 'change' event. Not done for 'change' events: chokidar drops a path's changes for
   * 50 ms after one it reported, and only the refresh scheduled for that one reads what they wrote.
   */
  private added(rel: string, st: Stats | undefined): void {
    if (st?.isFile() && this.hubsOwn(rel, diskStatOf(st))) return;
    this.schedule(rel, 'file');
  }

  /** Whether the file with stat `st` at `rel` is one the hub last read or wrote there, or is writing there now. */
  private hubsOwn(rel: string, st: DiskStat | null): boolean {
    return st !== null && (this.o.disk.isPlacing(rel, st) || matches(st, this.o.disk.getNow(rel)));
  }

  private schedule(rel: string, kind: 'file' | 'dir'): void {
    if (rel === '' || rel.startsWith('..') || this.stop.signal.aborted) return;
    const key = `${kind}:${rel}`;
    clearTimeout(this.timers.get(key));
    this.timers.set(
      key,
      setTimeout(() => {
        this.timers.delete(key);
        this.enqueue(() => (kind === 'file' ? this.refreshFile(rel) : this.refreshDir(rel)));
      }, this.o.debounceMs),
    );
  }

  private async refreshFile(rel: string): Promise<void> {
    const abs = absoluteName(this.o.hubRoot.root, rel);
    if ((await statFile(abs)) !== null) return this.o.hubRoot.refreshSafely(rel);
    this.holdGone(rel);
    // A directory where the file was: chokidar may take it for a change of that file (a new inode), and then neither
    // lists nor watches it. Have it watched, and read what is in it now.
    if ((await fs.lstat(abs).catch(() => null))?.isDirectory()) {
      this.watcher?.add(abs);
      await this.refreshDir(rel);
    }
  }

  /**
   * A file that is gone is deleted from the store only once the other changes around it have been read: when nothing
   * else is waiting, or GONE_MAX_WAIT_MS after the first such file at the latest. A move on the NAS (a folder renamed)
   * is files gone at one path and appearing at another; deleted first, the pis dropped their copies of those bytes
   * with the old paths and then downloaded them again for the new ones. Read first, the new paths come first in the
   * feed, and a pi keeps the bytes.
   */
  private holdGone(rel: string): void {
    this.gone.add(rel);
    this.goneTimer ??= setTimeout(() => this.releaseGone(), Math.max(GONE_MAX_WAIT_MS, 4 * this.o.debounceMs));
  }

  private releaseGone(): void {
    clearTimeout(this.goneTimer);
    this.goneTimer = undefined;
    const paths = [...this.gone];
    this.gone.clear();
    for (const p of paths) this.enqueue(() => this.o.hubRoot.refreshSafely(p));
  }

  /**
   * The whole root read again, as at start (files as the disk index has them cost an lstat each). Watching misses
   * changes now and then: chokidar keeps the dead watch of a folder replaced by another renamed into its place right
   * after it was made (`rm -r d1; mv d3 d1`; found by bench/soak-sync.ts), and inotify drops events when its queue
   * overflows. Syncthing rescans hourly beside its watcher for the same reason. One rescan at a time.
   */
  private rescan(): void {
    if (this.rescanning || this.stop.signal.aborted) return;
    const t0 = performance.now();
    this.rescanning = this.o.hubRoot
      .scan()
      .then((r) => this.o.log.debug({ ...r, ms: Math.round(performance.now() - t0) }, 'hub root rescanned'))
      .catch((err: unknown) => this.o.log.warn({ err }, 'hub root: rescan failed; tried again at the next'))
      .finally(() => (this.rescanning = null));
  }

  /** A directory appeared or vanished (a move, usually): read what is in it now and what we knew to be in it. */
  private async refreshDir(rel: string): Promise<void> {
    const paths = new Set<string>();
    const ignore = this.o.hubRoot.ignore;
    for await (const { rel: p } of walk(this.o.hubRoot.root, absoluteName(this.o.hubRoot.root, rel), { skip: (p) => ignore.ignores(p) })) paths.add(p);
    for await (const p of this.o.disk.paths(rel)) paths.add(p);
    for (const p of paths) {
      // As for file events: the hub's own files need no reading (the root writer's first file in a new directory
      // brings this listing, and the rest of a push's files are in it).
      const st = await statFile(absoluteName(this.o.hubRoot.root, p));
      if (st === null) this.holdGone(p);
      else if (!this.hubsOwn(p, st)) await this.o.hubRoot.refreshSafely(p);
    }
  }

  private enqueue(job: () => Promise<void>): void {
    this.waiting.push(job);
    this.pump();
  }

  private pump(): void {
    const limit = this.o.concurrency ?? 4;
    while (this.running < limit && this.waiting.length > 0) {
      const job = this.waiting.shift()!;
      this.running += 1;
      void job()
        .catch((err) => this.o.log.error({ err }, 'hub root: could not read a change'))
        .finally(() => {
          this.running -= 1;
          this.pump();
          if (this.running === 0 && this.waiting.length === 0 && this.timers.size === 0) {
            if (this.gone.size > 0 && !this.stop.signal.aborted) this.releaseGone();
            else for (const w of this.idleWaiters.splice(0)) w();
          }
        });
    }
  }

  async close(): Promise<void> {
    this.stop.abort();
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    this.waiting.length = 0;
    clearTimeout(this.goneTimer);
    clearInterval(this.rescanTimer);
    this.gone.clear();
    await this.watcher?.close();
    await this.rescanning;
    await this.follower;
    await this.adopting;
    while (this.running > 0) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }
}
