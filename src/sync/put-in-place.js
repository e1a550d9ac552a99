// The last step of every write into the hub's root: a finished temp file takes its final name, but only if that name
// still holds what the hub looked at before it began (nothing, or the file it last read or wrote there). Between that
// look and the rename lie the whole write and its flush (seconds for a large file), and a person or program on the
// NAS may write the same path meanwhile. A plain rename would then silently replace their file; instead the writer
// gets RootChanged, drops its temp file, and the hub reads their change first (a conflict copy if both changed it).
//
// The check (size and mtime, as the disk index compares them) comes right before the rename, so the window left is
// the gap between two system calls instead of the whole write. A hard link would close it for new files (it fails if
// the name exists), but a link and an unlink instead of one rename made a push of 3,000 small files ~0.25 s slower.
//
// Plain JavaScript with synchronous calls: the root-file worker thread (root-file-worker.js) places its batches with
// it, and on the main thread these are metadata calls on inodes the kernel has cached.
import fs from 'node:fs';

/** The path holds something other than what the caller expected: nothing was replaced. */
export class RootChanged extends Error {
  constructor(abs) {
    super(`${abs} changed on disk while the hub was writing it`);
    this.name = 'RootChanged';
    this.code = 'ECHANGED';
  }
}

/**
 * Moves `tmp` to `abs` if `abs` holds what `expect` says: `null` for nothing, `{ size, mtimeMs }` for that file,
 * `undefined` to replace whatever is there. Throws RootChanged (leaving `tmp` where it is) otherwise.
 */
export function putInPlaceSync(tmp, abs, expect) {
  if (expect !== undefined && !holds(abs, expect)) throw new RootChanged(abs);
  fs.renameSync(tmp, abs);
}

/** Whether `abs` holds what `expect` says (null: nothing at all, not even a directory or symlink). */
export function holds(abs, expect) {
  const st = fs.lstatSync(abs, { throwIfNoEntry: false });
  if (expect === null) return st === undefined;
  return st !== undefined && st.isFile() && st.size === expect.size && Math.floor(st.mtimeMs) === Math.floor(expect.mtimeMs);
}
