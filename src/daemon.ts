// `balupi serve`: opens the data directory, starts the services, and serves them on two listeners:
//   BALUPI_PORT       Fastify: REST facade + Connect/gRPC-Web over HTTP/1.1
//   BALUPI_GRPC_PORT  HTTP/2 cleartext: gRPC (needs h2) + Connect + gRPC-Web
// close() stops accepting, lets in-flight requests finish, then closes LevelDB.
import { mkdir } from 'node:fs/promises';
import { createServer as createH2Server, type Http2Server, type ServerHttp2Session } from 'node:http2';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { ClassicLevel } from 'classic-level';
import type { ConnectRouter, ConnectRouterOptions } from '@connectrpc/connect';
import type { FastifyInstance } from 'fastify';
import { connectNodeAdapter } from '@connectrpc/connect-node';
import type { Config } from './config.ts';
import type { Logger } from './log.ts';
import { loadSecrets } from './auth/secrets.ts';
import { TokenVerifier } from './auth/tokens.ts';
import { buildApp } from './http/app.ts';
import { healthRoutes } from './routes/health.ts';
import { systemRoutes } from './routes/system.ts';
import { SystemMonitor } from './system/status.ts';
import { NodeStatusService } from './system/node-status.ts';
import { nodeService, NodeService } from './rpc/node-service.ts';
import { peerAuthInterceptor } from './rpc/peer-auth.ts';
import { openStore } from '../store/index.ts';
import { startLocalApi } from './http/local-api.ts';
import { NasModule } from './nas/start.ts';
import { nasRoutes } from './routes/nas.ts';
import { handshakeRoutes } from './routes/handshake.ts';
import { nasService, NasService } from './rpc/nas-service.ts';

export interface Daemon {
  /** Ports actually bound (useful when the configuration asked for port 0). */
  ports: { http: number; grpc: number };
  close(): Promise<void>;
}

/** Largest RPC message we read or write; chunk messages stay well below it. */
const RPC_MAX_BYTES = 16 * 1024 * 1024;
/** How long RPCs in flight at shutdown may run on before they are cancelled (the whole stop must fit in 10 s). */
const RPC_GRACE_MS = 8_000;

export async function startDaemon(config: Config, log: Logger): Promise<Daemon> {
  await mkdir(config.dataDir, { recursive: true });
  const secrets = await loadSecrets(config.dataDir, config);
  if (secrets.generated.jwtSecret) log.warn('BALUPI_JWT_SECRET is not set: using a generated secret (balupi token prints tokens for it); set it to BaluHost\'s SECRET_KEY to accept BaluHost tokens');

  const db = new ClassicLevel<string, string>(join(config.dataDir, 'db'), { valueEncoding: 'utf8' });
  await db.open();
  const store = await openStore({ dir: join(config.dataDir, 'store'), cacheMaxBytes: config.cacheMaxBytes ?? undefined });
  const monitor = new SystemMonitor({ dataDir: config.dataDir, intervalMs: config.statusIntervalS * 1000 });
  await monitor.start();
  const status = new NodeStatusService(monitor, config.role);
  // NAS presence and wake (pi role) and mDNS; starts observing once the server listens.
  const nas = await NasModule.open(config, { db, log });
  const nasSvc = nas.service;
  const nasPlugins = nasSvc
    ? [(a: FastifyInstance) => a.register(nasRoutes, { nas: nasSvc }), (a: FastifyInstance) => a.register(handshakeRoutes, { nas: nasSvc })]
    : [];

  const routes = (router: ConnectRouter) => {
    router.service(NodeService, nodeService(status));
    if (nasSvc) router.service(NasService, nasService(nasSvc));
  };
  // Aborted only if in-flight RPCs outlast the shutdown grace period (connect-fastify's own shutdownTimeoutMs keeps
  // a timer alive that delays exit by its full length even when nothing is in flight).
  const rpcShutdown = new AbortController();
  const rpcOptions: ConnectRouterOptions = {
    shutdownSignal: rpcShutdown.signal,
    interceptors: [peerAuthInterceptor(secrets.peerSecret)],
    // Chunks are content-addressed media, mostly incompressible: gzip would cut stream throughput ~6x for nothing.
    acceptCompression: [],
    readMaxBytes: RPC_MAX_BYTES,
    writeMaxBytes: RPC_MAX_BYTES,
  };

  const app = await buildApp({
    logger: log,
    verifier: new TokenVerifier(secrets.jwtSecret),
    plugins: [
      (a) => a.register(healthRoutes, { role: config.role, capabilities: ['node.v1', 'store.v1', ...nas.capabilities] }),
      (a) => a.register(systemRoutes, { status }),
      ...nasPlugins,
    ],
    connect: { routes, options: rpcOptions },
  });

  const h2 = createH2Server(connectNodeAdapter({ ...rpcOptions, routes }));
  const sessions = new Set<ServerHttp2Session>();
  h2.on('session', (s) => {
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
  });

  let localApi: Awaited<ReturnType<typeof startLocalApi>> | null = null;
  try {
    await app.listen({ host: config.host, port: config.port });
    await listen(h2, config.host, config.grpcPort);
    localApi = await startLocalApi({ dataDir: config.dataDir, logger: log, store });
  } catch (err) {
    await app.close();
    await localApi?.close();
    await nas.close();
    await monitor.stop();
    await store.close();
    await db.close();
    throw err;
  }
  const ports = { http: (app.server.address() as AddressInfo).port, grpc: (h2.address() as AddressInfo).port };
  await nas.start(ports);
  log.info({ ...ports, host: config.host, role: config.role, dataDir: config.dataDir }, 'balupi listening');

  let closing: Promise<void> | null = null;
  return {
    ports,
    close() {
      closing ??= (async () => {
        const abortRpcs = setTimeout(() => rpcShutdown.abort(new Error('server shutting down')), RPC_GRACE_MS);
        abortRpcs.unref();
        const h2Closed = new Promise<void>((res) => h2.close(() => res()));
        // GOAWAY lets streams already open finish while refusing new ones.
        for (const s of sessions) s.close();
        // server.close() reaps idle keep-alive connections only once; a connection whose request finishes later
        // would hold the exit until the client's keep-alive timeout. Reap again until everything is closed.
        const reap = setInterval(() => app.server.closeIdleConnections(), 100);
        await Promise.all([app.close(), h2Closed, localApi.close()]);
        clearInterval(reap);
        clearTimeout(abortRpcs);
        await nas.close();
        await monitor.stop();
        await store.close();
        await db.close();
      })();
      return closing;
    },
  };
}

function listen(server: Http2Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}
