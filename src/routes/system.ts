// GET /api/system/status: host and process figures from the background sampler.
import type { FastifyPluginAsync } from 'fastify';
import type { NodeStatusService } from '../system/node-status.ts';
import { int, nNum, num } from '../http/schema-types.ts';

export const statusSchema = {
  type: 'object',
  required: ['hostname', 'cpu_percent', 'cpu_temp_celsius', 'temperature_c', 'memory', 'memory_percent', 'memory_used_mb', 'memory_total_mb',
    'disk', 'uptime_seconds', 'load_avg'],
  properties: {
    service: { type: 'string' },
    version: { type: 'string' },
    role: { type: 'string' },
    hostname: { type: 'string' },
    cpu_percent: num,
    cpu_cores: int,
    cpu_frequency_mhz: nNum,
    cpu_model: { type: ['string', 'null'] },
    cpu_temp_celsius: nNum,
    temperature_c: nNum,
    memory: {
      type: 'object',
      properties: { total: int, used: int, free: int, available: int, percent: num },
    },
    memory_percent: num,
    memory_used_mb: int,
    memory_total_mb: int,
    disk: {
      type: 'object',
      properties: { path: { type: 'string' }, total: int, used: int, free: int, percent: num },
    },
    uptime_seconds: int,
    load_avg: { type: 'array', items: num },
    process: { type: 'object', properties: { uptime_seconds: int, rss_bytes: int } },
    sampled_at: { type: 'string' },
  },
} as const;

export const systemRoutes: FastifyPluginAsync<{ status: NodeStatusService }> = async (app, opts) => {
  app.get('/api/system/status', { schema: { response: { 200: statusSchema } } }, async () => opts.status.status());
};
