// syncfs(2): one flush of a whole file system, the group commit for many small chunk files written at once. A
// per-file flush is a journal commit each, which for a small file costs more than writing it.

import { execFile } from 'node:child_process';

/**
 * Chunks up to this size written by a batch are made durable together, by one syncfs, instead of one by one. On the
 * dev VM 3,000 files of 32 KiB took 1.8 s with O_DSYNC and 0.7 s written plainly and then flushed by one syncfs
 * (1.15 s with an fdatasync each). Larger chunks keep O_DSYNC, which costs them little.
 *
 * Not used for the hub's root files: a syncfs waits for every dirty page of the file system, and the root writer's
 * large files made each shared flush wait for them (a push took 16.1-17.3 s instead of 13.7-13.9 s).
 */
export const GROUP_SYNC_BYTES = 256 * 1024;

/** syncFs could not be run at all (as opposed to: it ran and the flush failed). */
export class SyncFsUnavailable extends Error {}

/**
 * syncfs(2) of the file system holding `dir`. Node has no binding for it; coreutils' `sync -f` (8.24 and later) is
 * that one system call. A flush that fails (EIO, ENOSPC) is an error; a missing program is SyncFsUnavailable.
 */
export function syncFileSystem(dir: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('sync', ['-f', dir], { timeout: 120_000 }, (err, _stdout, stderr) => {
      if (!err) return resolve();
      if (typeof err.code === 'string') return reject(new SyncFsUnavailable(`cannot run sync -f: ${err.message}`, { cause: err }));
      const text = String(stderr).trim() || err.message;
      reject(Object.assign(new Error(`flushing the file system of ${dir} failed: ${text}`), { code: /No space left/.test(text) ? 'ENOSPC' : 'EIO' }));
    });
  });
}
