// The local API on <dataDir>/balupi.sock: while the daemon holds the data directory's LevelDB locks, the CLI's store
// commands reach the store through it. The socket is mode 0600, so only the daemon's user can use it; no token.
import { chmod, rm } from 'node:fs/promises';
import Fastify, { type FastifyBaseLogger } from 'fastify';
import type { Logger } from '../log.ts';
import type { Store } from '../../store/index.ts';
import { localStoreRoutes } from '../routes/local-store.ts';
import { localSyncRoutes } from '../routes/local-sync.ts';
import { localUserRoutes } from '../routes/local-users.ts';
import type { UserCache } from '../auth/user-cache.ts';
import type { SyncRuntime } from '../sync/runtime.ts';
import { OneLinePerRequest } from './app.ts';
import { lazySchemaCompilers } from './lazy-schemas.ts';
import { socketPath } from '../commands/store-access.ts';

export async function startLocalApi(opts: { dataDir: string; logger: Logger; store: Store; sync?: SyncRuntime; users?: UserCache }): Promise<{ close(): Promise<void> }> {
  const path = socketPath(opts.dataDir);
  // We hold the store's lock, so no other daemon can be serving this socket: a file left there is stale.
  await rm(path, { force: true });
  const app = Fastify({ loggerInstance: opts.logger.child({ api: 'local' }) as FastifyBaseLogger, bodyLimit: 1024 * 1024, logController: new OneLinePerRequest(), schemaController: { compilersFactory: lazySchemaCompilers() } });
  await app.register(localStoreRoutes, { store: opts.store });
  if (opts.sync) await app.register(localSyncRoutes, { sync: opts.sync });
  if (opts.users) await app.register(localUserRoutes, { users: opts.users });
  await app.listen({ path });
  await chmod(path, 0o600);
  return {
    async close() {
      await app.close();
      await rm(path, { force: true });
    },
  };
}
