// Moving chunk bytes between peers. Receiving: every chunk is hashed before anything of it is stored (the store's
// putChunk re-hashes and refuses a mismatch), a wrong chunk is dropped while the others in the stream still land,
// and the call then fails naming the rejected hashes. Sending: chunks are read (and verified) from the store one
// ahead of the stream, at the configured send rate. Downloading: the bytes in flight are bounded by asking for a
// batch of chunks at a time; HTTP/2 flow control does the rest.

import { firstOffsets, readAhead, type ChunkRef, type Lease, type PutOutcome, type Store } from '../../store/index.ts';
import type { DownloadChunksResponse, UploadChunksRequest, UploadChunksResponse } from '../gen/balupi/sync/v1/sync_pb.js';
import { Code, ConnectError } from '@connectrpc/connect';
import { SyncError } from './errors.ts';
import { bytesToHash, hashToBytes, MAX_HASHES_PER_CALL, type Place } from './wire.ts';
import type { SendRate } from './rate.ts';
import { messageBuffers } from './message-buffers.ts';
import type { Staging, StagedWrite } from './staging.ts';

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

interface BatchedChunk {
  hash: string;
  data: Uint8Array;
}

/**
 * Stores received chunks in batches (at most STORE_BATCH_BYTES and `maxChunks` each) through `put`, one batch written
 * while the next one fills (throwing in `put` fails `writing`). Each batch's message buffers go back for reuse once
 * it is stored (message-buffers.ts).
 */
class ChunkBatcher<T extends BatchedChunk = BatchedChunk> {
  readonly #store: Store;
  readonly #maxChunks: number;
  readonly #put: (batch: T[]) => Promise<void>;
  readonly #check: ((chunk: T) => Promise<boolean>) | undefined;
  #batch: T[] = [];
  #bytes = 0;
  #failure: unknown;
  /** The batches handed to the store so far, in order; rejects once one of them failed. */
  writing: Promise<void> = Promise.resolve();

  /** `check`: instead of Store.checkChunk (it may replace the chunk's `data` with the buffer now holding it). */
  constructor(store: Store, maxChunks: number, put: (batch: T[]) => Promise<void>, check?: (chunk: T) => Promise<boolean>) {
    this.#store = store;
    this.#maxChunks = maxChunks;
    this.#put = put;
    this.#check = check;
  }

  /**
   * Adds a chunk; when the batch is full, waits for the previous write, then starts writing this batch. Throws the
   * error of a batch that failed (a full disk), so that the stream stops there instead of at the next full batch.
   * Returns whether the chunk's bytes match its hash; with `dropBad`, one that does not is not batched at all
   * (otherwise `put` must refuse it, as putChunks does).
   */
  async add(chunk: T, dropBad = false): Promise<boolean> {
    if (this.#failure !== undefined) throw this.#failure;
    // Hashed now, while the previous batch is being written, not when this batch is stored.
    const ok = await (this.#check ? this.#check(chunk) : this.#store.checkChunk(chunk.hash, chunk.data));
    if (!ok && dropBad) {
      messageBuffers.give(chunk.data);
      return false;
    }
    this.#batch.push(chunk);
    this.#bytes += chunk.data.length;
    if (this.#bytes >= STORE_BATCH_BYTES || this.#batch.length >= this.#maxChunks) {
      await this.writing;
      this.flush();
    }
    return ok;
  }

  /** Starts writing what is batched (nothing when empty). */
  flush(): void {
    if (this.#batch.length === 0) return;
    const b = this.#batch;
    this.#batch = [];
    this.#bytes = 0;
    this.writing = this.writing.then(async () => {
      try {
        await this.#put(b);
      } finally {
        for (const c of b) messageBuffers.give(c.data);
      }
    });
    // Nobody awaits this batch while the next messages arrive: its failure is recorded here, or it would be an
    // unhandled rejection, which ends the process (a hub whose disk filled up during a push exited that way).
    this.writing.catch((err: unknown) => void (this.#failure ??= err));
  }
}

/** Stores chunks received in a batch with putChunks and reports each one's outcome to `onStored`. */
function putInto(store: Store, opts: { sync?: boolean }, onStored: (batch: BatchedChunk[], outcomes: PutOutcome[]) => void): (batch: BatchedChunk[]) => Promise<void> {
  const putOpts = opts.sync === undefined ? { clean: true } : { clean: true, sync: opts.sync };
  return async (b) => onStored(b, await store.putChunks(b, putOpts));
}

/**
 * Stores the chunks of an upload stream. Throws SyncError('data_loss') at the end if any chunk was wrong. With
 * `staging` (the hub), chunks whose place it can use are written into their file's staging file instead of chunk
 * files (staging.ts).
 */
export async function receiveChunks(
  store: Store,
  stream: AsyncIterable<UploadChunksRequest>,
  opts: { onReport?: (r: ReceiveReport) => void; durable?: () => Promise<void>; staging?: Staging } = {},
): Promise<ReceiveReport> {
  const r: ReceiveReport = { received: 0, stored: 0, duplicates: 0, bytes: 0, rejected: [] };
  const batcher = new ChunkBatcher(
    store,
    STORE_BATCH_CHUNKS,
    putInto(store, { sync: false }, (b, outcomes) => {
      outcomes.forEach((o, i) => {
        if (o === 'stored') r.stored += 1;
        else if (o === 'present') r.duplicates += 1;
        else r.rejected.push(b[i]!.hash);
      });
    }),
  );
  const writer = opts.staging?.writer();
  const staged = writer
    ? new ChunkBatcher<StagedWrite>(
        store,
        STORE_BATCH_CHUNKS,
        async (b) => {
          await writer.write(b);
          r.stored += b.length;
        },
        (w) => opts.staging!.check(w),
      )
    : undefined;
  const batchers = staged ? [batcher, staged] : [batcher];
  try {
    for await (const m of stream) {
      r.received += 1;
      r.bytes += m.data.length;
      const hash = bytesToHash(m.hash);
      const stage = writer?.stageOf(m.place, m.data.length);
      if (stage === undefined) await batcher.add({ hash, data: m.data });
      else if (!(await staged!.add({ stage, hash, data: m.data, offset: Number(m.place!.offset), fileSize: Number(m.place!.fileSize) }, true))) r.rejected.push(hash);
    }
    for (const b of batchers) b.flush();
    for (const b of batchers) await b.writing;
    // the answer acknowledges the chunks: make their rows durable first (shared with other calls)
    await (opts.durable ?? (() => store.flush()))();
  } finally {
    // Whatever arrived before a broken stream is still stored (resume skips it), then reported.
    for (const b of batchers) b.flush();
    for (const b of batchers) await b.writing.catch(() => {});
    await writer?.close();
    opts.onReport?.(r);
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
  place?: Place;
  /** With `lease`: call once `data` is no longer referenced (its buffer is reused); otherwise a no-op. */
  release: () => void;
}

/** A chunk to send: its hash, its size where known (bounds the read-ahead), and where it belongs if said. */
export interface ChunkToSend {
  hash: string;
  size?: number;
  place?: Place;
}

/**
 * The chunks named by `chunks`, in order, each read and verified from the store. `lease`: read into the store's
 * reusable buffers (Store.leaseChunk), for a sender that releases each chunk once its write has completed; chunks
 * read ahead and never yielded are released here. `verify: false` (with `lease`): a chunk file's hash is not checked
 * (ReadOpts.verify; its size is), for an upload, whose receiver hashes every chunk and refuses a wrong one by name.
 * Chunks in the hub's root folder are checked all the same (a file there can change behind the hub's back).
 */
export async function* sendChunks(
  store: Store,
  chunks: readonly ChunkToSend[],
  opts: { rate?: SendRate; signal?: AbortSignal; lease?: boolean; verify?: boolean } = {},
): AsyncGenerator<SentChunk> {
  const leaseOpts = opts.verify === false ? { verify: false } : {};
  const read = (hash: string): Promise<Lease> => (opts.lease ? store.leaseChunk(hash, leaseOpts) : store.getChunk(hash).then((data) => ({ data, release: () => {} })));
  let i = 0;
  for await (const chunk of readAhead(chunks.length, (k) => read(chunks[k]!.hash), { maxCount: READ_AHEAD, maxBytes: READ_AHEAD_BYTES, sizeOf: (k) => chunks[k]!.size ?? 0 })) {
    try {
      await opts.rate?.take(chunk.data.length, opts.signal);
    } catch (err) {
      chunk.release();
      throw err;
    }
    const c = chunks[i++]!;
    yield { hash: hashToBytes(c.hash), ...chunk, ...(c.place ? { place: c.place } : {}) };
  }
}

/** `missing` (distinct chunks of the file's `refs`), each with its first offset in the file. */
function placed(file: { path: string; size: number; hash: string }, refs: ChunkRef[], missing: ChunkRef[]): (ChunkRef & ChunkToSend)[] {
  const offsets = firstOffsets(refs);
  const common = { path: file.path, fileSize: BigInt(file.size), fileHash: hashToBytes(file.hash) };
  return missing.map((c) => ({ ...c, place: { ...common, offset: BigInt(offsets.get(c.hash)!) } }));
}

/** Splits chunk refs into groups of at most `maxBytes` (and MAX_HASHES_PER_CALL entries). */
export function batches<T extends ChunkRef>(refs: T[], maxBytes: number): T[][] {
  const out: T[][] = [];
  let cur: T[] = [];
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
  uploadChunks(req: AsyncIterable<{ hash: Uint8Array; data: Uint8Array; place?: Place }>, opts?: { signal?: AbortSignal }): Promise<UploadChunksResponse>;
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

/**
 * Uploads the chunks of `refs` the other side lacks (asked first: chunks it acknowledged are never sent again). With
 * `file` (refs are then that file's chunks, in order), each chunk says where in the file it belongs, so that a hub
 * can write it straight into place (staging.ts).
 */
export async function uploadMissing(
  client: ChunkClient,
  store: Store,
  refs: ChunkRef[],
  opts: { rate?: SendRate; signal?: AbortSignal; callBytes?: number; onProgress?: (sentBytes: number) => void; file?: { path: string; size: number; hash: string } } = {},
): Promise<UploadReport> {
  const missing = await missingOn(client, refs, opts.signal);
  const toSend: (ChunkRef & ChunkToSend)[] = opts.file ? placed(opts.file, refs, missing) : missing;
  let sent = 0;
  for (const group of batches(toSend, opts.callBytes ?? 256 * 1024 * 1024)) {
    const stream = async function* () {
      // The receiver hashes every chunk (the hub refuses a wrong one by name, storing nothing of it): on the Pi a
      // second BLAKE3 of every byte pushed was most of what its read-back cost.
      for await (const m of sendChunks(store, group, { ...opts, lease: client.releasesChunks === true, verify: false })) {
        yield client.releasesChunks ? m : { hash: m.hash, data: m.data, ...(m.place ? { place: m.place } : {}) };
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
  const batcher = new ChunkBatcher(
    store,
    opts.batchChunks ?? STORE_BATCH_CHUNKS,
    putInto(store, {}, (b, outcomes) => {
      const bad = outcomes.indexOf('rejected');
      outcomes.forEach((o, i) => {
        if (o !== 'rejected') {
          chunks += 1;
          bytes += b[i]!.data.length;
        }
      });
      if (bad >= 0) throw new SyncError('data_loss', `peer sent wrong bytes for chunk ${b[bad]!.hash}`);
    }),
  );
  try {
    for (const group of batches(refs, opts.maxInFlightBytes ?? 32 * 1024 * 1024)) {
      let i = 0;
      try {
        for await (const m of client.downloadChunks({ hashes: group.map((c) => hashToBytes(c.hash)) }, { signal: opts.signal })) {
          const expected = group[i++];
          const hash = bytesToHash(m.hash);
          if (!expected || hash !== expected.hash) throw new SyncError('data_loss', `peer sent chunk ${hash}, expected ${expected?.hash ?? 'nothing'}`);
          await batcher.add({ hash, data: m.data });
        }
      } catch (err) {
        // The peer could not send the next chunk: it no longer has it, or the file it read it from changed (a hub's
        // root). Said with its hash, so that the caller can leave out the files that need it and fetch the rest.
        const gone = group[i];
        if (!(err instanceof ConnectError && (err.code === Code.NotFound || err.code === Code.DataLoss) && gone)) throw err;
        throw new SyncError('chunk_gone', `the peer could not send chunk ${gone.hash} (${Code[err.code]})`, { cause: err, details: { hash: gone.hash } });
      }
      if (i !== group.length) throw new SyncError('data_loss', `peer sent ${i} of ${group.length} chunks`);
    }
  } finally {
    batcher.flush();
    await batcher.writing;
  }
  return { chunks, bytes };
}
