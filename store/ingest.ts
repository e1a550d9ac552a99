// Ingest: stream -> FastCDC chunks -> BLAKE3 per chunk and for the whole file -> new chunks written (temp, fsync,
// rename; a few in flight so fsync latency overlaps hashing) -> fan-out directories fsynced -> one index batch makes
// the version visible. Nothing is buffered beyond the chunks in flight; a failure at any point leaves the previous
// version intact and removes the chunk files this ingest wrote that nothing references.

import type { Engine } from './engine.ts';
import type { ChunkRef, FileRecord } from './records.ts';
import type { IncrementalHash } from './hasher.ts';
import { toHex } from './hasher.ts';
import { chunkStream } from './chunker.ts';
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
}

export interface IngestResult {
  file: FileRecord;
  /** Chunks and bytes this ingest had to store (0 when every chunk was already on disk). */
  newChunks: number;
  newBytes: number;
}

const SLICE = 1024 * 1024;

/** Feeds a chunk to the file hasher and returns its own hash, yielding to the event loop between 1 MiB slices. */
async function hashChunk(engine: Engine, fileHash: IncrementalHash, chunk: Buffer): Promise<string> {
  if (chunk.length <= SLICE) {
    fileHash.update(chunk);
    return toHex(engine.blake3.hash(chunk));
  }
  const h = engine.blake3.create();
  try {
    for (let off = 0; off < chunk.length; off += SLICE) {
      if (off > 0) await new Promise<void>((resolve) => setImmediate(resolve));
      const slice = chunk.subarray(off, off + SLICE);
      fileHash.update(slice);
      h.update(slice);
    }
    return toHex(h.digest());
  } finally {
    h.dispose();
  }
}

export async function ingest(
  engine: Engine,
  path: string,
  source: AsyncIterable<Uint8Array>,
  meta: IngestMeta = {},
  opts: IngestOptions = {},
): Promise<IngestResult> {
  validateName(path);
  const mode = meta.mode ?? 0o644;
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o7777) throw new StoreError('invalid_argument', `invalid mode ${meta.mode}`);
  return engine.track(async () => {
    const fileHash = engine.blake3.create();
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
    try {
      for await (const chunk of chunkStream(source, engine.config.chunkParams)) {
        engine.assertOpen();
        opts.signal?.throwIfAborted();
        if (failure) throw failure;
        const hash = await hashChunk(engine, fileHash, chunk);
        chunks.push({ hash, size: chunk.length });
        size += chunk.length;
        if (held.has(hash)) continue;
        held.add(hash);
        engine.holds.acquire(hash); // from here on no delete or eviction unlinks this chunk's file
        if (!engine.isBeingWritten(hash)) {
          const row = await engine.idx.getChunk(hash);
          if (row?.present) continue;
          await engine.reserve(chunk.length);
          reservedHere += chunk.length;
        }
        fresh.add(hash);
        const len = chunk.length;
        const p = engine.writeChunk(hash, chunk).then(
          (wrote) => {
            if (wrote) {
              written.push(hash);
              newChunks += 1;
              newBytes += len;
            }
          },
          (err: unknown) => {
            failure ??= err;
          },
        );
        writes.add(p);
        void p.then(() => writes.delete(p));
        while (writes.size >= engine.writeConcurrency) await Promise.race(writes);
      }
      await Promise.all(writes);
      if (failure) throw failure;
      opts.signal?.throwIfAborted();
      const hash = toHex(fileHash.digest());
      await engine.files.syncDirsOf(fresh);
      const file = await engine.transact(async (tx) => {
        const prev = await currentRecord(engine, path);
        checkBase(path, prev, opts.baseVersion);
        return writeVersion(
          engine,
          tx,
          path,
          prev,
          { size, mtimeMs: meta.mtimeMs ?? engine.now(), mode, hash, chunks, deleted: false, state: 'local' },
          { onDisk: held, dirtyNew: true, touch: true },
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
      fileHash.dispose();
      engine.unreserve(reservedHere);
      for (const h of held) engine.holds.release(h);
      if (!committed && !engine.closed) {
        // Files this ingest wrote that no committed record took up are garbage now.
        for (const h of written) {
          const row = await engine.idx.getChunk(h).catch(() => undefined);
          if (!row?.present) await engine.unlinkUnheld(h).catch(() => {});
        }
      }
    }
  });
}
