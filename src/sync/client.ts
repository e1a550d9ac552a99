// The connection to another peer's SyncService: gRPC over HTTP/2 cleartext (the hub's BALUPI_GRPC_PORT), the pairing
// secret on every call, no compression in either direction (chunks are media; gzip cost ~6x in throughput), explicit
// message limits, DownloadChunks read without the generic decoder's copies (chunk-stream.ts), and HTTP/2 pings so that a hub that vanished (the NAS fell asleep) is noticed within seconds.

import { createClient, type Client, type Interceptor } from '@connectrpc/connect';
import { createGrpcTransport, Http2SessionManager } from '@connectrpc/connect-node';
import type { ClientHttp2Session } from 'node:http2';
import { SyncService, type CommitBatchResponse } from '../gen/balupi/sync/v1/sync_pb.js';
import { downloadChunksStream } from './chunk-stream.ts';
import { uploadChunksStream, type OutgoingChunk } from './chunk-upload.ts';
import { commitBatchCall, type CommitBatchFrame } from './commit-batch-call.ts';

/** Largest RPC message either side reads or writes (client and server); chunks are at most 4 MiB. */
export const RPC_MAX_BYTES = 16 * 1024 * 1024;

/**
 * `releasesChunks`: uploadChunks calls each message's `release()` once its bytes are written (the copy-saving client
 * does; senders then lend it store buffers, see transfer.ts uploadMissing).
 */
export type SyncClient = Client<typeof SyncService> & {
  releasesChunks?: boolean;
  /** CommitBatch of a request laid out by layoutCommitBatch, sent as it is (commit-batch-call.ts). */
  commitBatchFrame?: (req: CommitBatchFrame, signal?: AbortSignal) => Promise<CommitBatchResponse>;
};

/**
 * HTTP/2 receive windows. Node's default is 64 KiB per stream and per connection: a 1 MiB chunk then needs many
 * WINDOW_UPDATE round trips and the stream runs at a fraction of the link. 16 MiB per connection, 4 MiB per stream.
 */
export const H2_STREAM_WINDOW = 4 * 1024 * 1024;
export const H2_CONNECTION_WINDOW = 16 * 1024 * 1024;
/** Largest HTTP/2 DATA frame we accept (default 16 KiB): a 1 MiB chunk then arrives in a few frames, not 64. */
export const H2_MAX_FRAME = 1024 * 1024;
/** The HTTP/2 settings both ends of a sync connection advertise (client sessions and the daemon's gRPC server). */
export const H2_SETTINGS = { initialWindowSize: H2_STREAM_WINDOW, maxFrameSize: H2_MAX_FRAME };

/** Connect's session manager, plus a connection-level window (Node sets it only through the session object). */
class WideWindowSessions extends Http2SessionManager {
  private readonly tuned = new WeakSet<ClientHttp2Session>();

  override async request(...args: Parameters<Http2SessionManager['request']>): ReturnType<Http2SessionManager['request']> {
    const stream = await super.request(...args);
    const session = stream.session as ClientHttp2Session | undefined;
    if (session && !this.tuned.has(session)) {
      this.tuned.add(session);
      session.setLocalWindowSize(H2_CONNECTION_WINDOW);
      // connect-node destroys a session with an error when the peer sends GOAWAY with no stream open (the hub shutting
      // down), and may already have removed its own 'error' listener by the time Node emits it: an unhandled 'error'
      // event would end the whole daemon. The calls on the session learn of its end through their streams.
      session.on('error', () => {});
    }
    return stream;
  }
}

export interface SyncClientOptions {
  /** e.g. http://127.0.0.1:50051 */
  baseUrl: string;
  peerSecret: string;
  /**
   * DownloadChunks and UploadChunks through the copy-saving paths of chunk-stream.ts and chunk-upload.ts (default
   * true; same wire bytes). false: through the generic gRPC client (kept for comparison in bench/sync.ts).
   */
  fastChunks?: boolean;
  /** HTTP/2 ping interval; a ping unanswered for pingTimeoutMs drops the connection and its streams. */
  pingIntervalMs?: number;
  pingTimeoutMs?: number;
}

export function createSyncClient(opts: SyncClientOptions): SyncClient {
  const auth: Interceptor = (next) => (req) => {
    req.header.set('authorization', `Bearer ${opts.peerSecret}`);
    return next(req);
  };
  const sessions = new WideWindowSessions(
    opts.baseUrl,
    { pingIntervalMs: opts.pingIntervalMs ?? 10_000, pingTimeoutMs: opts.pingTimeoutMs ?? 5_000, pingIdleConnection: true, idleConnectionTimeoutMs: 60_000 },
    { settings: H2_SETTINGS, maxSessionMemory: 64 },
  );
  const transport = createGrpcTransport({
    baseUrl: opts.baseUrl,
    interceptors: [auth],
    acceptCompression: [],
    readMaxBytes: RPC_MAX_BYTES,
    writeMaxBytes: RPC_MAX_BYTES,
    sessionManager: sessions,
  });
  const client = createClient(SyncService, transport);
  if (opts.fastChunks === false) return client;
  const limits = { peerSecret: opts.peerSecret, maxMessageBytes: RPC_MAX_BYTES };
  return {
    ...client,
    downloadChunks: (req, callOpts) => downloadChunksStream(sessions, limits, req.hashes ?? [], callOpts?.signal),
    uploadChunks: (req, callOpts) => uploadChunksStream(sessions, limits, req as AsyncIterable<OutgoingChunk>, callOpts?.signal),
    releasesChunks: true,
    commitBatchFrame: (req, signal) => commitBatchCall(sessions, limits, req, signal),
  };
}
