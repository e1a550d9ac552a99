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

/**
 * Whether every chunk's bytes (`chunks`: inlineChunks of `data`) and the whole content match their hashes (a one-chunk
 * file's two hashes are one). Store.checkChunk remembers each checked slice: putChunks given the same slices does not
 * hash them again.
 */
export async function inlineMatches(store: Store, f: RemoteFile, data: Uint8Array, chunks: { hash: string; data: Uint8Array }[]): Promise<boolean> {
  const checks = chunks.map((c) => store.checkChunk(c.hash, c.data));
  if (chunks.length !== 1 || chunks[0]!.hash !== f.hash) checks.push(store.checkChunk(f.hash, data));
  return (await Promise.all(checks)).every(Boolean);
}

/** Chunks read at the same time for one batch's inline data. */
const READS_AT_ONCE = 16;

/** Those of `files` that go inline: live, 1 byte to INLINE_FILE_BYTES, every chunk dirty, up to INLINE_BATCH_BYTES. */
export async function chooseInline(store: Store, files: readonly FileRecord[]): Promise<Set<FileRecord>> {
  const candidates = files.filter((f) => !f.deleted && f.size > 0 && f.size <= INLINE_FILE_BYTES);
  const dirty = await store.dirty(candidates.flatMap((f) => f.chunks.map((c) => c.hash)));
  const out = new Set<FileRecord>();
  let bytes = 0;
  let k = 0;
  for (const f of candidates) {
    const allDirty = f.chunks.map(() => dirty[k++]).every(Boolean);
    if (!allDirty || bytes + f.size > INLINE_BATCH_BYTES) continue;
    out.add(f);
    bytes += f.size;
  }
  return out;
}

/**
 * Reads each file's content into `buf` at its offset, unverified (the hub checks every byte): chunk by chunk through
 * the store's reused buffers, so that a batch costs one buffer, the request's (commit-batch-call.ts).
 */
export async function readInline(store: Store, files: { file: FileRecord; at: number }[], buf: Buffer): Promise<void> {
  const reads: { hash: string; at: number }[] = [];
  for (const { file, at } of files) {
    let offset = at;
    for (const c of file.chunks) {
      reads.push({ hash: c.hash, at: offset });
      offset += c.size;
    }
  }
  await mapLimit(reads, READS_AT_ONCE, async ({ hash, at }) => {
    const lease = await store.leaseChunk(hash, { verify: false });
    try {
      buf.set(lease.data, at);
    } finally {
      lease.release();
    }
  });
}
