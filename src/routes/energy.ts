// /api/energy/*: current readings, history, costs, summary, tariffs, CSV export and alerts. Thin: parameters are
// checked by the schemas and time-range.ts, the work is done by the EnergyMonitor and its queries, the shapes are
// energy-json.ts's. Errors travel as coded errors to the one error handler (404 unknown device or alert, 422 bad
// parameters with the reason).

import { Readable } from 'node:stream';
import type { FastifyPluginAsync } from 'fastify';
import type { EnergyMonitor } from '../energy/monitor.ts';
import type { HistoryResolution } from '../energy/energy-queries.ts';
import { energyCsv } from '../energy/csv.ts';
import { PERIODS, checkHourSpan, checkRawSpan, resolveRange } from '../energy/time-range.ts';
import { TariffError } from '../energy/tariff.ts';
import { requireAdmin } from '../http/auth.ts';
import {
  alertJson, alertSchema, costsJson, costsSchema, currentJson, currentSchema, historyJson, historySchema, pricesSchema,
  snakeMessage, summaryJson, summarySchema, tariffBodySchema, tariffInput, tariffJson, tariffSchema,
} from './energy-json.ts';

export interface EnergyRoutesOptions {
  monitor: EnergyMonitor;
}

interface RangeQs {
  device_id?: number;
  period?: string;
  from?: string;
  to?: string;
}

const rangeQs = {
  device_id: { type: 'integer', minimum: 1 },
  period: { type: 'string', enum: [...PERIODS] },
  from: { type: 'string' },
  to: { type: 'string' },
} as const;
const resolutions = (...values: string[]) => ({ type: 'string', enum: values }) as const;

export const energyRoutes: FastifyPluginAsync<EnergyRoutesOptions> = async (app, { monitor }) => {
  const q = monitor.queries;
  const cal = monitor.series.calendar;

  app.get('/api/energy/current', { schema: { response: { 200: currentSchema } } }, async () => currentJson(q.current()));

  app.get<{ Querystring: RangeQs & { resolution?: HistoryResolution } }>('/api/energy/history', {
    schema: {
      querystring: { type: 'object', properties: { ...rangeQs, resolution: resolutions('raw', 'hour', 'day', 'month') } },
      response: { 200: historySchema },
    },
  }, async (req) => {
    const { device_id, resolution = 'hour', ...range } = req.query;
    const devices = q.select(device_id);
    const r = resolveRange(range, cal, Date.now(), 'day');
    if (resolution === 'raw') checkRawSpan(r);
    return historyJson(r, resolution, await q.history(devices, r, resolution));
  });

  app.get<{ Querystring: RangeQs & { resolution?: 'hour' | 'day' | 'month' } }>('/api/energy/costs', {
    schema: {
      querystring: { type: 'object', properties: { ...rangeQs, resolution: resolutions('hour', 'day', 'month') } },
      response: { 200: costsSchema },
    },
  }, async (req) => {
    const { device_id, resolution = 'day', ...range } = req.query;
    const devices = q.select(device_id);
    const r = resolveRange(range, cal, Date.now(), 'month');
    if (resolution === 'hour') checkHourSpan(r);
    return costsJson(r, await q.costs(devices, r, resolution));
  });

  app.get('/api/energy/summary', { schema: { response: { 200: summarySchema } } }, async () => summaryJson(await q.summary()));

  app.get('/api/energy/prices', { schema: { response: { 200: pricesSchema } } }, async () => {
    const book = await monitor.book();
    const now = book.priceAt(Date.now());
    return {
      currency: monitor.currency,
      default_price_per_kwh: monitor.fallbackTariff().pricePerKwh,
      current: now && { price_per_kwh: now.pricePerKwh, tier: now.tier, tariff_id: now.tariff.id, tariff_name: now.tariff.name },
      tariffs: (await monitor.tariffs.list()).map(tariffJson),
    };
  });

  app.post<{ Body: Record<string, unknown> }>('/api/energy/prices', {
    preHandler: requireAdmin,
    schema: { body: tariffBodySchema, response: { 201: tariffSchema } },
  }, async (req, reply) => {
    try {
      const tariff = await monitor.addTariff(tariffInput(req.body));
      return reply.code(201).send(tariffJson(tariff));
    } catch (err) {
      if (err instanceof TariffError) throw new TariffError(err.code, snakeMessage(err.message));
      throw err;
    }
  });

  app.get<{ Querystring: RangeQs & { resolution?: HistoryResolution } }>('/api/energy/export.csv', {
    schema: { querystring: { type: 'object', properties: { ...rangeQs, resolution: resolutions('raw', 'hour', 'day', 'month') } } },
  }, async (req, reply) => {
    const { device_id, resolution = 'hour', ...range } = req.query;
    const devices = q.select(device_id);
    const r = resolveRange(range, cal, Date.now(), 'day');
    const file = `balupi-energy-${device_id ?? 'all'}-${cal.localDate(r.from)}-${cal.localDate(r.to - 1)}-${resolution}.csv`;
    reply
      .header('content-type', 'text/csv; charset=utf-8')
      .header('content-disposition', `attachment; filename="${file}"`);
    // Streamed with backpressure: any range of raw samples, never held in memory as a whole.
    return reply.send(Readable.from(energyCsv(q, cal, { devices, range: r, resolution }), { objectMode: false }));
  });

  app.get<{ Querystring: { acknowledged?: boolean; device_id?: number; limit?: number } }>('/api/energy/alerts', {
    schema: {
      querystring: {
        type: 'object',
        properties: { acknowledged: { type: 'boolean' }, device_id: { type: 'integer', minimum: 1 }, limit: { type: 'integer', minimum: 1, maximum: 1000 } },
      },
      response: { 200: { type: 'object', properties: { alerts: { type: 'array', items: alertSchema }, total: { type: 'integer' } } } },
    },
  }, async (req) => {
    const { acknowledged, device_id, limit = 100 } = req.query;
    const alerts = await q.alerts({ acknowledged, deviceId: device_id, limit });
    return { alerts: alerts.map((a) => alertJson(a, q.deviceName(a.deviceId))), total: alerts.length };
  });

  app.post<{ Params: { id: string } }>('/api/energy/alerts/:id/acknowledge', {
    schema: { params: { type: 'object', properties: { id: { type: 'string', pattern: '^[0-9a-f]{20}$' } } }, response: { 200: alertSchema } },
  }, async (req) => {
    const alert = await monitor.acknowledgeAlert(req.params.id);
    return alertJson(alert, q.deviceName(alert.deviceId));
  });
};
