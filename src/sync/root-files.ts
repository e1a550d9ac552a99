// The hub's root folder on disk. Names coming from peers are validated (store/names.ts) and every existing ancestor
// directory must be a real directory, not a symlink, so nothing a peer sends can write outside the root. Files are
// written atomically: a temp file in the same directory (named with TEMP_PREFIX, which the watcher ignores), fsync,
// permissions and mtime, rename, fsync of the directory.

import fs from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { validateName } from '../../store/index.ts';
import { SyncError } from './errors.ts';

export const TEMP_PREFIX = '.balupi-tmp-';

export function isOwnTemp(p: string): boolean {
  return path.basename(p).startsWith(TEMP_PREFIX);
}

export interface DiskStat {
  size: number;
  mtimeMs: number;
  mode: number;
}

/** The absolute path of a root-relative name, refusing anything that could leave the root. */
export async function safePath(root: string, rel: string): Promise<string> {
  validateName(rel);
  const parts = rel.split('/');
  let dir = root;
  for (const part of parts.slice(0, -1)) {
    dir = path.join(dir, part);
    const st = await fs.lstat(dir).catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? null : Promise.reject(err)));
    if (st === null) break; // does not exist yet: created as a real directory when written
    if (!st.isDirectory()) throw new SyncError('unsafe_path', `${rel}: ${path.relative(root, dir)} is not a directory (symlink or file)`, { details: { path: rel } });
  }
  const abs = path.join(root, ...parts);
  if (path.relative(root, abs).startsWith('..')) throw new SyncError('unsafe_path', `${rel} leaves the root`, { details: { path: rel } });
  return abs;
}

/** A regular file's size, mtime and permissions; null if missing or not a regular file. */
export async function statFile(abs: string): Promise<DiskStat | null> {
  try {
    const st = await fs.lstat(abs);
    return st.isFile() ? { size: st.size, mtimeMs: Math.floor(st.mtimeMs), mode: st.mode & 0o7777 } : null;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return null;
    throw err;
  }
}

export async function writeAtomic(abs: string, source: Readable, meta: { mtimeMs: number; mode: number }): Promise<void> {
  const dir = path.dirname(abs);
  await fs.mkdir(dir, { recursive: true });
  const tmp = path.join(dir, `${TEMP_PREFIX}${randomBytes(6).toString('hex')}`);
  try {
    await pipeline(source, createWriteStream(tmp, { flags: 'wx', mode: 0o600 }));
    const fh = await fs.open(tmp, 'r+');
    try {
      await fh.datasync();
      await fh.chmod(meta.mode);
      await fh.utimes(meta.mtimeMs / 1000, meta.mtimeMs / 1000);
    } finally {
      await fh.close();
    }
    await fs.rename(tmp, abs);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
  await syncDir(dir);
}

async function syncDir(dir: string): Promise<void> {
  const fh = await fs.open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Removes a file and then its parent directories up to the root while they are empty. */
export async function removeFile(root: string, abs: string): Promise<void> {
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

/** Every regular file under `dir` (root-relative POSIX names), skipping symlinks and our own temp files. */
export async function* walk(root: string, dir = root): AsyncGenerator<{ rel: string; abs: string }> {
  let entries;
  try {
    entries = await fs.readdir(dir, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return;
    throw err;
  }
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    const abs = path.join(dir, e.name);
    if (e.isDirectory()) yield* walk(root, abs);
    else if (e.isFile() && !isOwnTemp(e.name)) yield { rel: path.relative(root, abs).split(path.sep).join('/'), abs };
  }
}
