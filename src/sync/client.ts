// The connection to another peer's SyncService: gRPC over HTTP/2 cleartext (the hub's BALUPI_GRPC_PORT), the pairing
// secret on every call, no compression in either direction (chunks are media; gzip cost ~6x in throughput), explicit
// message limits, and HTTP/2 pings so that a hub that vanished (the NAS fell asleep) is noticed within seconds.

import { createClient, type Client, type Interceptor } from '@connectrpc/connect';
import { createGrpcTransport } from '@connectrpc/connect-node';
import { SyncService } from '../gen/balupi/sync/v1/sync_pb.js';

/** Same limit as the server side (src/daemon.ts): chunks are at most 4 MiB, so this leaves ample room. */
export const RPC_MAX_BYTES = 16 * 1024 * 1024;

export type SyncClient = Client<typeof SyncService>;

export interface SyncClientOptions {
  /** e.g. http://127.0.0.1:50051 */
  baseUrl: string;
  peerSecret: string;
  /** HTTP/2 ping interval; a ping unanswered for pingTimeoutMs drops the connection and its streams. */
  pingIntervalMs?: number;
  pingTimeoutMs?: number;
}

export function createSyncClient(opts: SyncClientOptions): SyncClient {
  const auth: Interceptor = (next) => (req) => {
    req.header.set('authorization', `Bearer ${opts.peerSecret}`);
    return next(req);
  };
  const transport = createGrpcTransport({
    baseUrl: opts.baseUrl,
    interceptors: [auth],
    acceptCompression: [],
    readMaxBytes: RPC_MAX_BYTES,
    writeMaxBytes: RPC_MAX_BYTES,
    pingIntervalMs: opts.pingIntervalMs ?? 10_000,
    pingTimeoutMs: opts.pingTimeoutMs ?? 5_000,
    pingIdleConnection: true,
    idleConnectionTimeoutMs: 60_000,
  });
  return createClient(SyncService, transport);
}
