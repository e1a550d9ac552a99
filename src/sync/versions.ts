// Files of the hub's root that a peer's change deletes or replaces are kept for a while (BALUPI_HUB_KEEP_DAYS), as
// Syncthing's trash-can versioning keeps them in .stversions: a photo deleted on a phone by mistake, or a document
// saved over from a laptop, can be taken back from the NAS. They go to `.balupi-versions/` in the root, under their
// path with the time before the extension (`docs/report~20261125-093000.pdf`), and the hub's upkeep removes them once
// they are older than that. The folder is never synced (ignore.ts: the hub always leaves it out). A version is a hard
// link to the replaced file (no copy: the rename or removal that follows leaves the old bytes under that name only),
// or a copy on a file system without hard links. Changes made on the NAS itself are not kept: only a peer's.

import fs from 'node:fs/promises';
import path from 'node:path';
import { timeStamp, withExtension } from './conflict.ts';
import { absoluteName } from './root-files.ts';

/** The folder in the root that holds them (always left out of the sync). */
export const VERSIONS_DIR = '.balupi-versions';

const STAMPED = /~(\d{4})(\d{2})(\d{2})-(\d{2})(\d{2})(\d{2})(?:-\d+)?(?:\.[^/]*)?$/;

export class KeptVersions {
  readonly #root: string;
  readonly #days: number;
  readonly #now: () => Date;

  /** `days` 0: nothing is kept. */
  constructor(root: string, days: number, now: () => Date = () => new Date()) {
    this.#root = root;
    this.#days = days;
    this.#now = now;
  }

  get enabled(): boolean {
    return this.#days > 0;
  }

  /**
   * Runs `change` (a removal or a replacement of the root file `abs`, root-relative `rel`), keeping the file first
   * when there is one. A change that fails takes its kept version back: the file is still in place.
   */
  async around<T>(abs: string, rel: string, present: boolean, change: () => Promise<T>): Promise<T> {
    const kept = present && this.enabled ? await this.#keep(abs, rel) : undefined;
    try {
      return await change();
    } catch (err) {
      if (kept) await fs.rm(kept, { force: true });
      throw err;
    }
  }

  async #keep(abs: string, rel: string): Promise<string | undefined> {
    const stamp = timeStamp(this.#now());
    const target = (n: number) => absoluteName(path.join(this.#root, VERSIONS_DIR), withExtension(rel, (stem, ext) => `${stem}~${stamp}${n > 1 ? `-${n}` : ''}${ext}`));
    await fs.mkdir(path.dirname(target(1)), { recursive: true });
    for (let n = 1; n < 100; n++) {
      try {
        await fs.link(abs, target(n));
        return target(n);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EEXIST') continue; // kept twice in one second
        if (code === 'ENOENT') return undefined; // gone meanwhile: the change itself will say so
        // A file system without hard links (or their limit reached): a copy, made without replacing anything.
        if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EMLINK' && code !== 'EXDEV') throw err;
        await fs.copyFile(abs, target(n), fs.constants.COPYFILE_EXCL);
        return target(n);
      }
    }
    return undefined;
  }

  /**
   * Removes kept versions older than the setting (the hub's upkeep), and folders they leave empty. With the setting at
   * 0 nothing goes: versions kept before it was turned off are the user's to remove.
   */
  async expire(): Promise<{ files: number }> {
    if (!this.enabled) return { files: 0 };
    const cutoff = this.#now().getTime() - this.#days * 86_400_000;
    let files = 0;
    const sweep = async (dir: string): Promise<boolean> => {
      const entries = await fs.readdir(dir, { withFileTypes: true }).catch(() => []);
      let left = entries.length;
      for (const e of entries) {
        const abs = path.join(dir, e.name);
        if (e.isDirectory()) {
          if (await sweep(abs)) left -= 1;
          continue;
        }
        const m = STAMPED.exec(e.name);
        const at = m ? new Date(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!).getTime() : undefined;
        if (at !== undefined && at < cutoff) {
          await fs.rm(abs, { force: true });
          files += 1;
          left -= 1;
        }
      }
      // An empty folder goes (the top one too: made again with the next version).
      if (left > 0) return false;
      return fs.rmdir(dir).then(() => true, () => false);
    };
    await sweep(path.join(this.#root, VERSIONS_DIR));
    return { files };
  }
}
