// Small files pushed with their bytes in the CommitBatch entry ("commit.inline", CommitBatchEntry.data in sync.proto):
// no MissingChunks round trip and no UploadChunks message per file, and a hub writes each one straight into its root
// instead of into a chunk file that is linked into place and unlinked later (HubRoot.commitNew). A push of thousands of
// small files spent most of both peers' time on that per-file machinery, not on the bytes.
//
// Only bytes the hub has not acknowledged travel this way (the Pi's dirty chunks): a renamed or copied file, whose
// chunks the hub holds already, still goes through have/want and sends nothing.

import { mapLimit, type FileRecord, type Store } from '../../store/index.ts';
import { SyncError } from './errors.ts';
import type { RemoteFile } from './wire.ts';

/** The protocol's bound on one entry's data. */
export const INLINE_MAX_FILE_BYTES = 1024 * 1024;
/** What the Pi sends inline: files up to this size (one chunk with the default chunker)... */
export const INLINE_FILE_BYTES = 256 * 1024;
/** ...and at most this many bytes of them per CommitBatch (the message limit is 16 MiB). */
export const INLINE_BATCH_BYTES = 8 * 1024 * 1024;

/** Refuses data that cannot be the file's content (the whole call fails: the caller is broken). */
export function checkInlineShape(f: RemoteFile, data: Uint8Array): void {
  const why = f.deleted ? 'a deletion carries no data' : data.length !== f.size ? `${data.length} bytes of data for a file of ${f.size}` : f.size > INLINE_MAX_FILE_BYTES ? `inline data above ${INLINE_MAX_FILE_BYTES} bytes` : undefined;
  if (why) throw new SyncError('invalid_argument', `${f.path}: ${why}`, { details: { path: f.path } });
}

/** The file's chunks as slices of `data` (its size was checked to be the sum of theirs). */
export function inlineChunks(f: RemoteFile, data: Uint8Array): { hash: string; data: Uint8Array }[] {
  let at = 0;
  return f.chunks.map((c) => ({ hash: c.hash, data: data.subarray(at, (at += c.size)) }));
}

/** Whether every chunk's bytes and the whole content match their hashes (a one-chunk file's two hashes are one). */
export async function inlineMatches(store: Store, f: RemoteFile, data: Uint8Array): Promise<boolean> {
  const chunks = inlineChunks(f, data);
  const checks = chunks.map((c) => store.checkChunk(c.hash, c.data));
  if (chunks.length !== 1 || chunks[0]!.hash !== f.hash) checks.push(store.checkChunk(f.hash, data));
  return (await Promise.all(checks)).every(Boolean);
}

/** Chunks read at the same time for one batch's inline data. */
const READS_AT_ONCE = 16;

/**
 * Reads the content of those of `files` that go inline: live, 1 byte to INLINE_FILE_BYTES, every chunk dirty, up to
 * INLINE_BATCH_BYTES in all. Unverified (the hub checks every byte). Each chunk is read into one of the store's reused
 * buffers and copied into one buffer for the batch: a reused buffer per file held until the commit answered left
 * most of them to the garbage collector (shared memory it hardly notices: the Pi's peak doubled).
 */
export async function readInline(store: Store, files: readonly FileRecord[]): Promise<Map<FileRecord, Uint8Array>> {
  const candidates = files.filter((f) => !f.deleted && f.size > 0 && f.size <= INLINE_FILE_BYTES);
  const dirty = await store.dirty(candidates.flatMap((f) => f.chunks.map((c) => c.hash)));
  const out = new Map<FileRecord, Uint8Array>();
  const reads: { hash: string; at: number }[] = [];
  let bytes = 0;
  let k = 0;
  for (const f of candidates) {
    const allDirty = f.chunks.map(() => dirty[k++]).every(Boolean);
    if (!allDirty || bytes + f.size > INLINE_BATCH_BYTES) continue;
    out.set(f, new Uint8Array(0)); // a view of the batch's buffer once its size is known
    let at = bytes;
    for (const c of f.chunks) {
      reads.push({ hash: c.hash, at });
      at += c.size;
    }
    bytes += f.size;
  }
  const buf = Buffer.allocUnsafe(bytes);
  let offset = 0;
  for (const f of out.keys()) {
    out.set(f, buf.subarray(offset, offset + f.size));
    offset += f.size;
  }
  await mapLimit(reads, READS_AT_ONCE, async ({ hash, at }) => {
    const lease = await store.leaseChunk(hash, { verify: false });
    buf.set(lease.data, at);
    lease.release();
  });
  return out;
}
