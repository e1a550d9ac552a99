// Moving chunk bytes between peers. Receiving: every chunk is hashed before anything of it is stored (the store's
// putChunk re-hashes and refuses a mismatch), a wrong chunk is dropped while the others in the stream still land,
// and the call then fails naming the rejected hashes. Sending: chunks are read (and verified) from the store one
// ahead of the stream, at the configured send rate. Downloading: the bytes in flight are bounded by asking for a
// batch of chunks at a time; HTTP/2 flow control does the rest.

import { readAhead, type ChunkRef, type Lease, type Store } from '../../store/index.ts';
import type { DownloadChunksResponse, UploadChunksRequest, UploadChunksResponse } from '../gen/balupi/sync/v1/sync_pb.js';
import { SyncError } from './errors.ts';
import { bytesToHash, hashToBytes, MAX_HASHES_PER_CALL } from './wire.ts';
import type { SendRate } from './rate.ts';
import { messageBuffers } from './grpc-frames.ts';

export interface ReceiveReport {
  received: number;
  stored: number;
  duplicates: number;
  bytes: number;
  rejected: string[];
}

/**
 * Chunks received are stored in batches of this many bytes (one directory fsync and one index commit per batch); a
 * call holds up to two (one being stored, one filling). With 16 MiB the hub receiving a push (4 calls at once) had
 * ~100 MB of message buffers in use at its peak, with 8 MiB ~60 MB, at the same speed.
 */
const STORE_BATCH_BYTES = 8 * 1024 * 1024;
const STORE_BATCH_CHUNKS = 512;

type ChunkBatch = { hash: string; data: Uint8Array }[];
type PutOutcomes = Awaited<ReturnType<Store['putChunks']>>;

/**
 * Stores received chunks in batches (at most STORE_BATCH_BYTES and `maxChunks` each), one batch written while the
 * next one fills; `onStored` sees each batch with the store's outcome per chunk (throwing there fails `writing`).
 */
class ChunkBatcher {
  readonly #store: Store;
  readonly #opts: { maxChunks: number; sync?: boolean };
  readonly #onStored: (batch: ChunkBatch, outcomes: PutOutcomes) => void;
  #batch: ChunkBatch = [];
  #bytes = 0;
  #failure: unknown;
  /** The batches handed to the store so far, in order; rejects once one of them failed. */
  writing: Promise<void> = Promise.resolve();

  constructor(store: Store, opts: { maxChunks: number; sync?: boolean }, onStored: (batch: ChunkBatch, outcomes: PutOutcomes) => void) {
    this.#store = store;
    this.#opts = opts;
    this.#onStored = onStored;
  }

  /**
   * Adds a chunk; when the batch is full, waits for the previous write, then starts writing this batch. Throws the
   * error of a batch that failed (a full disk), so that the stream stops there instead of at the next full batch.
   */
  async add(hash: string, data: Uint8Array): Promise<void> {
    if (this.#failure !== undefined) throw this.#failure;
    // Hashed now, while the previous batch is being written, not when this batch is stored (a wrong chunk is
    // refused there all the same).
    await this.#store.checkChunk(hash, data);
    this.#batch.push({ hash, data });
    this.#bytes += data.length;
    if (this.#bytes >= STORE_BATCH_BYTES || this.#batch.length >= this.#opts.maxChunks) {
      await this.writing;
      this.flush();
    }
  }

  /** Starts writing what is batched (nothing when empty). */
  flush(): void {
    if (this.#batch.length === 0) return;
    const b = this.#batch;
    this.#batch = [];
    this.#bytes = 0;
    const putOpts = this.#opts.sync === undefined ? { clean: true } : { clean: true, sync: this.#opts.sync };
    this.writing = this.writing.then(async () => {
      try {
        this.#onStored(b, await this.#store.putChunks(b, putOpts));
      } finally {
        // Stored (or refused): the received message buffers can take the next messages (grpc-frames.ts).
        for (const c of b) messageBuffers.give(c.data);
      }
    });
    // Nobody awaits this batch while the next messages arrive: its failure is recorded here, or it would be an
    // unhandled rejection, which ends the process (a hub whose disk filled up during a push exited that way).
    this.writing.catch((err: unknown) => void (this.#failure ??= err));
  }
}

/** Stores the chunks of an upload stream. Throws SyncError('data_loss') at the end if any chunk was wrong. */
export async function receiveChunks(
  store: Store,
  stream: AsyncIterable<UploadChunksRequest>,
  onReport?: (r: ReceiveReport) => void,
  durable: () => Promise<void> = () => store.flush(),
): Promise<ReceiveReport> {
  const r: ReceiveReport = { received: 0, stored: 0, duplicates: 0, bytes: 0, rejected: [] };
  const batcher = new ChunkBatcher(store, { maxChunks: STORE_BATCH_CHUNKS, sync: false }, (b, outcomes) => {
    outcomes.forEach((o, i) => {
      if (o === 'stored') r.stored += 1;
      else if (o === 'present') r.duplicates += 1;
      else r.rejected.push(b[i]!.hash);
    });
  });
  try {
    for await (const m of stream) {
      r.received += 1;
      r.bytes += m.data.length;
      await batcher.add(bytesToHash(m.hash), m.data);
    }
    batcher.flush();
    await batcher.writing;
    await durable(); // the answer acknowledges the chunks: make their rows durable first (shared with other calls)
  } finally {
    // Whatever arrived before a broken stream is still stored (resume skips it), then reported.
    batcher.flush();
    await batcher.writing.catch(() => {});
    onReport?.(r);
  }
  if (r.rejected.length > 0) {
    throw new SyncError('data_loss', `rejected ${r.rejected.length} chunk(s) whose bytes do not match their hash: ${r.rejected.slice(0, 8).join(', ')}`, {
      details: { rejected: r.rejected },
    });
  }
  return r;
}

/**
 * Chunks read ahead of the stream, so that disk reads and verification overlap the sending: at most READ_AHEAD
 * chunks and, where the sizes are known, READ_AHEAD_BYTES (always at least one chunk). By count alone each of a
 * push's 4 concurrent uploads could hold 8 chunks of 4 MiB.
 */
const READ_AHEAD = 8;
const READ_AHEAD_BYTES = 8 * 1024 * 1024;

export interface SentChunk {
  hash: Uint8Array;
  data: Uint8Array;
  /** With `lease`: call once `data` is no longer referenced (its buffer is reused); otherwise a no-op. */
  release: () => void;
}

/** A chunk to send: its hash, and its size where known (bounds the read-ahead). */
export interface ChunkToSend {
  hash: string;
  size?: number;
}

/**
 * The chunks named by `chunks`, in order, each read and verified from the store. `lease`: read into the store's
 * reusable buffers (Store.leaseChunk), for a sender that releases each chunk once its write has completed; chunks
 * read ahead and never yielded are released here.
 */
export async function* sendChunks(
  store: Store,
  chunks: readonly ChunkToSend[],
  opts: { rate?: SendRate; signal?: AbortSignal; lease?: boolean } = {},
): AsyncGenerator<SentChunk> {
  const read = (hash: string): Promise<Lease> => (opts.lease ? store.leaseChunk(hash) : store.getChunk(hash).then((data) => ({ data, release: () => {} })));
  let i = 0;
  for await (const chunk of readAhead(chunks.length, (k) => read(chunks[k]!.hash), { maxCount: READ_AHEAD, maxBytes: READ_AHEAD_BYTES, sizeOf: (k) => chunks[k]!.size ?? 0 })) {
    try {
      await opts.rate?.take(chunk.data.length, opts.signal);
    } catch (err) {
      chunk.release();
      throw err;
    }
    yield { hash: hashToBytes(chunks[i++]!.hash), ...chunk };
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
  /** uploadChunks calls each message's `release()` once written: it may be given leased store buffers. */
  releasesChunks?: boolean;
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
      for await (const m of sendChunks(store, group, { ...opts, lease: client.releasesChunks === true })) {
        yield client.releasesChunks ? m : { hash: m.hash, data: m.data };
        sent += m.data.length;
        opts.onProgress?.(sent);
      }
    };
    await client.uploadChunks(stream(), { signal: opts.signal });
  }
  return { chunks: missing.length, bytes: missing.reduce((s, c) => s + c.size, 0) };
}

/**
 * Downloads `refs` (distinct chunks) into the store, at most `maxInFlightBytes` requested per call. Chunks are
 * stored in batches (one batch written while the next arrives). A chunk whose bytes do not match its hash fails the
 * download; it is never stored, the chunks before it are.
 */
export async function downloadInto(
  client: ChunkClient,
  store: Store,
  refs: ChunkRef[],
  opts: { signal?: AbortSignal; maxInFlightBytes?: number; batchChunks?: number } = {},
): Promise<UploadReport> {
  let chunks = 0;
  let bytes = 0;
  // One batcher for all calls: the last batch of one call is written while the next call streams.
  const batcher = new ChunkBatcher(store, { maxChunks: opts.batchChunks ?? STORE_BATCH_CHUNKS }, (b, outcomes) => {
    const bad = outcomes.indexOf('rejected');
    outcomes.forEach((o, i) => {
      if (o !== 'rejected') {
        chunks += 1;
        bytes += b[i]!.data.length;
      }
    });
    if (bad >= 0) throw new SyncError('data_loss', `peer sent wrong bytes for chunk ${b[bad]!.hash}`);
  });
  try {
    for (const group of batches(refs, opts.maxInFlightBytes ?? 32 * 1024 * 1024)) {
      let i = 0;
      for await (const m of client.downloadChunks({ hashes: group.map((c) => hashToBytes(c.hash)) }, { signal: opts.signal })) {
        const expected = group[i++];
        const hash = bytesToHash(m.hash);
        if (!expected || hash !== expected.hash) throw new SyncError('data_loss', `peer sent chunk ${hash}, expected ${expected?.hash ?? 'nothing'}`);
        await batcher.add(hash, m.data);
      }
      if (i !== group.length) throw new SyncError('data_loss', `peer sent ${i} of ${group.length} chunks`);
    }
  } finally {
    batcher.flush();
    await batcher.writing;
  }
  return { chunks, bytes };
}
