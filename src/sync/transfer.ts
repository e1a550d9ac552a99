// Moving chunk bytes between peers. Receiving: every chunk is hashed before anything of it is stored (the store's
// putChunk re-hashes and refuses a mismatch), a wrong chunk is dropped while the others in the stream still land,
// and the call then fails naming the rejected hashes. Sending: chunks are read (and verified) from the store one
// ahead of the stream, at the configured send rate. Downloading: the bytes in flight are bounded by asking for a
// batch of chunks at a time; HTTP/2 flow control does the rest.

import type { ChunkRef, Store } from '../../store/index.ts';
import { isStoreError } from '../../store/index.ts';
import type { DownloadChunksResponse, UploadChunksRequest, UploadChunksResponse } from '../gen/balupi/sync/v1/sync_pb.js';
import { SyncError } from './errors.ts';
import { bytesToHash, hashToBytes, MAX_HASHES_PER_CALL } from './wire.ts';
import type { SendRate } from './rate.ts';

export interface ReceiveReport {
  received: number;
  stored: number;
  duplicates: number;
  bytes: number;
  rejected: string[];
}

/** Stores the chunks of an upload stream. Throws SyncError('data_loss') at the end if any chunk was wrong. */
export async function receiveChunks(store: Store, stream: AsyncIterable<UploadChunksRequest>, onReport?: (r: ReceiveReport) => void): Promise<ReceiveReport> {
  const r: ReceiveReport = { received: 0, stored: 0, duplicates: 0, bytes: 0, rejected: [] };
  try {
    for await (const m of stream) {
      const hash = bytesToHash(m.hash);
      r.received += 1;
      r.bytes += m.data.length;
      try {
        if (await store.putChunk(hash, m.data, { clean: true })) r.stored += 1;
        else r.duplicates += 1;
      } catch (err) {
        if (!isStoreError(err, 'hash_mismatch') && !isStoreError(err, 'invalid_argument')) throw err;
        r.rejected.push(hash);
      }
    }
  } finally {
    onReport?.(r);
  }
  if (r.rejected.length > 0) {
    throw new SyncError('data_loss', `rejected ${r.rejected.length} chunk(s) whose bytes do not match their hash: ${r.rejected.slice(0, 8).join(', ')}`, {
      details: { rejected: r.rejected },
    });
  }
  return r;
}

/** The chunks named by `hashes`, in order, each read and verified from the store. */
export async function* sendChunks(store: Store, hashes: string[], opts: { rate?: SendRate; signal?: AbortSignal } = {}): AsyncGenerator<{ hash: Uint8Array; data: Uint8Array }> {
  const read = (i: number): Promise<Buffer> | undefined => {
    const h = hashes[i];
    if (h === undefined) return undefined;
    const p = store.getChunk(h);
    p.catch(() => {});
    return p;
  };
  let next = read(0);
  for (let i = 0; i < hashes.length; i++) {
    const data = await next!;
    next = read(i + 1);
    await opts.rate?.take(data.length, opts.signal);
    yield { hash: hashToBytes(hashes[i]!), data };
  }
}

/** Splits chunk refs into groups of at most `maxBytes` (and MAX_HASHES_PER_CALL entries). */
export function batches(refs: ChunkRef[], maxBytes: number): ChunkRef[][] {
  const out: ChunkRef[][] = [];
  let cur: ChunkRef[] = [];
  let bytes = 0;
  for (const r of refs) {
    if (cur.length > 0 && (bytes + r.size > maxBytes || cur.length >= MAX_HASHES_PER_CALL)) {
      out.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(r);
    bytes += r.size;
  }
  if (cur.length > 0) out.push(cur);
  return out;
}

/** What the client side needs of the generated client (so tests can pass a client with a different transport). */
export interface ChunkClient {
  missingChunks(req: { hashes: Uint8Array[] }, opts?: { signal?: AbortSignal }): Promise<{ missing: Uint8Array[] }>;
  uploadChunks(req: AsyncIterable<{ hash: Uint8Array; data: Uint8Array }>, opts?: { signal?: AbortSignal }): Promise<UploadChunksResponse>;
  downloadChunks(req: { hashes: Uint8Array[] }, opts?: { signal?: AbortSignal }): AsyncIterable<DownloadChunksResponse>;
}

/** The distinct chunks among `refs` that the other side lacks. */
export async function missingOn(client: ChunkClient, refs: ChunkRef[], signal?: AbortSignal): Promise<ChunkRef[]> {
  const seen = new Set<string>();
  const distinct = refs.filter((c) => !seen.has(c.hash) && seen.add(c.hash));
  const missing: ChunkRef[] = [];
  for (let i = 0; i < distinct.length; i += MAX_HASHES_PER_CALL) {
    const group = distinct.slice(i, i + MAX_HASHES_PER_CALL);
    const res = await client.missingChunks({ hashes: group.map((c) => hashToBytes(c.hash)) }, { signal });
    const lacking = new Set(res.missing.map(bytesToHash));
    missing.push(...group.filter((c) => lacking.has(c.hash)));
  }
  return missing;
}

export interface UploadReport {
  chunks: number;
  bytes: number;
}

/** Uploads the chunks of `refs` the other side lacks (asked first: chunks it acknowledged are never sent again). */
export async function uploadMissing(
  client: ChunkClient,
  store: Store,
  refs: ChunkRef[],
  opts: { rate?: SendRate; signal?: AbortSignal; callBytes?: number; onProgress?: (sentBytes: number) => void } = {},
): Promise<UploadReport> {
  const missing = await missingOn(client, refs, opts.signal);
  let sent = 0;
  for (const group of batches(missing, opts.callBytes ?? 256 * 1024 * 1024)) {
    const stream = async function* () {
      for await (const m of sendChunks(store, group.map((c) => c.hash), opts)) {
        yield m;
        sent += m.data.length;
        opts.onProgress?.(sent);
      }
    };
    await client.uploadChunks(stream(), { signal: opts.signal });
  }
  return { chunks: missing.length, bytes: missing.reduce((s, c) => s + c.size, 0) };
}

/**
 * Downloads `refs` (distinct chunks) into the store, at most `maxInFlightBytes` requested per call and a few writes
 * (fsync each) overlapping the next chunk's arrival. A chunk whose bytes do not match its hash fails the download.
 */
export async function downloadInto(
  client: ChunkClient,
  store: Store,
  refs: ChunkRef[],
  opts: { signal?: AbortSignal; maxInFlightBytes?: number; writers?: number } = {},
): Promise<UploadReport> {
  const writers = opts.writers ?? 4;
  let chunks = 0;
  let bytes = 0;
  for (const group of batches(refs, opts.maxInFlightBytes ?? 32 * 1024 * 1024)) {
    const writes = new Set<Promise<void>>();
    let failure: unknown;
    let i = 0;
    for await (const m of client.downloadChunks({ hashes: group.map((c) => hashToBytes(c.hash)) }, { signal: opts.signal })) {
      if (failure) throw failure;
      const expected = group[i++];
      const hash = bytesToHash(m.hash);
      if (!expected || hash !== expected.hash) throw new SyncError('data_loss', `peer sent chunk ${hash}, expected ${expected?.hash ?? 'nothing'}`);
      const p = store.putChunk(hash, m.data, { clean: true }).then(
        () => {
          chunks += 1;
          bytes += m.data.length;
        },
        (err: unknown) => {
          failure ??= isStoreError(err, 'hash_mismatch') ? new SyncError('data_loss', `peer sent wrong bytes for chunk ${hash}`, { cause: err }) : err;
        },
      );
      writes.add(p);
      void p.finally(() => writes.delete(p));
      while (writes.size >= writers) await Promise.race(writes);
    }
    await Promise.all(writes);
    if (failure) throw failure;
    if (i !== group.length) throw new SyncError('data_loss', `peer sent ${i} of ${group.length} chunks`);
  }
  return { chunks, bytes };
}
