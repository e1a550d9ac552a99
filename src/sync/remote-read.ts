// Reading a file the Pi holds only as metadata ('remote'): the chunks of the requested range that are not here are
// downloaded from the hub in file order and passed on as they arrive, each verified and stored first (putChunks
// hashes it and refuses a wrong one, so a client never gets bytes that do not match the record), and kept: a later
// read is a cache hit, and once every chunk is here the file becomes 'local'. Chunks already here are read from the
// store. Memory: one download call asks for at most CALL_BYTES; HTTP/2 flow control bounds what is in flight.

import { Readable } from 'node:stream';
import { ConnectError } from '@connectrpc/connect';
import type { ChunkRef, FileRecord, Store } from '../../store/index.ts';
import type { ChunkClient } from './transfer.ts';
import { batches } from './transfer.ts';
import { bytesToHash, hashToBytes } from './wire.ts';
import { isConnectionError, SyncError } from './errors.ts';

/**
 * Errors that mean "the hub cannot be reached now" (asleep, not started, refusing us), not "this read is wrong": the
 * statuses the push takes for a lost hub (isConnectionError), and the probe's own deadline.
 */
export function isHubUnreachable(err: unknown): boolean {
  return isConnectionError(err) || (!(err instanceof ConnectError) && (err as Error | null)?.name === 'TimeoutError');
}

/** Bytes asked for per DownloadChunks call. */
const CALL_BYTES = 64 * 1024 * 1024;

export interface RemoteRange {
  offset: number;
  length: number;
}

interface Piece extends ChunkRef {
  /** Offset of the chunk in the file. */
  start: number;
}

/** The chunks covering [offset, offset + length), in file order. */
function piecesOf(rec: FileRecord, range: RemoteRange): Piece[] {
  const out: Piece[] = [];
  const end = range.offset + range.length;
  let pos = 0;
  for (const c of rec.chunks) {
    if (pos >= end) break;
    if (pos + c.size > range.offset) out.push({ ...c, start: pos });
    pos += c.size;
  }
  return out;
}

/**
 * Checks that the hub answers and has the first chunk that must come from it (a unary call with a short deadline), so
 * the caller can still answer 503 before it sends any byte. Returns the chunks to fetch (distinct, file order).
 */
export async function prepareRemoteRead(store: Store, client: ChunkClient, rec: FileRecord, range: RemoteRange, signal?: AbortSignal): Promise<ChunkRef[]> {
  const pieces = piecesOf(rec, range);
  const present = new Set(await store.hasChunks([...new Set(pieces.map((p) => p.hash))]));
  const seen = new Set<string>();
  const fetch = pieces.filter((p) => !present.has(p.hash) && !seen.has(p.hash) && seen.add(p.hash)).map((p) => ({ hash: p.hash, size: p.size }));
  if (fetch.length > 0) {
    const probe = AbortSignal.any([AbortSignal.timeout(5_000), ...(signal ? [signal] : [])]);
    const res = await client.missingChunks({ hashes: [hashToBytes(fetch[0]!.hash)] }, { signal: probe });
    if (res.missing.length > 0) throw new SyncError('missing_chunks', `the hub does not have the bytes of ${rec.path} (changed there meanwhile?)`);
  }
  return fetch;
}

/** The bytes of `range` of `rec`: local chunks from the store, the others (`fetch`) from the hub as they arrive. */
export function remoteReadStream(store: Store, client: ChunkClient, rec: FileRecord, range: RemoteRange, fetch: ChunkRef[], signal?: AbortSignal): Readable {
  const pieces = piecesOf(rec, range);
  const end = range.offset + range.length;
  const wanted = new Set(fetch.map((c) => c.hash));

  async function* arrivals(): AsyncGenerator<{ hash: string; data: Uint8Array }> {
    for (const group of batches(fetch, CALL_BYTES)) {
      let i = 0;
      for await (const m of client.downloadChunks({ hashes: group.map((c) => hashToBytes(c.hash)) }, { signal })) {
        const hash = bytesToHash(m.hash);
        if (hash !== group[i]?.hash) throw new SyncError('data_loss', `hub sent chunk ${hash}, expected ${group[i]?.hash ?? 'nothing'}`);
        i += 1;
        yield { hash, data: m.data };
      }
      if (i !== group.length) throw new SyncError('data_loss', `hub sent ${i} of ${group.length} chunks`);
    }
  }

  async function* bytes(): AsyncGenerator<Uint8Array> {
    const incoming = arrivals();
    let stored = 0;
    try {
      for (const p of pieces) {
        let data: Uint8Array;
        if (wanted.has(p.hash)) {
          const next = await incoming.next();
          if (next.done) throw new SyncError('data_loss', 'the hub stopped sending');
          // Verified and durable on disk (the row's durability comes with the flush below) before it goes out.
          const [outcome] = await store.putChunks([next.value], { clean: true, sync: false });
          if (outcome === 'rejected') throw new SyncError('data_loss', `hub sent wrong bytes for chunk ${p.hash}`);
          wanted.delete(p.hash);
          stored += 1;
          data = next.value.data;
        } else {
          data = await store.getChunk(p.hash);
        }
        const from = Math.max(0, range.offset - p.start);
        const to = Math.min(p.size, end - p.start);
        yield from === 0 && to === p.size ? data : data.subarray(from, to);
      }
    } finally {
      await incoming.return(undefined);
      if (stored > 0) {
        await store.flush().catch(() => {});
        await store.promoteIfComplete(rec.path).catch(() => {});
      }
    }
  }

  return Readable.from(bytes(), { objectMode: false, highWaterMark: 1024 * 1024 });
}
