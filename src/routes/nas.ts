// /api/nas/*: the NAS's presence state, its history, and the manual Wake-on-LAN. All need a token.
import type { FastifyPluginAsync } from 'fastify';
import type { NasService } from '../nas/service.ts';

export interface NasRoutesOptions {
  nas: NasService;
}

export const nasRoutes: FastifyPluginAsync<NasRoutesOptions> = async (app, { nas }) => {
  // The Pi dashboard posts the wake without a body (sometimes with a JSON content type): nothing to parse here.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: 64 * 1024 }, (_req, body, done) => done(null, body));

  app.get('/api/nas/status', async () => nas.status());

  app.post('/api/nas/wol', async (req) => nas.wake(req.user?.username ?? 'api'));

  // BaluHost's own sleep history uses these names ({entries:[{timestamp, previous_state, new_state, reason,
  // triggered_by}], total}); the same vocabulary lets one UI render both.
  app.get<{ Querystring: { limit?: number } }>('/api/nas/history', {
    schema: {
      querystring: {
        type: 'object',
        properties: { limit: { type: 'integer', minimum: 1, maximum: 200, default: 50 } },
        additionalProperties: false,
      },
    },
  }, async (req) => {
    const all = nas.history();
    const entries = all.slice(0, req.query.limit ?? 50).map((t) => ({
      timestamp: new Date(t.at).toISOString(),
      previous_state: t.from,
      new_state: t.to,
      reason: t.reason,
      triggered_by: t.cause,
    }));
    return { entries, total: all.length };
  });
};
