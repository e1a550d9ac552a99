// File-descriptor calls on the callback API, as promises. The chunk read and write paths use these rather than
// FileHandle: per 256 KiB piece or per chunk, FileHandle's promise wrappers cost measurably.

import fsCb from 'node:fs';

export function callFs<T>(fn: (cb: (err: NodeJS.ErrnoException | null, value?: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => fn((err, value) => (err ? reject(err) : resolve(value as T))));
}

export function openFd(file: string, flags: number | string, mode = 0o644): Promise<number> {
  return callFs<number>((cb) => fsCb.open(file, flags, mode, cb));
}

/** Runs `fn`, then closes `fds` (as many as it holds then); a failed close fails it too, unless `fn` failed first. */
export async function closeAfter(fds: number[], fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    for (const fd of fds) fsCb.close(fd, () => {});
    throw err;
  }
  let failure: unknown;
  for (const fd of fds) await callFs<void>((cb) => fsCb.close(fd, cb)).catch((err: unknown) => void (failure ??= err));
  if (failure !== undefined) throw failure;
}

export function readAt(fd: number, buf: Uint8Array, off: number, len: number, position: number): Promise<number> {
  return callFs<number>((cb) => fsCb.read(fd, buf, off, len, position, cb));
}

export function fstat(fd: number): Promise<fsCb.Stats> {
  return callFs<fsCb.Stats>((cb) => fsCb.fstat(fd, cb));
}
