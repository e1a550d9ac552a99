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
    const stream = new ChunkReadStream(engine, current, offset, length, release);
    stream.once('end', release);
    return { record: current, offset, length, stream };
  } catch (err) {
    release();
    throw err;
  }
}

/** Chunk bytes read (and verified) ahead of the consumer: enough to keep the disk busy while one is hashed. */
const READ_AHEAD_BYTES = 8 * 1024 * 1024;

interface Wanted {
  hash: string;
  size: number;
  /** Offset of the chunk in the file. */
  start: number;
}

/** Streams the wanted chunks in order, reading up to READ_AHEAD_BYTES ahead; each is verified before it is pushed. */
class ChunkReadStream extends Readable {
  private readonly engine: Engine;
  private readonly wanted: Wanted[];
  private readonly offset: number;
  private readonly end: number;
  private readonly release: () => void;
  private readonly queue: { chunk: Wanted; data: Promise<Buffer> }[] = [];
  private next = 0;
  private aheadBytes = 0;
  private pumping = false;

  constructor(engine: Engine, rec: FileRecord, offset: number, length: number, release: () => void) {
    super({ highWaterMark: 1024 * 1024 });
    this.engine = engine;
    this.offset = offset;
    this.end = offset + length;
    this.release = release;
    this.wanted = [];
    let pos = 0;
    for (const c of rec.chunks) {
      if (pos >= this.end) break;
      if (pos + c.size > offset) this.wanted.push({ hash: c.hash, size: c.size, start: pos });
      pos += c.size;
    }
  }

  private fill(): void {
    while (this.next < this.wanted.length && (this.queue.length === 0 || this.aheadBytes < READ_AHEAD_BYTES)) {
      const chunk = this.wanted[this.next++]!;
      const data = this.engine.files.read(chunk.hash, chunk.size);
      data.catch(() => {}); // consumed in order by pump(); this only keeps an abandoned read-ahead quiet
      this.queue.push({ chunk, data });
      this.aheadBytes += chunk.size;
    }
  }

  override _read(): void {
    if (!this.pumping) void this.pump();
  }

  private async pump(): Promise<void> {
    this.pumping = true;
    try {
      for (;;) {
        this.fill();
        const head = this.queue.shift();
        if (!head) {
          this.push(null);
          return;
        }
        const data = await head.data;
        this.aheadBytes -= head.chunk.size;
        if (this.destroyed) return;
        const from = Math.max(0, this.offset - head.chunk.start);
        const to = Math.min(head.chunk.size, this.end - head.chunk.start);
        const more = this.push(from === 0 && to === head.chunk.size ? data : data.subarray(from, to));
        this.fill();
        if (!more) return;
      }
    } catch (err) {
      this.destroy(err as Error);
    } finally {
      this.pumping = false;
    }
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.release();
    cb(err);
  }
}
