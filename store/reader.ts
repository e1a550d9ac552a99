// Reading a file or a byte range as a stream. The file's chunks are held for the life of the stream (a concurrent
// overwrite or delete cannot pull them from under it), every chunk is verified against its hash before any of its
// bytes are passed on, and the next chunk is read while the current one is consumed.

import { Readable } from 'node:stream';
import type { Engine } from './engine.ts';
import type { FileRecord } from './records.ts';
import { validateName } from './names.ts';
import { StoreError } from './errors.ts';
import { promote, touch } from './commit.ts';

export interface ReadRange {
  /** First byte (default 0). */
  offset?: number;
  /** Number of bytes (default: to the end). */
  length?: number;
}

export interface OpenedRead {
  record: FileRecord;
  offset: number;
  length: number;
  stream: Readable;
}

export async function openRead(engine: Engine, path: string, range: ReadRange = {}): Promise<OpenedRead> {
  validateName(path);
  engine.assertOpen();
  let rec: FileRecord | undefined;
  let hashes: string[] = [];
  // Hold the chunks, then confirm the record did not change meanwhile (else a delete could have unlinked them).
  for (;;) {
    rec = await engine.idx.getFile(path);
    if (!rec) throw new StoreError('not_found', `no such file: ${path}`, { details: { path } });
    hashes = rec.chunks.map((c) => c.hash);
    for (const h of hashes) engine.holds.acquire(h);
    const again = await engine.idx.getFile(path);
    if (again?.seq === rec.seq && again.state === rec.state) break;
    for (const h of hashes) engine.holds.release(h);
  }
  const record = rec;
  let released = false;
  const release = (): void => {
    if (released) return;
    released = true;
    for (const h of hashes) engine.holds.release(h);
  };
  try {
    const offset = range.offset ?? 0;
    const length = range.length ?? record.size - offset;
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > record.size) {
      throw new StoreError('invalid_argument', `range ${offset}+${length} is outside ${path} (${record.size} bytes)`, {
        details: { path, size: record.size, offset, length },
      });
    }
    const current = await engine.transact(
      async (tx) => {
        const now = await engine.idx.getFile(path);
        if (!now || now.seq !== record.seq) return record; // replaced meanwhile: this read serves the held version
        if (now.state === 'remote') {
          const rows = await engine.idx.getChunks(hashes);
          const missing = record.chunks.filter((_, i) => !rows[i]?.present);
          if (missing.length > 0) {
            throw new StoreError('not_local', `${path} is not on this disk (${missing.length} of ${record.chunks.length} chunks evicted)`, {
              details: { path, missing: missing.length },
            });
          }
          return promote(engine, tx, now);
        }
        await touch(engine, tx, now);
        return now;
      },
      { sync: record.state === 'remote' },
    );
    const stream = Readable.from(chunkBytes(engine, current, offset, length, release), { objectMode: false });
    return { record: current, offset, length, stream };
  } catch (err) {
    release();
    throw err;
  }
}

async function* chunkBytes(engine: Engine, rec: FileRecord, offset: number, length: number, release: () => void): AsyncGenerator<Buffer> {
  try {
    const end = offset + length;
    const wanted: { hash: string; size: number; start: number }[] = [];
    let pos = 0;
    for (const c of rec.chunks) {
      if (pos + c.size > offset && pos < end) wanted.push({ ...c, start: pos });
      pos += c.size;
      if (pos >= end) break;
    }
    const read = (i: number): Promise<Buffer> | undefined => {
      const c = wanted[i];
      if (!c) return undefined;
      const p = engine.files.read(c.hash, c.size);
      p.catch(() => {}); // awaited below; this only keeps an abandoned prefetch from being an unhandled rejection
      return p;
    };
    let next = read(0);
    for (let i = 0; i < wanted.length; i++) {
      const c = wanted[i]!;
      const data = await next!;
      next = read(i + 1);
      const from = Math.max(0, offset - c.start);
      const to = Math.min(c.size, end - c.start);
      yield from === 0 && to === c.size ? data : data.subarray(from, to);
    }
  } finally {
    release();
  }
}
