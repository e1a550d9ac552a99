// GET /api/health and /api/ping: BaluHost's body plus who we are. No token needed: clients and BaluHost's admin
// "test BaluPi" button call them to find out whether anything answers at all.
import type { FastifyPluginAsync } from 'fastify';
import { hostname } from 'node:os';
import { VERSION } from '../version.ts';

export interface HealthOptions {
  role: 'pi' | 'hub';
  /** Features this node serves, e.g. "node.v1", "sync.v1". */
  capabilities: readonly string[];
}

const healthSchema = {
  type: 'object',
  properties: {
    status: { type: 'string' },
    version: { type: 'string' },
    api_version: { type: 'string' },
    min_api_version: { type: 'string' },
    service: { type: 'string' },
    hostname: { type: 'string' },
    role: { type: 'string' },
    capabilities: { type: 'array', items: { type: 'string' } },
  },
} as const;

export const healthRoutes: FastifyPluginAsync<HealthOptions> = async (app, opts) => {
  const body = () => ({
    status: 'ok',
    version: VERSION,
    api_version: '1',
    min_api_version: '1',
    service: 'balupi',
    hostname: hostname(),
    role: opts.role,
    capabilities: opts.capabilities,
  });
  const route = { config: { public: true }, schema: { response: { 200: healthSchema } } };
  app.get('/api/health', route, async () => body());
  app.get('/api/ping', route, async () => body());
};
