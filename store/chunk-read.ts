// Reading a chunk's bytes on this thread, verified: the fallback when no chunk worker can serve (chunk-workers.ts
// reads the same way in its own thread), and the errors both report for a chunk that is missing or altered on disk.

import type { Blake3 } from './hasher.ts';
import { toHex } from './hasher.ts';
import { StoreError } from './errors.ts';
import type { ReadOutcome } from './chunk-workers.ts';
import fsCb from 'node:fs';
import { fstat, openFd, readAt } from './fd-calls.ts';

/** Read step for chunk files (see readChunkHere). */
const READ_PIECE = 256 * 1024;

/**
 * The chunk `hash` at `offset` of `file`, checked against its hash (and `expectedSize`, else the file's size).
 * The file is read in READ_PIECE steps and each piece is hashed right after it lands, while it is still in the CPU
 * cache: hashing the whole chunk afterwards would read it from RAM a second time, and on a small machine memory
 * bandwidth, not the hash, is what limits read-back. It also keeps each synchronous hash step short.
 */
export async function readChunkHere(blake3: Blake3, file: string, offset: number, hash: string, expectedSize?: number, opts: { strict?: boolean } = {}): Promise<Buffer> {
  let fd: number;
  try {
    fd = await openFd(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new StoreError('corrupt_chunk', `chunk ${hash} is missing from disk`, { cause: err, details: { hash } });
    }
    throw err;
  }
  const h = blake3.create();
  try {
    const size = expectedSize ?? (await fstat(fd)).size;
    const buf = Buffer.allocUnsafe(size);
    let off = 0;
    while (off < size) {
      const bytesRead = await readAt(fd, buf, off, Math.min(READ_PIECE, size - off), offset + off);
      if (bytesRead === 0) break;
      h.update(buf.subarray(off, off + bytesRead));
      off += bytesRead;
    }
    // A file longer than its row says is damage as well (fsck must see it), though the bytes served are verified
    // either way; the check costs an fstat, so only strict readers (fsck) pay for it.
    const actualSize = off < size ? off : opts.strict ? (await fstat(fd)).size : size;
    if (actualSize !== size) throw corruptChunk(hash, size, { kind: 'size', actualSize });
    const actual = toHex(h.digest());
    if (actual !== hash) throw corruptChunk(hash, size, { kind: 'mismatch', actual });
    return buf;
  } finally {
    h.dispose();
    fsCb.close(fd, () => {});
  }
}

/** The error for a chunk a worker found missing, of the wrong size, or hashing to something else. */
export function corruptChunk(hash: string, expectedSize: number, out: Pick<Extract<ReadOutcome, { kind: 'missing' | 'size' | 'mismatch' }>, 'kind' | 'actualSize' | 'actual'>): StoreError {
  if (out.kind === 'missing') return new StoreError('corrupt_chunk', `chunk ${hash} is missing from disk`, { details: { hash } });
  if (out.kind === 'size') {
    return new StoreError('corrupt_chunk', `chunk ${hash} has ${out.actualSize} bytes on disk, expected ${expectedSize}`, { details: { hash } });
  }
  return new StoreError('corrupt_chunk', `chunk ${hash} on disk hashes to ${out.actual}`, { details: { hash, actual: out.actual } });
}
