// UploadChunks without the generic RPC machinery, on both ends; the bytes on the wire are exactly gRPC UploadChunks
// of sync.proto, so either end also works against any other gRPC implementation of it (tested both ways).
//
// Why: as for DownloadChunks (chunk-stream.ts), a generic client encodes every chunk into a protobuf buffer and copies
// it again into the gRPC envelope, and a generic server concatenates the HTTP/2 frames and decodes them; pushing 1 GB
// from the Pi made ~3 GB of garbage on the two peers. Here the client writes a small pre-encoded header and then the
// chunk buffer itself (leased from the store: it goes back once HTTP/2 has written it), and the server copies each
// message once into a buffer of the announced size. What happens to the chunks is unchanged: the server hands the
// messages to the service's own UploadChunks implementation (re-hashing, storing, reporting, the shared flush).

import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import { constants as h2 } from 'node:http2';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { Code, ConnectError } from '@connectrpc/connect';
import type { Http2SessionManager } from '@connectrpc/connect-node';
import { ChunkPlaceSchema, SyncService, UploadChunksRequestSchema, UploadChunksResponseSchema, type UploadChunksRequest, type UploadChunksResponse } from '../gen/balupi/sync/v1/sync_pb.js';
import type { Place } from './wire.ts';
import {
  callFailure,
  chunkMessageHeader,
  closedWithoutStatus,
  decodeRequest,
  drained,
  grpcRoute,
  openGrpcCall,
  serveOneAnswer,
  unaryAnswer,
  type ServiceCallDeps,
} from './grpc-frames.ts';

export const UPLOAD_CHUNKS_PATH = '/balupi.sync.v1.SyncService/UploadChunks';

/** An HTTP/2 request handler that serves gRPC UploadChunks and returns true, or returns false for anything else. */
export function uploadChunksHandler(deps: ServiceCallDeps): (req: Http2ServerRequest, res: Http2ServerResponse) => boolean {
  return grpcRoute(UPLOAD_CHUNKS_PATH, (req, res) => serve(deps, req, res));
}

function serve(deps: ServiceCallDeps, req: Http2ServerRequest, res: Http2ServerResponse): Promise<void> {
  const call = { method: SyncService.method.uploadChunks, peerSecret: deps.peerSecret, maxMessageBytes: deps.maxMessageBytes, reuse: true, ...(deps.shutdown ? { shutdown: deps.shutdown } : {}) };
  return serveOneAnswer(call, req, res, async (messages, ctx) => {
    const requests = (async function* (): AsyncGenerator<UploadChunksRequest> {
      for await (const m of messages) yield decodeRequest(UploadChunksRequestSchema, m);
    })();
    return toBinary(UploadChunksResponseSchema, create(UploadChunksResponseSchema, await deps.service.uploadChunks!(requests, ctx)));
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Client

/** A chunk to send; `release`, if given, is called once its bytes have been written out (or the call failed). */
export interface OutgoingChunk {
  hash: Uint8Array;
  data: Uint8Array;
  place?: Place;
  release?: () => void;
}

/**
 * UploadChunks over an HTTP/2 session of `sessions`: writes each chunk as header + its own buffer, bounded by HTTP/2
 * flow control ('drain'), then reads the one answer. Fails with the server's gRPC status, or UNAVAILABLE / CANCELED
 * when the stream breaks or `signal` aborts. Every chunk taken from `chunks` is released, whatever happens.
 */
export async function uploadChunksStream(
  sessions: Http2SessionManager,
  opts: { peerSecret: string; maxMessageBytes: number },
  chunks: AsyncIterable<OutgoingChunk>,
  signal?: AbortSignal,
): Promise<UploadChunksResponse> {
  signal?.throwIfAborted();
  const { stream, headers } = await openGrpcCall(sessions, UPLOAD_CHUNKS_PATH, opts.peerSecret, closedWithoutStatus);
  const ac = new AbortController();
  const cancel = () => ac.abort(signal?.reason);
  signal?.addEventListener('abort', cancel, { once: true });
  // Written, callback not seen yet: a stream that closes does not call back every write, but once it has closed
  // nothing reads these bytes any more, so they are released then (release is idempotent).
  const unreleased = new Set<() => void>();
  stream.once('close', () => {
    ac.abort(new Error('stream closed'));
    for (const r of unreleased) r();
    unreleased.clear();
  });
  let trailers: Record<string, unknown> | undefined;
  stream.once('trailers', (t) => {
    trailers = t;
    ac.abort(new Error('the peer answered')); // e.g. a refused secret: it reads no more, so stop writing
  });
  stream.once('response', (h) => {
    if (h['grpc-status'] !== undefined) ac.abort(new Error('the peer answered')); // a trailers-only answer: the same
  });
  const cut = (why: unknown): ConnectError => callFailure('chunk upload', why, signal);
  // An error of our own chunk source (a chunk of the file went away here: it was deleted or edited meanwhile) is
  // about that file, not the connection: it goes up as it is, so the file fails alone and the session stays.
  const source = chunks[Symbol.asyncIterator]();
  let sourceFailed = false;
  const next = (): Promise<IteratorResult<OutgoingChunk>> =>
    source.next().catch((err: unknown) => {
      sourceFailed = true;
      throw err;
    });
  try {
    // When the stream closes while we write (the server answered early, e.g. a refused secret, or went away), stop
    // writing and read what it said: its status if it sent one, else UNAVAILABLE.
    for (let r = await next(); !r.done; r = await next()) {
      const c = r.value;
      if (ac.signal.aborted) {
        c.release?.();
        break;
      }
      if (c.data.length + 64 > opts.maxMessageBytes) {
        c.release?.();
        throw new ConnectError(`chunk of ${c.data.length} bytes is larger than the message limit of ${opts.maxMessageBytes}`, Code.ResourceExhausted);
      }
      const ok1 = stream.write(chunkMessageHeader(c.hash, c.data.length, c.place && toBinary(ChunkPlaceSchema, create(ChunkPlaceSchema, c.place))));
      const release = c.release;
      let ok2: boolean;
      if (release) {
        unreleased.add(release);
        ok2 = stream.write(c.data, () => {
          unreleased.delete(release);
          release();
        });
      } else {
        ok2 = stream.write(c.data);
      }
      if (!ok1 || !ok2) await drained(stream, ac.signal).catch(() => {});
    }
    if (signal?.aborted) throw cut(signal.reason);
    if (!stream.closed) stream.end();
    return fromBinary(UploadChunksResponseSchema, await unaryAnswer(stream, headers, () => trailers, opts.maxMessageBytes));
  } catch (err) {
    throw sourceFailed && !signal?.aborted ? err : cut(err);
  } finally {
    await source.return?.().catch(() => {});
    signal?.removeEventListener('abort', cancel);
    if (!stream.closed) stream.close(h2.NGHTTP2_CANCEL);
  }
}
