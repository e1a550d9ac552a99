// Reading a file or a byte range as a stream. The file's chunks are held for the life of the stream (a concurrent
// overwrite or delete cannot pull them from under it), every chunk is verified against its hash before any of its
// bytes are passed on, and the next chunk is read while the current one is consumed.

import { Readable, type Writable } from 'node:stream';
import type { Engine } from './engine.ts';
import type { FileRecord } from './records.ts';
import { hasBytes } from './records.ts';
import { validateName } from './names.ts';
import { StoreError } from './errors.ts';
import { promote, touch } from './commit.ts';

export interface ReadRange {
  /** First byte (default 0). */
  offset?: number;
  /** Number of bytes (default: to the end). */
  length?: number;
}

export interface ReadOptions {
  /**
   * When the stream is piped (as Fastify sends a stream), read chunks into reusable buffers and write each to the
   * destination with a callback that returns its buffer (see read-buffers.ts). Consumed any other way, or without
   * workers, the stream behaves as without this option. For sinks that do not keep a written chunk after its write
   * callback (sockets, HTTP responses); not for a transform that could hold on to it.
   */
  reuseBuffers?: boolean;
  /**
   * false: not an access (the hub's root writer copying a version out). A local file is then opened without a
   * transaction, so the read does not wait behind the writes of the moment for the store's lock.
   */
  touch?: boolean;
}

export interface OpenedRead {
  record: FileRecord;
  offset: number;
  length: number;
  stream: Readable;
}

export async function openRead(engine: Engine, path: string, range: ReadRange = {}, opts: ReadOptions = {}): Promise<OpenedRead> {
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
    const current = opts.touch === false && record.state === 'local' ? record : await engine.transact(
      async (tx) => {
        const now = await engine.idx.getFile(path);
        if (!now || now.seq !== record.seq) return record; // replaced meanwhile: this read serves the held version
        if (now.state === 'remote') {
          const rows = await engine.idx.getChunks(hashes);
          const missing = record.chunks.filter((_, i) => !hasBytes(rows[i]));
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
    const stream = new ChunkReadStream(engine, current, offset, length, release, opts.reuseBuffers === true);
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

/**
 * Streams the wanted chunks in order, reading up to READ_AHEAD_BYTES ahead; each is verified before it is passed on.
 * Read with push() as any Readable, or, piped with `reuse`, written straight to the destination (writeTo).
 */
class ChunkReadStream extends Readable {
  private readonly engine: Engine;
  private readonly wanted: Wanted[];
  private readonly offset: number;
  private readonly end: number;
  private readonly release: () => void;
  /** Piped: read into the engine's reused buffers (Engine.readLeased). */
  private readonly reuse: boolean;
  /** Reads ahead, in order; `release` gives a reused buffer back (a no-op for a fresh one). */
  private readonly queue: { chunk: Wanted; read: Promise<Lease> }[] = [];
  private next = 0;
  private aheadBytes = 0;
  private pumping = false;
  private writing = false;

  constructor(engine: Engine, rec: FileRecord, offset: number, length: number, release: () => void, reuse: boolean) {
    super({ highWaterMark: 1024 * 1024 });
    this.engine = engine;
    this.offset = offset;
    this.end = offset + length;
    this.release = release;
    this.reuse = reuse;
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
      const read = this.writing ? this.engine.readLeased(chunk.hash, chunk.size) : this.engine.readChunk(chunk.hash, chunk.size).then(fresh);
      read.catch(() => {}); // consumed in order by pump(); this only keeps an abandoned read-ahead quiet
      this.queue.push({ chunk, read });
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
        const { data } = await head.read;
        this.aheadBytes -= head.chunk.size;
        if (this.destroyed) return;
        const more = this.push(this.slice(head.chunk, data));
        this.fill();
        if (!more) return;
      }
    } catch (err) {
      this.destroy(err as Error);
    } finally {
      this.pumping = false;
    }
  }

  /** The part of a chunk inside the wanted range. */
  private slice(chunk: Wanted, data: Buffer): Buffer {
    const from = Math.max(0, this.offset - chunk.start);
    const to = Math.min(chunk.size, this.end - chunk.start);
    return from === 0 && to === chunk.size ? data : data.subarray(from, to);
  }

  override pipe<T extends NodeJS.WritableStream>(dest: T, opts?: { end?: boolean }): T {
    if (!this.reuse || this.writing || this.pumping || this.readableFlowing !== null || this.destroyed) return super.pipe(dest, opts);
    this.writing = true;
    void this.writeTo(dest as unknown as Writable, opts?.end ?? true);
    return dest;
  }

  /**
   * pipe() with reused buffers: each verified chunk is written with a callback that gives its buffer back, so a
   * buffer is reused only once the destination is done with it. Bounded like pipe(): wait for 'drain' after a full write.
   */
  private async writeTo(dest: Writable, end: boolean): Promise<void> {
    // Written, callback not seen yet. A response whose socket closed does not always call back every write (seen: one
    // write in about a third of aborted downloads), but once the destination has closed nothing reads these bytes.
    const writing = new Set<() => void>();
    dest.once('close', () => {
      for (const release of writing) release();
      writing.clear();
    });
    try {
      for (;;) {
        if (this.destroyed || dest.destroyed) return; // _destroy has given back what the queue held
        this.fill();
        const head = this.queue.shift();
        if (!head) break;
        const { data, release } = await head.read; // a failed read has given its buffer back already
        this.aheadBytes -= head.chunk.size;
        if (this.destroyed || dest.destroyed) return release();
        writing.add(release);
        const written = (): void => {
          writing.delete(release);
          release();
        };
        if (!dest.write(this.slice(head.chunk, data), written)) await drained(dest);
      }
      if (end) dest.end();
      this.push(null);
      this.resume(); // nothing is buffered: this only lets 'end' be emitted
    } catch (err) {
      this.destroy(err as Error);
    } finally {
      if (dest.destroyed && !this.destroyed) this.destroy();
    }
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    // Reads still in flight write into their buffers: give those back once the worker is done with them.
    for (const q of this.queue.splice(0)) void q.read.then((l) => l.release(), () => {});
    this.release();
    cb(err);
  }
}

type Lease = Awaited<ReturnType<Engine['readLeased']>>;
const fresh = (data: Buffer): Lease => ({ data, release: () => {} });

/** Resolves when `dest` can take more, or is closed (the caller then checks `destroyed`). */
function drained(dest: Writable): Promise<void> {
  if (dest.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      dest.off('drain', done).off('close', done).off('error', done);
      resolve();
    };
    dest.on('drain', done).on('close', done).on('error', done);
  });
}
