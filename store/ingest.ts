// Ingest: stream -> FastCDC chunks -> BLAKE3 per chunk, BLAKE3 and SHA-256 for the whole file -> new chunks written (temp, fsync,
// rename; a few in flight so fsync latency overlaps hashing) -> fan-out directories fsynced -> one index batch makes
// the version visible. A failure at any point leaves the previous version intact and removes the chunk files this
// ingest wrote that nothing references.
//
// Memory: chunks are assembled in a small pool of reused buffers (one per chunk in flight + one being filled), and
// incoming pieces are copied out at once. Allocating a fresh buffer per chunk instead left up to ~75 MB of dead
// buffers waiting for V8's external-memory GC trigger during a 2 GiB ingest (bench/store.ts measures peak RSS).

import fs from 'node:fs/promises';
import { createHash } from 'node:crypto';
import type { Engine } from './engine.ts';
import type { ChunkRef, FileRecord } from './records.ts';
import { toHex } from './hasher.ts';
import { Chunker } from './chunker.ts';
import { validateName } from './names.ts';
import { mapIoError, StoreError } from './errors.ts';
import { checkBase, currentRecord, writeVersion } from './commit.ts';

export interface IngestMeta {
  mtimeMs?: number;
  /** POSIX permission bits (default 0o644). */
  mode?: number;
}

export interface IngestOptions {
  /** Optimistic concurrency: fail with 'conflict' unless the path is at this version (0 = must not exist). */
  baseVersion?: number;
  signal?: AbortSignal;
  /**
   * The source is the store's backing folder's own file at this path (the hub reading its root): no chunk files are
   * written; the chunks are located in that file instead (StoreOptions.backingDir).
   */
  located?: boolean;
}

export interface IngestResult {
  file: FileRecord;
  /** Chunks and bytes this ingest had to store (0 when every chunk was already on disk). */
  newChunks: number;
  newBytes: number;
}

/** Chunk buffers kept between ingests: 4 x 4 MiB with the default chunker (the Pi has 1 GB). */
const SPARE_CHUNK_BUFFERS = 4;

/** Work done per synchronous step: larger input pieces are cut up, with an event-loop turn between the slices. */
const SLICE = 1024 * 1024;

/**
 * A file as a source for ingest, read through two reused buffers: each piece is valid only until the next one is
 * requested (ingest copies pieces out immediately, so it can take them; other consumers must copy too).
 */
export async function* fileSource(file: string, pieceSize = 1024 * 1024): AsyncGenerator<Buffer> {
  const fh = await fs.open(file, 'r');
  // Two buffers: the next piece is read while the consumer works on the current one.
  const bufs = [Buffer.allocUnsafe(pieceSize), Buffer.allocUnsafe(pieceSize)] as const;
  let pos = 0;
  const readInto = (i: 0 | 1): Promise<Buffer> => {
    const at = pos;
    pos += pieceSize;
    const p = fh.read(bufs[i], 0, pieceSize, at).then(({ bytesRead }) => bufs[i].subarray(0, bytesRead));
    p.catch(() => {}); // awaited once the consumer asks for it; a read error meanwhile must not be an unhandled rejection
    return p;
  };
  let next = readInto(0);
  try {
    for (let i: 0 | 1 = 0; ; i = i === 0 ? 1 : 0) {
      const piece = await next;
      if (piece.length === 0) return;
      next = readInto(i === 0 ? 1 : 0);
      yield piece;
    }
  } finally {
    await next.catch(() => {});
    await fh.close();
  }
}

/**
 * The chunk buffers of one ingest: at most `max` at a time, the first ones taken from `spare`, the engine's buffers
 * kept between ingests (up to `spareMax`, handed back by retire()). Fresh chunk-sized buffers for every file count as
 * new external memory for V8, which it answers with full mark-compacts: ~130 while 2,000 small files were ingested
 * (bench/store.ts --small), 0-1 with kept buffers. A small file needs two buffers (its chunk, then the next one
 * being filled); a large file keeps more at once, and those are released.
 */
class BufferPool {
  private readonly size: number;
  private readonly max: number;
  private readonly spare: Buffer[];
  private readonly spareMax: number;

  private readonly free: Buffer[] = [];
  private readonly waiting: ((b: Buffer) => void)[] = [];
  private allocated = 0;

  constructor(size: number, max: number, spare: Buffer[], spareMax: number) {
    this.size = size;
    this.max = max;
    this.spare = spare;
    this.spareMax = spareMax;
  }

  take(): Buffer | Promise<Buffer> {
    const b = this.free.pop();
    if (b) return b;
    if (this.allocated < this.max) {
      this.allocated += 1;
      // a new one owns its ArrayBuffer, so it can be transferred to a hash worker
      return this.spare.pop() ?? Buffer.allocUnsafeSlow(this.size);
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  /** A buffer that will not come back (it was transferred to a worker that died): allow a replacement. */
  forget(): void {
    const w = this.waiting.shift();
    if (w) w(Buffer.allocUnsafeSlow(this.size));
    else this.allocated -= 1;
  }

  give(b: Buffer): void {
    const w = this.waiting.shift();
    if (w) w(b);
    else this.free.push(b);
  }

  /** The ingest is over and every buffer is back: keep some for the next one. */
  retire(): void {
    for (const b of this.free.splice(0)) if (this.spare.length < this.spareMax) this.spare.push(b);
  }
}

/**
 * Chunk and whole-file hashes of one ingest: in a worker when there is one, else here. The whole-file SHA-256 is what
 * BaluHost's clients compare as `checksum`; taking it in this pass saves re-reading the file later.
 */
interface IngestHashing {
  /** Submits the next chunk (file order): the first `len` bytes of `buf`, which is handed over until this resolves. */
  chunk(buf: Buffer, len: number): Promise<{ hash: string; buf: Buffer }>;
  digest(): Promise<{ hash: string; sha256: string }>;
  /** Releases the hashing state of an ingest that will not digest. */
  end(): void;
}

function ingestHashing(engine: Engine): IngestHashing {
  let done = false;
  const session = engine.ingestInWorker ? engine.workers.session() : null;
  if (session) {
    return {
      chunk: (buf, len) => session.chunk(buf, len),
      digest: () => ((done = true), session.digest()),
      end: () => void (done || session.drop()),
    };
  }
  const file = engine.blake3.create();
  const sha = createHash('sha256');
  return {
    async chunk(buf, len) {
      const data = buf.subarray(0, len);
      for (let off = 0; off < len; off += SLICE) {
        file.update(data.subarray(off, off + SLICE));
        sha.update(data.subarray(off, off + SLICE));
      }
      return { hash: len <= SLICE ? toHex(engine.blake3.hash(data)) : await engine.files.hashSliced(data), buf };
    },
    digest: async () => ((done = true), { hash: toHex(file.digest()), sha256: sha.digest('hex') }),
    end: () => void (done || file.dispose()),
  };
}

/**
 * The file's name, or a function that names it once its bytes are stored (called once, right before the version is
 * committed): an upload whose form carries the target after the file streams in before anyone knows where it goes,
 * and nothing is visible under any name until this resolves. If it throws, nothing is committed.
 */
export type IngestName = string | (() => string | Promise<string>);

export async function ingest(
  engine: Engine,
  name: IngestName,
  source: AsyncIterable<Uint8Array>,
  meta: IngestMeta = {},
  opts: IngestOptions = {},
): Promise<IngestResult> {
  let path = typeof name === 'string' ? validateName(name) : '(unnamed upload)';
  const mode = meta.mode ?? 0o644;
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o7777) throw new StoreError('invalid_argument', `invalid mode ${meta.mode}`);
  const located = opts.located === true;
  if (located && (typeof name !== 'string' || engine.backingDir === undefined)) {
    throw new StoreError('invalid_argument', 'a located ingest needs a named path in a store with a backing folder');
  }
  return engine.track(async () => {
    const params = engine.config.chunkParams;
    const chunker = new Chunker(params);
    const hashing = ingestHashing(engine);
    const pool = new BufferPool(params.maxSize, engine.writeConcurrency + 1, engine.spareChunkBuffers, SPARE_CHUNK_BUFFERS);
    const held = new Set<string>();
    const written: string[] = [];
    const fresh = new Set<string>(); // chunks not on disk before this ingest: their directories need an fsync
    const writes = new Set<Promise<void>>();
    let failure: unknown;
    let reservedHere = 0;
    let committed = false;
    const chunks: ChunkRef[] = [];
    let size = 0;
    let newChunks = 0;
    let newBytes = 0;

    /** Takes ownership of `buf` (returned to the pool once the chunk is written or found to be stored already). */
    const storeChunk = async (given: Buffer, len: number): Promise<void> => {
      const ref: ChunkRef = { hash: '', size: len };
      chunks.push(ref);
      size += len;
      const hashed = hashing.chunk(given, len); // submitted now, so the whole-file hash sees chunks in file order
      // The rest (hash, index lookup, budget, write + fsync) runs in the background, so chunking the next bytes never
      // waits for it; in particular not for the thread pool, where lookups queue behind earlier chunks' fsyncs.
      const p = (async () => {
        let buf: Buffer | undefined;
        try {
          const h = await hashed;
          buf = h.buf;
          const hash = h.hash;
          const data = buf.subarray(0, len);
          ref.hash = hash;
          if (held.has(hash)) return;
          held.add(hash);
          engine.holds.acquire(hash); // from here on no delete or eviction unlinks this chunk's file
          if (located) return;
          if (!engine.writes.isBeingWritten(hash)) {
            const row = await engine.idx.getChunk(hash);
            // Only a chunk file counts (holds keep it from here on). Bytes a backing-folder file is recorded as holding
            // are not safe to rely on: that file may have moved or changed unseen (the hub reads it later), and the
            // bytes in hand are then the only ones.
            if (row?.present) return;
            await engine.reserve(len);
            reservedHere += len;
          }
          fresh.add(hash);
          if (await engine.writes.write(hash, data)) {
            written.push(hash);
            newChunks += 1;
            newBytes += len;
          }
        } catch (err) {
          failure ??= err;
        } finally {
          if (buf) pool.give(buf);
          else pool.forget(); // the hash worker died with it (the ingest fails)
        }
      })();
      writes.add(p);
      void p.then(() => writes.delete(p));
      while (writes.size >= engine.writeConcurrency) await Promise.race(writes);
    };

    try {
      let cur = await pool.take();
      let curLen = 0;
      for await (const piece of source) {
        if (!(piece instanceof Uint8Array)) throw new StoreError('invalid_argument', 'ingest expects binary data (Buffer/Uint8Array pieces)');
        for (let off = 0; off < piece.length; off += SLICE) {
          if (off > 0) await new Promise<void>((resolve) => setImmediate(resolve));
          engine.assertOpen();
          opts.signal?.throwIfAborted();
          if (failure) throw failure;
          const slice = piece.subarray(off, off + SLICE);
          let start = 0;
          for (const cut of chunker.push(slice)) {
            cur.set(slice.subarray(start, cut), curLen);
            await storeChunk(cur, curLen + cut - start);
            cur = await pool.take();
            curLen = 0;
            start = cut;
          }
          cur.set(slice.subarray(start), curLen);
          curLen += slice.length - start;
        }
      }
      if (chunker.finish() > 0) await storeChunk(cur, curLen);
      else pool.give(cur);
      await Promise.all(writes);
      if (failure) throw failure;
      opts.signal?.throwIfAborted();
      const { hash, sha256 } = await hashing.digest();
      if (typeof name !== 'string') path = validateName(await name());
      opts.signal?.throwIfAborted();
      await engine.files.syncDirsOf(fresh);
      const file = await engine.transact(async (tx) => {
        const prev = await currentRecord(engine, path);
        checkBase(path, prev, opts.baseVersion);
        return writeVersion(
          engine,
          tx,
          path,
          prev,
          { size, mtimeMs: meta.mtimeMs ?? engine.now(), mode, hash, sha256, chunks, deleted: false, state: 'local' },
          { onDisk: located ? new Set() : held, dirtyNew: true, touch: true, located },
        );
      });
      committed = true;
      engine.unreserve(reservedHere);
      reservedHere = 0;
      for (const h of held) engine.holds.release(h);
      held.clear();
      await engine.maybeEvict();
      return { file, newChunks, newBytes };
    } catch (err) {
      await Promise.all(writes);
      throw mapIoError(err, `ingesting ${path}`);
    } finally {
      pool.retire();
      hashing.end();
      engine.unreserve(reservedHere);
      for (const h of held) engine.holds.release(h);
      if (!committed && !engine.closed) {
        // Files this ingest wrote that no committed record took up are garbage now.
        for (const h of written) {
          const row = await engine.idx.getChunk(h).catch(() => undefined);
          if (!row?.present) await engine.writes.unlinkUnheld(h).catch(() => {});
        }
      }
    }
  });
}
