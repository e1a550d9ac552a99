// /api/auth/*: sign-in, refresh, the second sign-in step and /auth/me, answered by BaluHost when it is up and by the
// Pi from what it knows when it is not (src/auth/sign-in.ts). Bodies are BaluHost's JSON; the client's bytes are
// forwarded unchanged. Login, refresh and verify-2fa need no token; /auth/me needs one and is deliberately not
// rate-limited: BaluDesk deletes its pairing on any answer there but 2xx and 401, a 429 included.
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { Answer, ClientRequest, SignInService } from '../auth/sign-in.ts';
import { keepRawJsonBodies } from '../http/raw-json.ts';
import { BALUHOST_LIMITS, useRateLimits, type RateLimiter } from '../http/rate-limit.ts';

export interface AuthRoutesOptions {
  signIn: SignInService;
  limiter: RateLimiter;
}

/** The largest sign-in or pairing body accepted (BaluHost's are a few hundred bytes). */
export const AUTH_BODY_LIMIT = 64 * 1024;

const stringProps = (...names: string[]) => ({
  type: 'object',
  required: names,
  properties: Object.fromEntries(names.map((n) => [n, { type: 'string' }])),
});

/** The client's request for forwarding; its signal fires if the client goes away before the answer. */
export function clientRequest(req: FastifyRequest, reply: FastifyReply): ClientRequest {
  const ac = new AbortController();
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) ac.abort(new Error('the client went away'));
  });
  return { headers: req.headers, rawBody: req.rawBody, ip: req.ip, signal: ac.signal };
}

export function sendAnswer(reply: FastifyReply, a: Answer): FastifyReply {
  reply.code(a.status).headers(a.headers);
  if (Buffer.isBuffer(a.body) && !a.headers['content-type']) reply.type('application/json');
  return reply.send(a.body);
}

export const authRoutes: FastifyPluginAsync<AuthRoutesOptions> = async (app, { signIn, limiter }) => {
  keepRawJsonBodies(app, { bodyLimit: AUTH_BODY_LIMIT });
  useRateLimits(app, limiter);

  app.post<{ Body: { username: string; password: string } }>('/api/auth/login', {
    config: { public: true, rateLimit: BALUHOST_LIMITS.auth_login },
    schema: { body: stringProps('username', 'password') },
  }, async (req, reply) => sendAnswer(reply, await signIn.login(req.body.username, req.body.password, clientRequest(req, reply))));

  app.post<{ Body: { refresh_token: string } }>('/api/auth/refresh', {
    config: { public: true, rateLimit: BALUHOST_LIMITS.auth_refresh },
    schema: { body: stringProps('refresh_token') },
  }, async (req, reply) => sendAnswer(reply, await signIn.refresh(req.body.refresh_token, clientRequest(req, reply))));

  app.post('/api/auth/verify-2fa', {
    config: { public: true, rateLimit: BALUHOST_LIMITS.auth_2fa_verify },
    schema: { body: stringProps('pending_token', 'code') },
  }, async (req, reply) => sendAnswer(reply, await signIn.verifySecondFactor(clientRequest(req, reply))));

  app.get('/api/auth/me', async (req, reply) => sendAnswer(reply, await signIn.me(req.user!, clientRequest(req, reply))));
};
