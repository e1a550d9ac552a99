// Device pairing, forwarded to BaluHost (waking the NAS first: pairing is rare and a person is waiting):
//   POST /api/mobile/register                  BaluApp's QR registration (no token)
//   POST /api/desktop-pairing/device-code      BaluDesk's device-code flow (no token)
//   POST /api/desktop-pairing/poll             (no token; 404 means expired to BaluDesk, passed on as BaluHost sent it)
//   POST /api/sync/register-desktop            (token)
// Bodies and headers go to BaluHost byte for byte, its answers come back unchanged; the user in a successful answer
// is remembered, so refresh and /auth/me work while the NAS sleeps afterwards.
import type { FastifyPluginAsync } from 'fastify';
import type { SignInService } from '../auth/sign-in.ts';
import { keepRawJsonBodies } from '../http/raw-json.ts';
import { BALUHOST_LIMITS, useRateLimits, type RateLimiter } from '../http/rate-limit.ts';
import { AUTH_BODY_LIMIT, clientRequest, sendAnswer } from './auth.ts';

export interface PairingRoutesOptions {
  signIn: SignInService;
  limiter: RateLimiter;
}

/** BaluHost validates these bodies itself (and accepts camelCase and snake_case variants): the Pi only insists on a
 *  JSON object, so no variant a client sends is refused here. */
const anyObject = { type: 'object' } as const;

export const pairingRoutes: FastifyPluginAsync<PairingRoutesOptions> = async (app, { signIn, limiter }) => {
  keepRawJsonBodies(app, { bodyLimit: AUTH_BODY_LIMIT });
  useRateLimits(app, limiter);

  app.post('/api/mobile/register', {
    config: { public: true, rateLimit: BALUHOST_LIMITS.mobile_register },
    schema: { body: anyObject },
  }, async (req, reply) => sendAnswer(reply, await signIn.forwardPairing('/api/mobile/register', clientRequest(req, reply), (b) => b.user)));

  app.post('/api/desktop-pairing/device-code', {
    config: { public: true, rateLimit: BALUHOST_LIMITS.desktop_pairing_request },
    schema: { body: anyObject },
  }, async (req, reply) => sendAnswer(reply, await signIn.forwardPairing('/api/desktop-pairing/device-code', clientRequest(req, reply), () => null)));

  app.post('/api/desktop-pairing/poll', {
    config: { public: true, rateLimit: BALUHOST_LIMITS.desktop_pairing_poll },
    schema: { body: anyObject },
  }, async (req, reply) => sendAnswer(reply, await signIn.forwardPairing('/api/desktop-pairing/poll', clientRequest(req, reply), (b) => (b.status === 'approved' ? b.user : null))));

  app.post('/api/sync/register-desktop', {
    config: { rateLimit: BALUHOST_LIMITS.sync_operations },
    schema: { body: anyObject },
  }, async (req, reply) => {
    await signIn.sawToken(req.user!);
    return sendAnswer(reply, await signIn.forwardPairing('/api/sync/register-desktop', clientRequest(req, reply), () => null));
  });
};
