// Every /api route needs a BaluHost access token unless the route declares `config: { public: true }`
// (health and ping, and later the login routes). The verified user is on request.user.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { TokenError, type TokenVerifier, type User } from '../auth/tokens.ts';
import { ApiError } from './errors.ts';

declare module 'fastify' {
  interface FastifyRequest {
    user: User | null;
  }
  interface FastifyContextConfig {
    /** The route answers without a token. */
    public?: boolean;
  }
}

export function registerAuth(app: FastifyInstance, verifier: TokenVerifier): void {
  app.decorateRequest('user', null);
  app.addHook('onRequest', async (req: FastifyRequest) => {
    if (!req.url.startsWith('/api/')) return;
    // Unknown routes fall through to the 404 handler, as BaluHost's do.
    if (req.routeOptions.url === undefined || req.routeOptions.config.public) return;
    const header = req.headers.authorization;
    const match = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    if (!match) throw new ApiError(401, 'No authentication token provided', { 'WWW-Authenticate': 'Bearer' });
    try {
      req.user = await verifier.verifyAccess(match[1]!);
    } catch (err) {
      if (err instanceof TokenError) req.log.info({ reason: err.reason }, 'token refused');
      throw err;
    }
  });
}

/** preHandler of routes only admins may call, with BaluHost's admin-gate answer. */
export async function requireAdmin(req: FastifyRequest): Promise<void> {
  if (req.user?.role !== 'admin') throw new ApiError(403, 'Insufficient permissions: Admin required');
}
