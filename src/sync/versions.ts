// Files of the hub's root that a peer's change deletes or replaces are kept for a while (BALUPI_HUB_KEEP_DAYS), as
// Syncthing's trash-can versioning keeps them in .stversions: a photo deleted on a phone by mistake, or a document
// saved over from a laptop, can be taken back from the NAS. They go to `.balupi-versions/` in the root, under their
// path with the time before the extension (`docs/report~20261125-093000.pdf`), and the hub's upkeep removes them once
// they are older than that. The folder is never synced (ignore.ts: the hub always leaves it out). A version is a hard
// link to the replaced file (no copy: the rename or removal that follows leaves the old bytes under that name only),
// or a copy on a file system without hard links. Changes made on the NAS itself are not kept: only a peer's. They are
// bounded in bytes too (BALUPI_HUB_KEEP_MAX_BYTES): a large file saved over every few minutes from a laptop would
// otherwise fill the NAS with a month of its versions; past the bound the oldest go first.

import fs from 'node:fs/promises';
import path from 'node:path';
import { timeStamp, withExtension } from './conflict.ts';
import { absoluteName } from './root-files.ts';
import type { Logger } from '../log.ts';

/** The folder in the root that holds them (always left out of the sync). */
export const VERSIONS_DIR = '.balupi-versions';

const STAMPED = /~(\d{4})(\d{2})(\d{2})-(\d{2})(\d{2})(\d{2})(?:-\d+)?(?:\.[^/]*)?$/;

export interface KeptVersionsOptions {
  /** Days a version is kept; 0: nothing is kept. */
  days: number;
  /** The most bytes kept versions may hold (0: no bound; unset: DEFAULT_SHARE of the root's file system). */
  maxBytes?: number;
  now?: () => Date;
  /** Told when a file could not be kept (the change goes ahead all the same). */
  log?: Logger;
}

/** The bound when none is set: a tenth of the file system the root is on. */
export const DEFAULT_SHARE = 0.1;

/** Trimmed to this share of the bound, so that a steady stream of new versions does not trim at every one. */
const TRIM_TO = 0.9;

export class KeptVersions {
  readonly #root: string;
  readonly #days: number;
  /** Undefined until the first expire() reads the file system's size (the root may not exist before). */
  #maxBytes: number | undefined;
  readonly #now: () => Date;
  readonly #log: Logger | undefined;
  /** Bytes the kept versions hold, as of the last expire() plus what was kept since (unknown before the first). */
  #bytes: number | undefined;
  #trimming: Promise<unknown> | undefined;

  constructor(root: string, opts: KeptVersionsOptions) {
    this.#root = root;
    this.#days = opts.days;
    this.#maxBytes = opts.maxBytes;
    this.#now = opts.now ?? (() => new Date());
    this.#log = opts.log;
  }

  get enabled(): boolean {
    return this.#days > 0;
  }

  /**
   * Runs `change` (a removal or a replacement of the root file `abs`, root-relative `rel`), keeping the file first
   * when there is one (`size`). A change that fails takes its kept version back: the file is still in place. A file
   * that cannot be kept is logged, and the change goes ahead: keeping must never hold up the sync.
   */
  async around<T>(abs: string, rel: string, size: number | undefined, change: () => Promise<T>): Promise<T> {
    const kept =
      size !== undefined && this.enabled
        ? await this.#keep(abs, rel).catch((err: unknown) => void this.#log?.warn({ path: rel, err }, 'hub root: could not keep the file a peer\'s change replaces; going on without'))
        : undefined;
    try {
      const done = await change();
      if (kept) this.#added(size!);
      return done;
    } catch (err) {
      if (kept) await fs.rm(kept, { force: true });
      throw err;
    }
  }

  /** Past the bound: the oldest go, one trim at a time, not waited for (the write that kept a version goes on). */
  #added(size: number): void {
    if (this.#bytes === undefined || !this.#maxBytes) return;
    this.#bytes += size;
    if (this.#bytes <= this.#maxBytes || this.#trimming) return;
    this.#trimming = this.expire()
      .catch(() => {})
      .finally(() => (this.#trimming = undefined));
  }

  /** What is kept and for how long (status): bytes as of the last expire() and since (null before the first). */
  get summary(): { days: number; maxBytes: number | null; bytes: number | null } {
    return { days: this.#days, maxBytes: this.#maxBytes ?? null, bytes: this.enabled ? (this.#bytes ?? null) : null };
  }

  /** Resolves once a trim under way has ended (the hub's shutdown). */
  async idle(): Promise<void> {
    await this.#trimming;
  }

  async #keep(abs: string, rel: string): Promise<string | undefined> {
    const stamp = timeStamp(this.#now());
    const target = (n: number) => absoluteName(path.join(this.#root, VERSIONS_DIR), withExtension(rel, (stem, ext) => `${stem}~${stamp}${n > 1 ? `-${n}` : ''}${ext}`));
    for (let n = 1, tries = 0; n < 100 && tries < 100; tries++) {
      try {
        await fs.link(abs, target(n));
        return target(n);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EEXIST') {
          n += 1; // kept twice in one second
          continue;
        }
        if (code === 'ENOENT') {
          if (!(await fs.lstat(abs).catch(() => null))) return undefined; // gone meanwhile: the change itself will say so
          await fs.mkdir(path.dirname(target(n)), { recursive: true }); // the first in its folder (or a trim took the folder)
          continue;
        }
        // A file system without hard links (or their limit reached): a copy, made without replacing anything.
        if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EMLINK' && code !== 'EXDEV') throw err;
        await fs.copyFile(abs, target(n), fs.constants.COPYFILE_EXCL);
        return target(n);
      }
    }
    return undefined;
  }

  /**
   * Removes kept versions older than the setting, then the oldest while they hold more bytes than the bound, and the
   * folders they leave empty (the hub's upkeep, and a trim past the bound). With the setting at 0 nothing goes:
   * versions kept before it was turned off are the user's to remove.
   */
  async expire(): Promise<{ files: number; bytes: number }> {
    if (!this.enabled) return { files: 0, bytes: 0 };
    if (this.#maxBytes === undefined) {
      const fsStat = await fs.statfs(this.#root).catch(() => null);
      this.#maxBytes = fsStat ? Math.floor(fsStat.blocks * fsStat.bsize * DEFAULT_SHARE) : 0;
    }
    const top = path.join(this.#root, VERSIONS_DIR);
    const cutoff = this.#now().getTime() - this.#days * 86_400_000;
    const all: { abs: string; at: number; size: number }[] = [];
    for (const rel of (await fs.readdir(top, { recursive: true }).catch(() => [])) as string[]) {
      const m = STAMPED.exec(rel);
      const st = m ? await fs.lstat(path.join(top, rel)).catch(() => null) : null;
      if (m && st?.isFile()) all.push({ abs: path.join(top, rel), at: new Date(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!).getTime(), size: st.size });
    }
    all.sort((a, b) => a.at - b.at);
    let bytes = all.reduce((n, v) => n + v.size, 0);
    const target = this.#maxBytes > 0 && bytes > this.#maxBytes ? this.#maxBytes * TRIM_TO : Infinity;
    let files = 0;
    for (const v of all) {
      if (v.at >= cutoff && bytes <= target) break;
      await fs.rm(v.abs, { force: true });
      bytes -= v.size;
      files += 1;
    }
    this.#bytes = bytes;
    if (files > 0) await removeEmptyDirs(top);
    return { files, bytes };
  }
}

/** Removes the empty folders under `dir`, and `dir` itself if it ends up empty. Returns whether it went. */
async function removeEmptyDirs(dir: string): Promise<boolean> {
  const entries = await fs.readdir(dir, { withFileTypes: true }).catch(() => []);
  let left = entries.length;
  for (const e of entries) if (e.isDirectory() && (await removeEmptyDirs(path.join(dir, e.name)))) left -= 1;
  return left === 0 && fs.rmdir(dir).then(() => true, () => false);
}
