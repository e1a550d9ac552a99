// DownloadChunks without the generic RPC machinery, on both ends; the bytes on the wire are exactly the gRPC
// DownloadChunks of sync.proto, so either end also works against any other gRPC implementation of it.
//
// Why: a generic server encodes each 1 MiB chunk into a protobuf buffer and copies it again into the gRPC envelope,
// and a generic client concatenates the HTTP/2 data frames and decodes them; at loopback speed those copies and the
// garbage they make were most of the cost (bench/SYNC-RESULTS.md). Here the server writes a small pre-encoded header
// (gRPC frame prefix + hash field + the data field's tag and length) and then the chunk buffer itself, straight from
// the store's verified read; the client copies each message once, into a buffer of the size its prefix announces.
// Everything else stays as it was: the peer secret is checked (same rule as the interceptor), hashes are validated,
// chunks are read and BLAKE3-verified from the store, the send rate applies, and the receiver re-hashes every chunk
// before storing it (transfer.ts). gRPC-Web and the Connect protocol fall through to the generic handler.

import type { Http2ServerRequest, Http2ServerResponse, ClientHttp2Stream } from 'node:http2';
import { constants as h2 } from 'node:http2';
import { fromBinary } from '@bufbuild/protobuf';
import { Code, ConnectError } from '@connectrpc/connect';
import type { Http2SessionManager } from '@connectrpc/connect-node';
import type { Store } from '../../store/index.ts';
import { DownloadChunksRequestSchema, DownloadChunksResponseSchema, type DownloadChunksResponse } from '../gen/balupi/sync/v1/sync_pb.js';
import { checkPeerSecret } from '../rpc/peer-auth.ts';
import { toConnectError } from '../rpc/errors.ts';
import { hashesFrom } from './wire.ts';
import { sendChunks } from './transfer.ts';
import { chunkMessageHeader, closedWithoutStatus, drained, endWithStatus, grpcMessagesOf, grpcRoute, isGrpc, openGrpcCall, varint } from './grpc-frames.ts';
import type { SendRate } from './rate.ts';

export const DOWNLOAD_CHUNKS_PATH = '/balupi.sync.v1.SyncService/DownloadChunks';
/** A DownloadChunks request is a list of at most 10,000 hashes (~340 KB); anything longer is refused unread. */
const MAX_REQUEST_BYTES = 1024 * 1024;

export interface ChunkStreamDeps {
  store: Store;
  peerSecret: string;
  rate?: SendRate;
  /** Aborted when in-flight RPCs must stop (server shutdown). */
  shutdown?: AbortSignal;
}

/** An HTTP/2 request handler that serves gRPC DownloadChunks and returns true, or returns false for anything else. */
export function downloadChunksHandler(deps: ChunkStreamDeps): (req: Http2ServerRequest, res: Http2ServerResponse) => boolean {
  return grpcRoute(DOWNLOAD_CHUNKS_PATH, (req, res) => serve(deps, req, res));
}

async function serve(deps: ChunkStreamDeps, req: Http2ServerRequest, res: Http2ServerResponse): Promise<void> {
  const ac = new AbortController();
  const stop = () => ac.abort(new ConnectError('the peer went away', Code.Canceled));
  req.once('close', stop);
  res.once('close', stop);
  const onShutdown = () => ac.abort(new ConnectError('server shutting down', Code.Unavailable));
  deps.shutdown?.addEventListener('abort', onShutdown, { once: true });
  res.writeHead(200, { 'content-type': 'application/grpc+proto', 'grpc-accept-encoding': 'identity' });
  let status: ConnectError | undefined;
  try {
    checkPeerSecret(req.headers.authorization, deps.peerSecret);
    const body = await readRequest(req);
    const hashes = hashesFrom(fromBinary(DownloadChunksRequestSchema, body).hashes);
    // Leased chunks: each is read into a reused buffer, given back when HTTP/2 has written it out (or the stream was
    // destroyed: the callback then fires with an error), so a fast stream makes no 1 MiB garbage per chunk.
    const opts = { lease: true, signal: ac.signal, ...(deps.rate ? { rate: deps.rate } : {}) };
    for await (const m of sendChunks(deps.store, hashes.map((hash) => ({ hash })), opts)) {
      if (ac.signal.aborted) {
        m.release();
        ac.signal.throwIfAborted();
      }
      const ok1 = res.write(chunkMessageHeader(m.hash, m.data.length));
      const ok2 = res.write(m.data, () => m.release());
      if (!ok1 || !ok2) await drained(res, ac.signal);
    }
  } catch (err) {
    status = toConnectError(ac.signal.aborted ? ac.signal.reason : err);
  } finally {
    req.off('close', stop);
    res.off('close', stop);
    deps.shutdown?.removeEventListener('abort', onShutdown);
  }
  endWithStatus(res, status);
}

/** The one gRPC message of the request: uncompressed, complete, and small. */
async function readRequest(req: Http2ServerRequest): Promise<Uint8Array> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const d of req) {
    n += (d as Buffer).length;
    if (n > MAX_REQUEST_BYTES + 5) throw new ConnectError(`request larger than ${MAX_REQUEST_BYTES} bytes`, Code.ResourceExhausted);
    parts.push(d as Buffer);
  }
  const all = Buffer.concat(parts, n);
  if (all.length < 5) throw new ConnectError('request message missing', Code.InvalidArgument);
  if (all[0] !== 0) throw new ConnectError('compressed request message, but no compression was negotiated', Code.Internal);
  const len = all.readUInt32BE(1);
  if (all.length !== 5 + len) throw new ConnectError('expected exactly one request message', Code.InvalidArgument);
  return all.subarray(5);
}

// ---------------------------------------------------------------------------------------------------------------
// Client

/**
 * DownloadChunks over an HTTP/2 session of `sessions`: yields each message as it completes. Fails with the server's
 * gRPC status, with RESOURCE_EXHAUSTED for a message above `maxMessageBytes`, and with CANCELED when `signal` aborts.
 */
export async function* downloadChunksStream(
  sessions: Http2SessionManager,
  opts: { peerSecret: string; maxMessageBytes: number },
  hashes: Uint8Array[],
  signal?: AbortSignal,
): AsyncGenerator<DownloadChunksResponse> {
  signal?.throwIfAborted();
  const { stream, headers } = await openGrpcCall(sessions, DOWNLOAD_CHUNKS_PATH, opts.peerSecret, (s) => closedError(s, signal));
  const cancel = () => stream.close(h2.NGHTTP2_CANCEL);
  signal?.addEventListener('abort', cancel, { once: true });
  stream.end(fromRequest(hashes));
  try {
    yield* readMessages(stream, sessions, opts.maxMessageBytes, headers, signal);
  } catch (err) {
    if (err instanceof ConnectError) throw err;
    throw signal?.aborted ? new ConnectError('download cancelled', Code.Canceled) : new ConnectError(`chunk stream failed: ${(err as Error).message}`, Code.Unavailable);
  } finally {
    signal?.removeEventListener('abort', cancel);
    if (!stream.closed) stream.close(h2.NGHTTP2_CANCEL);
  }
}

async function* readMessages(
  stream: ClientHttp2Stream,
  sessions: Http2SessionManager,
  maxMessageBytes: number,
  headers: Promise<Record<string, unknown>>,
  signal: AbortSignal | undefined,
): AsyncGenerator<DownloadChunksResponse> {
  let status: Record<string, unknown> | undefined;
  stream.once('trailers', (t) => (status = t));
  const head = await headers;
  const code = head['grpc-status'] ?? undefined;
  if (head[':status'] !== 200 || (code === undefined && !isGrpc(String(head['content-type']).split(';')[0]))) {
    throw new ConnectError(`HTTP ${String(head[':status'])} from the peer`, head[':status'] === 401 ? Code.Unauthenticated : Code.Unavailable);
  }
  if (code !== undefined) status = head; // trailers-only response: the status came with the headers
  try {
    for await (const msg of grpcMessagesOf(stream, maxMessageBytes, { onBytes: () => sessions.notifyResponseByteRead(stream), reuse: true })) {
      const m = fromBinary(DownloadChunksResponseSchema, msg);
      if (signal?.aborted) throw new ConnectError('download cancelled', Code.Canceled);
      yield m;
    }
  } catch (err) {
    // A reset stream (cancelled by us, or by the peer or the connection) ends the bytes anywhere: say why. Framing
    // errors other than a cut-off message are the peer's (the reader's own cleanup reset the stream afterwards).
    if (signal?.aborted) throw new ConnectError('download cancelled', Code.Canceled);
    if (err instanceof ConnectError && err.code !== Code.DataLoss) throw err;
    if (stream.rstCode !== undefined && stream.rstCode !== h2.NGHTTP2_NO_ERROR) throw closedError(stream, signal);
    throw err;
  }
  if (signal?.aborted) throw new ConnectError('download cancelled', Code.Canceled);
  if (stream.rstCode !== undefined && stream.rstCode !== h2.NGHTTP2_NO_ERROR) throw closedError(stream, signal);
  if (!status && !stream.closed) await new Promise((r) => stream.once('close', r));
  const grpc = Number(status?.['grpc-status'] ?? NaN);
  if (!Number.isInteger(grpc)) throw closedError(stream, signal);
  if (grpc !== 0) throw new ConnectError(decodeURIComponent(String(status?.['grpc-message'] ?? '')), grpc as Code);
}

function fromRequest(hashes: Uint8Array[]): Buffer {
  // DownloadChunksRequest: field 1 (bytes), repeated.
  const parts: Buffer[] = [];
  for (const h of hashes) parts.push(Buffer.from([0x0a, ...varint(h.length)]), Buffer.from(h));
  const msg = Buffer.concat(parts);
  const head = Buffer.alloc(5);
  head.writeUInt32BE(msg.length, 1);
  return Buffer.concat([head, msg]);
}

function closedError(stream: ClientHttp2Stream, signal?: AbortSignal): ConnectError {
  return signal?.aborted ? new ConnectError('download cancelled', Code.Canceled) : closedWithoutStatus(stream);
}
