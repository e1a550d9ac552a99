// BaluApp calls that are about the NAS's own bookkeeping (../shared/reference/clients.md §A.2 #2, #23, #25): push
// tokens (the NAS sends the pushes), sync schedules and the server-side upload queue (kept by BaluHost). With the NAS
// online they go to BaluHost; while it is away the Pi answers in BaluHost's shapes with what it has: no schedules
// (the app keeps its last list) and no server-side queue (uploads to the Pi are written at once, never queued).
import type { FastifyPluginAsync } from 'fastify';
import type { NasRelay } from '../nas/nas-relay.ts';
import { keepRawJsonBodies } from '../http/raw-json.ts';
import { clientRequest, sendAnswer } from './auth.ts';

export interface MobileExtrasOptions {
  relay: NasRelay;
}

const deviceParams = { type: 'object', required: ['device_id'], properties: { device_id: { type: 'string', minLength: 1, maxLength: 255 } } } as const;

export const mobileExtrasRoutes: FastifyPluginAsync<MobileExtrasOptions> = async (app, { relay }) => {
  keepRawJsonBodies(app, { bodyLimit: 16 * 1024 });

  app.post('/api/mobile/devices/:device_id/push-token', {
    schema: {
      params: deviceParams,
      querystring: { type: 'object', required: ['push_token'], properties: { push_token: { type: 'string', minLength: 1, maxLength: 4096 } } },
    },
  }, async (req, reply) => {
    // Not a reason to wake the NAS: the app sends the token again at its next start and whenever FCM renews it.
    const r = await relay.ifOnline('POST', req.url, clientRequest(req, reply), { background: true });
    if (r) return sendAnswer(reply, r);
    return { success: false, forwarded: false, message: 'The NAS is offline; the push token was not stored. BaluApp sends it again at its next start.' };
  });

  app.get('/api/sync/schedule/list', async (req, reply) => {
    const r = await relay.ifOnline('GET', req.url, clientRequest(req, reply), { background: true });
    if (r && r.status === 200) return sendAnswer(reply, r);
    return { schedules: [] };
  });

  app.get('/api/mobile/upload/queue/:device_id', { schema: { params: deviceParams } }, async (req, reply) => {
    const r = await relay.ifOnline('GET', req.url, clientRequest(req, reply), { background: true });
    if (r && r.status === 200) return sendAnswer(reply, r);
    return { items: [], total: 0 };
  });
};
