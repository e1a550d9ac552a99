// The Pi's plugs as BaluHost smart devices, and BaluHost's energy routes over the Pi's own energy store: what BaluApp's
// dashboard and Power screen, BaluDesk's power card and the BaluHost web client's Power tab read
// (../shared/reference/baluhost-api.md §6.2). Wiring only: figures come from the EnergyMonitor (utc-periods.ts, the
// cost report, the tariff book), shapes from baluhost-energy-json.ts. Unknown devices answer BaluHost's
// 404 {"detail":"Device N not found"} through the one error table.

import type { FastifyPluginAsync } from 'fastify';
import type { EnergyMonitor } from '../energy/monitor.ts';
import { HOUR_MS } from '../energy/calendar.ts';
import { UTC_PERIODS, cumulative, hourlyMeans, periodFigures, utcPeriodStart, type UtcPeriod } from '../energy/utc-periods.ts';
import { isoUtc } from './energy-json.ts';
import {
  TAPO_PLUGIN, costJson, costSchema, cumulativeJson, cumulativeSchema, dashboardJson, dashboardSchema, hourlyJson,
  hourlySampleSchema, periodStatsJson, periodStatsSchema, pluginConfigSchema, powerSummaryJson, powerSummarySchema, priceSchema,
  smartDeviceJson, smartDeviceListSchema,
} from './baluhost-energy-json.ts';

export interface BaluhostEnergyOptions {
  monitor: EnergyMonitor;
}

const idParams = { type: 'object', required: ['id'], properties: { id: { type: 'integer', minimum: 0 } } } as const;
const periodQs = { period: { type: 'string', enum: [...UTC_PERIODS], default: 'today' } } as const;

export const baluhostEnergyRoutes: FastifyPluginAsync<BaluhostEnergyOptions> = async (app, { monitor }) => {
  const q = monitor.queries;
  const series = monitor.series;
  // The configured price takes effect at start: that is when it was last "updated".
  const startedAt = Date.now();

  const priceNow = async (now: number) => {
    const p = (await monitor.book()).priceAt(now);
    const fallback = monitor.fallbackTariff();
    return { pricePerKwh: p?.pricePerKwh ?? fallback.pricePerKwh, since: p && p.tariff.createdAt > 0 ? p.tariff.createdAt : startedAt };
  };

  // BaluHost's route is the trailing-slash one (without it FastAPI redirects); Fastify here matches exactly.
  app.get('/api/smart-devices/', {
    schema: { querystring: { type: 'object', properties: { plugin_name: { type: 'string' } } }, response: { 200: smartDeviceListSchema } },
  }, async (req) => {
    const { plugin_name } = req.query as { plugin_name?: string };
    const devices = plugin_name !== undefined && plugin_name !== TAPO_PLUGIN ? [] : q.current().devices;
    return { devices: devices.map(({ device, reading }) => smartDeviceJson(device, reading)), total: devices.length };
  });

  app.get('/api/smart-devices/power/summary', { schema: { response: { 200: powerSummarySchema } } }, async () => powerSummaryJson(q.current().devices));

  app.get<{ Params: { id: number } }>('/api/energy/dashboard/:id', {
    schema: { params: idParams, response: { 200: dashboardSchema } },
  }, async (req) => {
    const device = q.device(req.params.id);
    const now = Date.now();
    const periods = {} as Record<UtcPeriod, Awaited<ReturnType<typeof periodFigures>>>;
    for (const p of UTC_PERIODS) periods[p] = await periodFigures(series, device.id, utcPeriodStart(p, now), now);
    const hours = await hourlyMeans(series, device.id, now - 24 * HOUR_MS, now);
    const reading = q.current().devices.find((d) => d.device.id === device.id)?.reading ?? null;
    return dashboardJson({ device, reading, periods, hours, now });
  });

  app.get<{ Params: { id: number; period: UtcPeriod } }>('/api/energy/stats/:id/:period', {
    schema: {
      params: { type: 'object', required: ['id', 'period'], properties: { id: { type: 'integer', minimum: 0 }, period: { type: 'string', enum: [...UTC_PERIODS] } } },
      response: { 200: { ...periodStatsSchema, type: ['object', 'null'] } },
    },
  }, async (req) => {
    const device = q.device(req.params.id);
    const now = Date.now();
    // No reading in the period: JSON null, as BaluHost answers.
    return periodStatsJson(device, await periodFigures(series, device.id, utcPeriodStart(req.params.period, now), now));
  });

  app.get<{ Params: { id: number }; Querystring: { hours: number } }>('/api/energy/hourly/:id', {
    schema: {
      params: idParams,
      querystring: { type: 'object', properties: { hours: { type: 'integer', minimum: 1, maximum: 168, default: 24 } } },
      response: { 200: { type: 'array', items: hourlySampleSchema } },
    },
  }, async (req) => {
    const device = q.device(req.params.id);
    const now = Date.now();
    return hourlyJson(await hourlyMeans(series, device.id, now - req.query.hours * HOUR_MS, now));
  });

  app.get<{ Params: { id: number }; Querystring: { period: UtcPeriod; cost_per_kwh?: number; currency?: string } }>('/api/energy/cost/:id', {
    schema: {
      params: idParams,
      querystring: {
        type: 'object',
        properties: { ...periodQs, cost_per_kwh: { type: 'number', exclusiveMinimum: 0 }, currency: { type: 'string', maxLength: 3 } },
      },
      response: { 200: costSchema },
    },
  }, async (req) => {
    const device = q.device(req.params.id);
    const { period, cost_per_kwh, currency } = req.query;
    const now = Date.now();
    const from = utcPeriodStart(period, now);
    const c = await cumulative(series, await monitor.book(), [device.id], from, now);
    if (cost_per_kwh !== undefined) {
      // BaluHost's semantics when the caller names a price: energy × that price.
      return costJson(device, period, c.energyWh, (c.energyWh / 1000) * cost_per_kwh, cost_per_kwh, currency ?? monitor.currency);
    }
    // Otherwise the Pi's tariffs (time of use included); the price shown is the mean paid per kWh.
    const mean = c.energyWh > 0 ? c.cost / (c.energyWh / 1000) : (await priceNow(now)).pricePerKwh;
    return costJson(device, period, c.energyWh, c.cost, mean, monitor.currency);
  });

  const cumulativeRoute = async (who: { id: number; name: string }, ids: number[], period: UtcPeriod) => {
    const now = Date.now();
    const c = await cumulative(series, await monitor.book(), ids, utcPeriodStart(period, now), now);
    return cumulativeJson(who, period, c, (await priceNow(now)).pricePerKwh, monitor.currency);
  };
  const cumulativeSchemas = { querystring: { type: 'object', properties: periodQs }, response: { 200: cumulativeSchema } };

  // Registered before /:id; Fastify prefers the static segment anyway.
  app.get<{ Querystring: { period: UtcPeriod } }>('/api/energy/cumulative/total', { schema: cumulativeSchemas }, async (req) =>
    cumulativeRoute({ id: 0, name: 'Total' }, q.current().devices.map((d) => d.device.id), req.query.period));

  app.get<{ Params: { id: number }; Querystring: { period: UtcPeriod } }>('/api/energy/cumulative/:id', {
    schema: { ...cumulativeSchemas, params: idParams },
  }, async (req) => {
    const device = q.device(req.params.id);
    return cumulativeRoute({ id: device.id, name: device.name }, [device.id], req.query.period);
  });

  app.get('/api/energy/price', { schema: { response: { 200: priceSchema } } }, async () => {
    const now = Date.now();
    const p = await priceNow(now);
    return { id: 1, cost_per_kwh: p.pricePerKwh, currency: monitor.currency, updated_at: isoUtc(p.since), updated_by_user_id: null };
  });

  // BaluApp's Power screen chooses which plugs its dashboard card shows; with none chosen it shows the first one.
  const pluginConfig = async () => ({ name: TAPO_PLUGIN, config: { panel_devices: await monitor.registry.panelDevices() }, schema: null });
  app.get(`/api/plugins/${TAPO_PLUGIN}/config`, { schema: { response: { 200: pluginConfigSchema } } }, pluginConfig);
  app.put<{ Body: { config: { panel_devices: number[] } } }>(`/api/plugins/${TAPO_PLUGIN}/config`, {
    schema: {
      body: {
        type: 'object',
        required: ['config'],
        properties: {
          config: {
            type: 'object',
            required: ['panel_devices'],
            properties: { panel_devices: { type: 'array', maxItems: 64, items: { type: 'integer', minimum: 0 } } },
          },
        },
      },
      response: { 200: pluginConfigSchema },
    },
  }, async (req) => {
    await monitor.registry.setPanelDevices(req.body.config.panel_devices);
    return pluginConfig();
  });
};
