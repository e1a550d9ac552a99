// `balupi serve`: opens the data directory, starts the services, and serves them on two listeners:
//   BALUPI_PORT       Fastify: REST facade + Connect/gRPC-Web over HTTP/1.1
//   BALUPI_GRPC_PORT  HTTP/2 cleartext: gRPC (needs h2) + Connect + gRPC-Web
// close() stops accepting, lets in-flight requests finish, then closes LevelDB.
import { mkdir } from 'node:fs/promises';
import { createServer as createH2Server, type Http2Server, type Http2ServerRequest, type Http2ServerResponse, type ServerHttp2Session } from 'node:http2';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { ClassicLevel } from 'classic-level';
import type { FastifyInstance } from 'fastify';
import type { ConnectRouter, ConnectRouterOptions } from '@connectrpc/connect';
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
import { EnergyMonitor } from './energy/monitor.ts';
import { energyRoutes } from './routes/energy.ts';
import { tapoRoutes } from './routes/tapo.ts';
import { energyService, EnergyService } from './rpc/energy-service.ts';
import { SyncRuntime } from './sync/runtime.ts';
import { SyncService } from './gen/balupi/sync/v1/sync_pb.js';
import { H2_CONNECTION_WINDOW, H2_SETTINGS, RPC_MAX_BYTES } from './sync/client.ts';
import { NasModule } from './nas/start.ts';
import { nasRoutes } from './routes/nas.ts';
import { handshakeRoutes } from './routes/handshake.ts';
import { nasService, NasService } from './rpc/nas-service.ts';
import { baluhostSystemRoutes } from './routes/baluhost-system.ts';
import { describeServices } from './system/services.ts';
import { baluhostEnergyRoutes } from './routes/baluhost-energy.ts';
import { ActivityLog } from './activity/activity-log.ts';
import { activityRoutes } from './routes/activity.ts';
import { UserCache } from './auth/user-cache.ts';
import { SignInService, nasLinkFor } from './auth/sign-in.ts';
import { BaluHostClient } from './nas/baluhost-client.ts';
import { RateLimiter } from './http/rate-limit.ts';
import { authRoutes } from './routes/auth.ts';
import { pairingRoutes } from './routes/pairing.ts';
import { NasRelay } from './nas/nas-relay.ts';
import { sleepRoutes } from './routes/sleep.ts';
import { mobileExtrasRoutes } from './routes/mobile-extras.ts';
import { ThumbnailService } from './thumbnails/service.ts';
import { thumbnailRoutes } from './routes/thumbnails.ts';
import { SyncDevices } from './sync-api/devices.ts';
import { MobileFolders } from './sync-api/mobile-folders.ts';
import { syncRestRoutes } from './routes/sync-rest.ts';
import { mobileSyncRoutes } from './routes/mobile-sync.ts';
import { openFileServices } from './files/services.ts';
import { filesRoutes } from './routes/files.ts';
import { filesWriteRoutes } from './routes/files-write.ts';
import { filesUploadRoutes } from './routes/files-upload.ts';
import { cacheRoutes } from './routes/cache.ts';

export interface Daemon {
  /** Ports actually bound (useful when the configuration asked for port 0). */
  ports: { http: number; grpc: number };
  close(): Promise<void>;
}

/** How long RPCs in flight at shutdown may run on before they are cancelled (the whole stop must fit in 10 s). */
const RPC_GRACE_MS = 8_000;

export async function startDaemon(config: Config, log: Logger): Promise<Daemon> {
  await mkdir(config.dataDir, { recursive: true });
  const secrets = await loadSecrets(config.dataDir, config);
  if (secrets.generated.jwtSecret) log.warn('BALUPI_JWT_SECRET is not set: using a generated secret (balupi token prints tokens for it); set it to BaluHost\'s SECRET_KEY to accept BaluHost tokens');

  // Everything opened is pushed here and closed in reverse order, on shutdown or when start-up fails half-way.
  const closers: (() => Promise<void>)[] = [];
  const closeAll = async () => {
    for (const close of closers.reverse()) await close();
  };
  try {
    const db = new ClassicLevel<string, string>(join(config.dataDir, 'db'), { valueEncoding: 'utf8' });
    await db.open();
    closers.push(() => db.close());
    // The hub keeps BaluHost's files once: the bytes of its root's files stay there, not in chunk files as well.
    const backing = config.role === 'hub' && config.hubRoot ? { backingDir: config.hubRoot } : {};
    const store = await openStore({ dir: join(config.dataDir, 'store'), cacheMaxBytes: config.cacheMaxBytes ?? undefined, ...backing });
    closers.push(() => store.close());
    // BaluHost's activity feed: app reports plus the changes made through this Pi.
    const activity = await ActivityLog.open(db);
    const recordChange = (r: Parameters<ActivityLog['recordChange']>[0]) => {
      activity.recordChange(r).catch((err: unknown) => log.warn({ err }, 'activity log write failed'));
    };
    store.on('change', recordChange);
    closers.push(async () => {
      store.off('change', recordChange);
      await activity.idle();
    });
    // Thumbnails: cached by content under DATA_DIR/thumbnails; new image versions get theirs made in the background.
    const thumbnails = new ThumbnailService(store, { cacheDir: join(config.dataDir, 'thumbnails') });
    await thumbnails.start();
    closers.push(() => thumbnails.close());
    // BaluHost's sync endpoints for BaluDesk and BaluApp: devices, their change tokens and folders in the daemon's db.
    const syncDevices = new SyncDevices(db);
    const monitor = new SystemMonitor({ dataDir: config.dataDir, intervalMs: config.statusIntervalS * 1000 });
    await monitor.start();
    closers.push(() => monitor.stop());
    const status = new NodeStatusService(monitor, config.role);
    // Energy: plugs, series, tariffs, alerts; polls from here on (the first readings arrive right after start).
    const energy = new EnergyMonitor({ db, config, logger: log.child({ module: 'energy' }) });
    await energy.start();
    closers.push(() => energy.stop());
    // Sync: the SyncService both roles serve; the pi's peer loop or the hub's root watcher start once we listen.
    const sync = await SyncRuntime.create({ store, db, log, settings: { ...config, peerSecret: secrets.peerSecret } });
    // NAS presence and wake (pi role) and mDNS, fed by the NAS plug's power state and the hub link; observes once we
    // listen. When the NAS comes online the upload queue is flushed at once instead of waiting out its backoff.
    const nas = await NasModule.open(config, { db, log, power: energy.nasPower, hubLink: sync.hubLink(), inbox: () => sync.inbox() });
    closers.push(() => nas.close());
    const nasSvc = nas.service;
    nasSvc?.on('online', (ev) => {
      sync.flushNow().then(
        (retried) => log.info({ via: ev.via, retriedUploads: retried }, 'NAS online: flushing the upload queue'),
        (err: unknown) => log.warn({ err }, 'could not flush the upload queue'),
      );
    });
    // Sign-in, tokens and pairing: forwarded to BaluHost when it is up, answered from what the Pi learnt when not.
    const verifier = new TokenVerifier(secrets.jwtSecret);
    const users = new UserCache(db);
    await users.pruneRevoked();
    const nasLink = nasLinkFor(nasSvc);
    const baluhost = new BaluHostClient({ url: nasLink.url });
    const signIn = new SignInService({ users, tokens: verifier, nas: nasLink, client: baluhost, log: log.child({ module: 'auth' }) });
    const relay = new NasRelay({ nas: nasLink, client: baluhost });
    const limiter = new RateLimiter();
    // BaluHost's file API over the store; a miss goes to the hub (waking the NAS first if need be).
    const files = await openFileServices({ db, store, dataDir: config.dataDir, log, sync, nas: nasSvc, wakeWaitS: config.wakeWaitS });
    closers.push(() => files.close());

    const routes = (router: ConnectRouter) => {
      router.service(NodeService, nodeService(status));
      router.service(EnergyService, energyService(energy));
      router.service(SyncService, sync.service);
      if (nasSvc) router.service(NasService, nasService(nasSvc));
    };
    const capabilities = ['node.v1', 'store.v1', 'energy.v1', 'sync.v1', ...nas.capabilities];
    const plugins = [
      (a: FastifyInstance) => a.register(healthRoutes, { role: config.role, capabilities }),
      (a: FastifyInstance) => a.register(systemRoutes, { status }),
      (a: FastifyInstance) => a.register(energyRoutes, { monitor: energy }),
      (a: FastifyInstance) => a.register(tapoRoutes, { monitor: energy }),
      // BaluHost's shapes of the same figures, for the apps' dashboards and the web client built in Pi mode.
      (a: FastifyInstance) => a.register(baluhostSystemRoutes, { status, services: () => describeServices({ sync, energy, nas: nasSvc }) }),
      (a: FastifyInstance) => a.register(baluhostEnergyRoutes, { monitor: energy }),
      (a: FastifyInstance) => a.register(activityRoutes, { activity }),
      (a: FastifyInstance) => a.register(authRoutes, { signIn, limiter }),
      (a: FastifyInstance) => a.register(pairingRoutes, { signIn, limiter, devices: syncDevices }),
      (a: FastifyInstance) => a.register(sleepRoutes, { nas: nasSvc, relay }),
      (a: FastifyInstance) => a.register(mobileExtrasRoutes, { relay }),
      (a: FastifyInstance) => a.register(thumbnailRoutes, { thumbnails }),
      (a: FastifyInstance) => a.register(syncRestRoutes, { store, devices: syncDevices }),
      (a: FastifyInstance) => a.register(mobileSyncRoutes, { folders: new MobileFolders(db) }),
      (a: FastifyInstance) => a.register(filesRoutes, { files }),
      (a: FastifyInstance) => a.register(filesWriteRoutes, { files }),
      (a: FastifyInstance) => a.register(filesUploadRoutes, { files }),
      (a: FastifyInstance) => a.register(cacheRoutes, { files }),
      ...(nasSvc
        ? [(a: FastifyInstance) => a.register(nasRoutes, { nas: nasSvc }), (a: FastifyInstance) => a.register(handshakeRoutes, { nas: nasSvc })]
        : []),
    ];

    const servers = await listenAll(config, log, { verifier, peerSecret: secrets.peerSecret, routes, plugins, h2Before: (shutdown) => sync.ownCallsHandler(shutdown) });
    closers.push(() => servers.close());
    const localApi = await startLocalApi({ dataDir: config.dataDir, logger: log, store, sync, users });
    closers.push(() => localApi.close());
    await nas.start(servers.ports);
    log.info({ ...servers.ports, host: config.host, role: config.role, dataDir: config.dataDir }, 'balupi listening');
    // Closed before the listeners: it ends the live change-feed streams that would otherwise hold them open.
    closers.push(() => sync.close());
    sync.start();

    let closing: Promise<void> | null = null;
    return { ports: servers.ports, close: () => (closing ??= closeAll()) };
  } catch (err) {
    await closeAll();
    throw err;
  }
}

/**
 * The two network listeners: Fastify (REST + Connect over HTTP/1.1) and the h2c server (gRPC, Connect, gRPC-Web).
 * close() stops both from accepting and lets requests and streams in flight finish (RPCs are cancelled after
 * RPC_GRACE_MS).
 */
async function listenAll(
  config: Config,
  log: Logger,
  opts: {
    verifier: TokenVerifier;
    peerSecret: string;
    routes: (router: ConnectRouter) => void;
    plugins: ((app: FastifyInstance) => unknown)[];
    /** h2c requests go here first; it answers false to pass a request on to Connect (sync's DownloadChunks path). */
    h2Before?: (shutdown: AbortSignal) => (req: Http2ServerRequest, res: Http2ServerResponse) => boolean;
  },
): Promise<{ ports: { http: number; grpc: number }; close(): Promise<void> }> {
  // Aborted only if in-flight RPCs outlast the shutdown grace period (connect-fastify's own shutdownTimeoutMs keeps
  // a timer alive that delays exit by its full length even when nothing is in flight).
  const rpcShutdown = new AbortController();
  const rpcOptions: ConnectRouterOptions = {
    shutdownSignal: rpcShutdown.signal,
    interceptors: [peerAuthInterceptor(opts.peerSecret)],
    // Chunks are content-addressed media, mostly incompressible: gzip would cut stream throughput ~6x for nothing.
    acceptCompression: [],
    readMaxBytes: RPC_MAX_BYTES,
    writeMaxBytes: RPC_MAX_BYTES,
  };
  const app = await buildApp({ logger: log, verifier: opts.verifier, plugins: opts.plugins, connect: { routes: opts.routes, options: rpcOptions } });
  // Wide receive windows (src/sync/client.ts explains): uploads of 1 MiB chunks would otherwise crawl.
  const connect = connectNodeAdapter({ ...rpcOptions, routes: opts.routes });
  const before = opts.h2Before?.(rpcShutdown.signal);
  const h2 = createH2Server({ settings: H2_SETTINGS, maxSessionMemory: 64 }, before ? (req, res) => before(req, res) || connect(req, res) : connect);
  const sessions = new Set<ServerHttp2Session>();
  h2.on('session', (s) => {
    s.once('localSettings', () => s.setLocalWindowSize(H2_CONNECTION_WINDOW));
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
  });
  try {
    await app.listen({ host: config.host, port: config.port });
    await listen(h2, config.host, config.grpcPort);
  } catch (err) {
    await app.close();
    if (h2.listening) await new Promise((res) => h2.close(res));
    throw err;
  }
  return {
    ports: { http: (app.server.address() as AddressInfo).port, grpc: (h2.address() as AddressInfo).port },
    async close() {
      const abortRpcs = setTimeout(() => rpcShutdown.abort(new Error('server shutting down')), RPC_GRACE_MS);
      abortRpcs.unref();
      const h2Closed = new Promise<void>((res) => h2.close(() => res()));
      // GOAWAY lets streams already open finish while refusing new ones.
      for (const s of sessions) s.close();
      // server.close() reaps idle keep-alive connections only once; a connection whose request finishes later
      // would hold the exit until the client's keep-alive timeout. Reap again until everything is closed.
      const reap = setInterval(() => app.server.closeIdleConnections(), 100);
      await Promise.all([app.close(), h2Closed]);
      clearInterval(reap);
      clearTimeout(abortRpcs);
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
