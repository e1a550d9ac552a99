// Device pairing, forwarded to BaluHost (waking the NAS first: pairing is rare and a person is waiting):
//   POST /api/mobile/register                  BaluApp's QR registration (no token)
//   POST /api/desktop-pairing/device-code      BaluDesk's device-code flow (no token)
//   POST /api/desktop-pairing/poll             (no token; 404 means expired to BaluDesk, passed on as BaluHost sent it)
//   POST /api/sync/register-desktop            (token)
// Bodies and headers go to BaluHost byte for byte, its answers come back unchanged; the user in a successful answer
// is remembered, so refresh and /auth/me work while the NAS sleeps afterwards.
import type { FastifyPluginAsync } from 'fastify';
import type { SignInService } from '../auth/sign-in.ts';
import type { SyncDevices } from '../sync-api/devices.ts';
import { keepRawJsonBodies } from '../http/raw-json.ts';
import { BALUHOST_LIMITS, useRateLimits, type RateLimiter } from '../http/rate-limit.ts';
import { AUTH_BODY_LIMIT, clientRequest, sendAnswer } from './auth.ts';

export interface PairingRoutesOptions {
  signIn: SignInService;
  limiter: RateLimiter;
  /** The Pi's own record of BaluDesk devices, which /api/sync/changes answers for. */
  devices: SyncDevices;
}

/** BaluHost validates these bodies itself (and accepts camelCase and snake_case variants): the Pi only insists on a
 *  JSON object, so no variant a client sends is refused here. */
const anyObject = { type: 'object' } as const;

export const pairingRoutes: FastifyPluginAsync<PairingRoutesOptions> = async (app, { signIn, limiter, devices }) => {
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

  // The device is recorded on the Pi too once BaluHost accepted it (the Pi answers BaluDesk's /api/sync/changes);
  // a Pi without a NAS registers it alone, in BaluHost's answer shape.
  app.post<{ Body: { device_id: string; device_name?: string | null } }>('/api/sync/register-desktop', {
    config: { rateLimit: BALUHOST_LIMITS.sync_operations },
    schema: {
      body: {
        type: 'object',
        required: ['device_id'],
        properties: { device_id: { type: 'string', minLength: 1, maxLength: 255 }, device_name: { type: ['string', 'null'], maxLength: 255 } },
      },
    },
  }, async (req, reply) => {
    const user = req.user!;
    await signIn.sawToken(user);
    const { device_id: deviceId, device_name: name } = req.body;
    if (!signIn.hasNas) {
      const { device, existed } = await devices.register(user.id, deviceId, name ?? deviceId);
      return { device_id: deviceId, device_name: device.deviceName, status: existed ? 'already_registered' : 'registered', change_token: null };
    }
    const answer = await signIn.forwardPairing('/api/sync/register-desktop', clientRequest(req, reply), () => null);
    if (answer.status >= 200 && answer.status < 300) await devices.register(user.id, deviceId, name ?? deviceId);
    return sendAnswer(reply, answer);
  });
};
