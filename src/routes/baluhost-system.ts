// BaluHost's system, monitoring, shares and boot endpoints as the apps' dashboards and the BaluHost web client (built
// in Pi mode) read them from the Pi (../shared/reference/clients.md §A.2 #29-33/#39, §B.2 #21-22; baluhost-api.md §1,
// §5.6). Figures come from the background sampler (NodeStatusService); shapes from baluhost-system-json.ts.
// /api/setup/status, /api/system/mode and /api/updates/version answer without a token, as on BaluHost: the web client
// asks them before anyone has logged in.

import type { FastifyPluginAsync } from 'fastify';
import type { NodeStatusService } from '../system/node-status.ts';
import { requireAdmin } from '../http/auth.ts';
import { VERSION } from '../version.ts';
import {
  historyJson, historySchema, networkCurrentJson, networkCurrentSchema, servicesSchema, type ServiceState, presenceBodySchema, presenceJson, presenceSchema, raidStatusJson, raidStatusSchema,
  setupStatusSchema, shareStatisticsJson, shareStatisticsSchema, smartStatusJson, smartStatusSchema, systemInfoJson,
  systemInfoSchema, systemModeSchema, uptimeCurrentJson, uptimeCurrentSchema, uptimeHistoryJson, uptimeHistorySchema,
  versionJson, versionSchema,
} from './baluhost-system-json.ts';

export interface BaluhostSystemOptions {
  status: NodeStatusService;
  /** The daemon's parts as BaluHost's admin services panel lists them. */
  services: () => Promise<ServiceState[]>;
}

const reply200 = (schema: object) => ({ schema: { response: { 200: schema } } });
const publicRoute = (schema: object) => ({ config: { public: true }, ...reply200(schema) });
const emptyArray = { type: 'array', maxItems: 0 } as const;

export const baluhostSystemRoutes: FastifyPluginAsync<BaluhostSystemOptions> = async (app, { status, services }) => {
  app.get('/api/system/info', reply200(systemInfoSchema), async () => systemInfoJson(status.status()));

  // NAS features: present in shape, empty in content.
  app.get('/api/system/raid/status', reply200(raidStatusSchema), async () => raidStatusJson());
  app.get('/api/system/smart/status', reply200(smartStatusSchema), async () => smartStatusJson(Date.now()));
  app.get('/api/shares/statistics', reply200(shareStatisticsSchema), async () => shareStatisticsJson());
  app.get('/api/shares/user-shares', reply200(emptyArray), async () => []);
  app.get('/api/shares/shared-with-me', reply200(emptyArray), async () => []);

  const historyQs = {
    type: 'object',
    properties: { time_range: { type: 'string' }, source: { type: 'string' }, limit: { type: 'integer', minimum: 1, maximum: 10000 } },
  } as const;
  app.get('/api/monitoring/uptime/current', reply200(uptimeCurrentSchema), async () => uptimeCurrentJson(status.status(), Date.now()));
  app.get('/api/monitoring/uptime/history', { schema: { querystring: historyQs, response: { 200: uptimeHistorySchema } } }, async () => uptimeHistoryJson());
  app.get('/api/monitoring/network/current', reply200(networkCurrentSchema), async () => networkCurrentJson(status.status(), Date.now()));
  // BaluDesk's services panel (every 30 s); admin-only as on BaluHost.
  app.get('/api/admin/services', { preHandler: requireAdmin, ...reply200(servicesSchema) }, async () => services());
  app.get('/api/monitoring/cpu/history', { schema: { querystring: historyQs, response: { 200: historySchema } } }, async () => historyJson());
  app.get('/api/monitoring/memory/history', { schema: { querystring: historyQs, response: { 200: historySchema } } }, async () => historyJson());

  // Boot of the BaluHost web client.
  app.get('/api/setup/status', publicRoute(setupStatusSchema), async () => ({ setup_required: false, completed_steps: [] }));
  app.get('/api/system/mode', publicRoute(systemModeSchema), async () => ({ dev_mode: false }));
  app.get('/api/updates/version', publicRoute(versionSchema), async () => versionJson(VERSION));
  app.post('/api/system/sleep/presence', { schema: { body: presenceBodySchema, response: { 200: presenceSchema } } }, async () => presenceJson());
};
