// The daemon's local store API, served on the unix socket <dataDir>/balupi.sock: while the daemon holds the store's
// LevelDB lock, `balupi ingest|cat|ls|rm|fsck|gc|stats` reach the store through these routes instead. Bodies of
// ingest and cat are streamed, never buffered. Register without a prefix: the routes carry their full paths.

import type { FastifyError, FastifyPluginAsync } from 'fastify';
import type { Readable } from 'node:stream';
import type { Store } from '../../store/index.ts';
import { StoreError } from '../../store/index.ts';
import { httpStatusFor } from '../http/errors.ts';

export interface LocalStoreRoutesOptions {
  store: Store;
}

const nameQuery = {
  type: 'object',
  required: ['name'],
  properties: { name: { type: 'string', minLength: 1 } },
} as const;

export const localStoreRoutes: FastifyPluginAsync<LocalStoreRoutesOptions> = async (app, opts) => {
  const { store } = opts;

  // Ingest bodies are handed to the store as the raw request stream (no body limit: files can be any size).
  app.addContentTypeParser('application/octet-stream', (_req, payload, done) => done(null, payload));

  app.setErrorHandler((err: FastifyError | StoreError, _req, reply) => {
    if (err instanceof StoreError) {
      return reply.code(httpStatusFor(err.code) ?? 500).send({ error: { code: err.code, message: err.message, details: err.details } });
    }
    const status = err.statusCode && err.statusCode >= 400 ? err.statusCode : 500;
    return reply.code(status).send({ error: { code: status < 500 ? 'invalid_argument' : 'internal', message: err.message } });
  });

  app.post<{ Querystring: { name: string; mtimeMs?: number; mode?: number; baseVersion?: number } }>(
    '/local/store/ingest',
    {
      schema: {
        querystring: {
          type: 'object',
          required: ['name'],
          properties: {
            name: { type: 'string', minLength: 1 },
            mtimeMs: { type: 'number' },
            mode: { type: 'integer', minimum: 0, maximum: 0o7777 },
            baseVersion: { type: 'integer', minimum: 0 },
          },
        },
      },
    },
    async (req) => {
      const { name, mtimeMs, mode, baseVersion } = req.query;
      const body = req.body as Readable | undefined;
      const source: AsyncIterable<Uint8Array> = body ?? (async function* () {})();
      const meta: { mtimeMs?: number; mode?: number } = {};
      if (mtimeMs !== undefined) meta.mtimeMs = mtimeMs;
      if (mode !== undefined) meta.mode = mode;
      return store.ingest(name, source, meta, baseVersion === undefined ? {} : { baseVersion });
    },
  );

  app.get<{ Querystring: { name: string; offset?: number; length?: number } }>(
    '/local/store/cat',
    {
      schema: {
        querystring: {
          type: 'object',
          required: ['name'],
          properties: { name: { type: 'string', minLength: 1 }, offset: { type: 'integer', minimum: 0 }, length: { type: 'integer', minimum: 0 } },
        },
      },
    },
    async (req, reply) => {
      const { name, offset, length } = req.query;
      const range: { offset?: number; length?: number } = {};
      if (offset !== undefined) range.offset = offset;
      if (length !== undefined) range.length = length;
      const opened = await store.openRead(name, range);
      // A chunk that fails verification mid-stream aborts the response; Content-Length lets the client notice.
      reply.header('content-type', 'application/octet-stream');
      reply.header('content-length', String(opened.length));
      reply.header('x-balupi-hash', opened.record.hash);
      return reply.send(opened.stream);
    },
  );

  app.get<{ Querystring: { dir?: string } }>(
    '/local/store/ls',
    { schema: { querystring: { type: 'object', properties: { dir: { type: 'string' } } } } },
    async (req) => ({ entries: await store.list(req.query.dir) }),
  );

  app.get<{ Querystring: { name: string } }>('/local/store/stat', { schema: { querystring: nameQuery } }, async (req) => store.stat(req.query.name));

  app.post<{ Querystring: { name: string } }>('/local/store/rm', { schema: { querystring: nameQuery } }, async (req) => store.delete(req.query.name));

  app.post('/local/store/fsck', async () => store.fsck());

  app.post('/local/store/gc', async () => store.gc());

  app.get('/local/store/stats', async () => store.stats());
};
