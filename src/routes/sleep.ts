// BaluHost's power buttons (/api/system/sleep/*) as the apps' dashboards press them on the Pi. They are about the
// NAS: with the NAS online they go to BaluHost (soft sleep, suspend and wake are its own), and while it is away
// "wake" means Wake-on-LAN from the Pi (the NAS module's wake, with its refusals: no MAC, no plug power, …).
// my-permissions is BaluHost's when it can be asked without waking it; otherwise the Pi's guess from the role.
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { NasService } from '../nas/service.ts';
import type { NasRelay } from '../nas/nas-relay.ts';
import { keepRawJsonBodies } from '../http/raw-json.ts';
import { ApiError } from '../http/errors.ts';
import { clientRequest, sendAnswer } from './auth.ts';

export interface SleepRoutesOptions {
  nas: NasService | null;
  relay: NasRelay;
}


const anyObject = { type: 'object' } as const;

export const sleepRoutes: FastifyPluginAsync<SleepRoutesOptions> = async (app, { nas, relay }) => {
  keepRawJsonBodies(app, { bodyLimit: 16 * 1024 });

  const wol = async (req: FastifyRequest) => {
    if (!nas) throw new ApiError(400, 'Failed to send WoL packet (no MAC address configured?)');
    await nas.wake(req.user?.username ?? 'api');
    return { success: true, message: 'WoL packet sent' };
  };

  for (const action of ['soft', 'suspend'] as const) {
    app.post(`/api/system/sleep/${action}`, { schema: { body: { ...anyObject, nullable: true } } }, async (req, reply) => {
      const r = await relay.ifOnline('POST', req.url, clientRequest(req, reply), { background: false });
      if (r) return sendAnswer(reply, r);
      // BaluHost's own answer when the NAS is not in a state to sleep; here it is not running at all.
      throw new ApiError(409, `Cannot enter ${action === 'soft' ? 'soft sleep' : 'suspend'} from current state (the NAS is ${nas?.state ?? 'not configured'})`);
    });
  }

  app.post('/api/system/sleep/wake', { schema: { body: { ...anyObject, nullable: true } } }, async (req, reply) => {
    const r = await relay.ifOnline('POST', req.url, clientRequest(req, reply), { background: false });
    if (r) return sendAnswer(reply, r);
    return wol(req);
  });

  app.post('/api/system/sleep/wol', { schema: { body: { ...anyObject, nullable: true } } }, async (req) => wol(req));

  app.get('/api/system/sleep/my-permissions', async (req, reply) => {
    const r = await relay.ifOnline('GET', req.url, clientRequest(req, reply), { background: true });
    if (r && r.status === 200) return sendAnswer(reply, r);
    const admin = req.user?.role === 'admin';
    return { can_soft_sleep: admin, can_wake: admin, can_suspend: admin, can_wol: admin };
  });
};
