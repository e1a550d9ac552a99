// The daemon's local sync API on the unix socket <dataDir>/balupi.sock (next to the store routes): what `balupi
// status | pin | unpin | conflicts | sync --once | forget-peer` ask a running daemon. Errors use the local API's envelope
// { error: { code, message } }.

import type { FastifyError, FastifyPluginAsync } from 'fastify';
import { StoreError } from '../../store/index.ts';
import { ConnectError, Code } from '@connectrpc/connect';
import type { SyncRuntime } from '../sync/runtime.ts';
import { SyncError } from '../sync/errors.ts';
import { httpStatusFor } from '../http/errors.ts';

export interface LocalSyncRoutesOptions {
  sync: SyncRuntime;
}

export const localSyncRoutes: FastifyPluginAsync<LocalSyncRoutesOptions> = async (app, opts) => {
  const { sync } = opts;

  app.setErrorHandler((err: FastifyError | StoreError | SyncError | ConnectError, _req, reply) => {
    if (err instanceof StoreError || err instanceof SyncError) {
      return reply.code(httpStatusFor(err.code) ?? 500).send({ error: { code: err.code, message: err.message } });
    }
    if (err instanceof ConnectError) {
      // The hub answered with an error or could not be reached.
      return reply.code(err.code === Code.Unauthenticated ? 401 : 503).send({ error: { code: 'unavailable', message: `hub: ${Code[err.code]}: ${err.rawMessage}` } });
    }
    const status = (err as FastifyError).statusCode && (err as FastifyError).statusCode! >= 400 ? (err as FastifyError).statusCode! : 500;
    return reply.code(status).send({ error: { code: status < 500 ? 'invalid_argument' : 'internal', message: err.message } });
  });

  app.get('/local/sync/status', async () => sync.status());

  app.get('/local/sync/conflicts', async () => ({ conflicts: await sync.conflicts() }));

  app.get('/local/sync/queue', async () => ({ items: await sync.queueItems() }));

  app.post<{ Querystring: { name: string; pinned: boolean } }>(
    '/local/sync/pin',
    {
      schema: {
        querystring: {
          type: 'object',
          required: ['name', 'pinned'],
          properties: { name: { type: 'string' }, pinned: { type: 'boolean' } },
        },
      },
    },
    async (req) => sync.pin(req.query.name, req.query.pinned),
  );

  app.post('/local/sync/once', async () => sync.once());

  app.post<{ Querystring: { peer: string } }>(
    '/local/sync/forget-peer',
    { schema: { querystring: { type: 'object', required: ['peer'], properties: { peer: { type: 'string', minLength: 1, maxLength: 64 } } } } },
    async (req) => sync.forgetPeer(req.query.peer),
  );
};
