// Builds the Fastify application: error envelope, API-version headers, one log line per request, the auth hook, the
// route plugins, and the Connect services on the same port (HTTP/1.1: Connect and gRPC-Web).
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { fastifyConnectPlugin } from '@connectrpc/connect-fastify';
import type { ConnectRouter, ConnectRouterOptions } from '@connectrpc/connect';
import type { Logger } from '../log.ts';
import type { TokenVerifier } from '../auth/tokens.ts';
import { frameworkError, registerErrorHandling } from './errors.ts';
import { registerAuth } from './auth.ts';
import { ignoreEmptyJsonBody } from './bodyless-json.ts';
import { lazySchemaCompilers } from './lazy-schemas.ts';

export interface AppOptions {
  logger: Logger;
  verifier: TokenVerifier;
  /** Route plugins, registered in order. */
  plugins: ((app: FastifyInstance) => unknown)[];
  connect?: { routes: (router: ConnectRouter) => void; options: ConnectRouterOptions };
}

/** Fastify logs a request twice (received, completed); one line when it completes is enough on a Pi's SD card. */
export class OneLinePerRequest extends LogController {
  override incomingRequest(req: FastifyRequest): void {
    req.log.debug({ method: req.method, url: req.url }, 'request received');
  }
  override requestCompleted(error: Error | null | undefined, req: FastifyRequest, reply: FastifyReply): void {
    const line = { method: req.method, url: req.url, status: reply.statusCode, ms: Math.round(reply.elapsedTime * 10) / 10, user: req.user?.username };
    if (error) reply.log.error({ ...line, err: error }, 'request failed');
    else reply.log.info(line, 'request');
  }
}

export async function buildApp(opts: AppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: opts.logger as FastifyBaseLogger,
    logController: new OneLinePerRequest(),
    // BaluHost's ids and paths are case-sensitive; so are ours.
    routerOptions: { ignoreTrailingSlash: false, caseSensitive: true, maxParamLength: 4096 },
    frameworkErrors: frameworkError,
    schemaController: { compilersFactory: lazySchemaCompilers() },
  });
  registerErrorHandling(app);
  // BaluDesk declares a JSON body on every request, bodyless GETs and DELETEs included.
  app.addHook('onRequest', ignoreEmptyJsonBody);
  app.addHook('onRequest', async (req, reply) => {
    if (req.url.startsWith('/api')) reply.header('X-API-Version', '1').header('X-API-Min-Version', '1');
  });
  registerAuth(app, opts.verifier);
  for (const plugin of opts.plugins) await app.register(async (scope) => {
    await plugin(scope);
  });
  if (opts.connect) {
    await app.register(fastifyConnectPlugin, {
      ...opts.connect.options,
      routes: opts.connect.routes,
    });
  }
  return app;
}
