// The Pi's plugs and energy figures in BaluHost's smart-device and energy shapes (../shared/reference/baluhost-api.md
// §6, clients.md §A.4/§A.8/§B.4): field names, rounding and date formats as BaluHost emits them. Schemas here drive
// Fastify's serialization; the functions map the energy module's domain values onto them. Where the Pi has no such
// value the README section "BaluHost-compatible dashboard endpoints" says what is sent instead.

import type { PlugDevice, PlugReading } from '../energy/types.ts';
import type { Cumulative, PeriodFigures, UtcPeriod } from '../energy/utc-periods.ts';
import type { Rollup } from '../energy/rollup.ts';
import { formatHostPort } from '../energy/plug-client.ts';
import { isoUtc } from './energy-json.ts';
import { num, int, str, bool, nNum, nStr } from '../http/schema-types.ts';


const round = (x: number, digits: number): number => Math.round(x * 10 ** digits) / 10 ** digits;
const iso = (ms: number | null | undefined): string | null => (ms === null || ms === undefined ? null : isoUtc(ms));

/** BaluHost's plugin for these plugs; BaluApp asks its config by this name. */
export const TAPO_PLUGIN = 'tapo_smart_plug';
const CAPABILITIES = ['switch', 'power_monitor'];

// ---- /api/smart-devices/ ------------------------------------------------------------------------------------------

const powerStateSchema = {
  type: 'object',
  properties: {
    watts: num, voltage: nNum, current: nNum, energy_today_kwh: nNum, timestamp: str,
    current_power: num, current_ma: nNum, energy_today_wh: nNum,
  },
} as const;

export const smartDeviceSchema = {
  type: 'object',
  required: ['id', 'name', 'plugin_name', 'device_type_id', 'address', 'mac_address', 'capabilities', 'is_active', 'is_online',
    'last_seen', 'last_error', 'state', 'created_at', 'updated_at'],
  properties: {
    id: int, name: str, plugin_name: str, device_type_id: str, address: str, mac_address: nStr,
    capabilities: { type: 'array', items: str }, is_active: bool, is_online: bool, last_seen: nStr, last_error: nStr,
    state: {
      type: ['object', 'null'],
      properties: { switch: { type: 'object', properties: { is_on: bool } }, power_monitor: powerStateSchema },
    },
    created_at: nStr, updated_at: nStr,
  },
} as const;

export const smartDeviceListSchema = {
  type: 'object',
  required: ['devices', 'total'],
  properties: { devices: { type: 'array', items: smartDeviceSchema }, total: int },
} as const;

/** The live state, in both of BaluHost's vocabularies: its PowerReading (`watts`, `current` in A) and the keys its
 *  own energy dashboard and web client read (`current_power`, `current_ma`, `energy_today_wh`). */
function stateJson(r: PlugReading) {
  return {
    switch: { is_on: r.deviceOn },
    power_monitor: {
      watts: r.powerW,
      voltage: r.voltageV,
      current: r.currentA,
      energy_today_kwh: r.todayWh === null ? null : round(r.todayWh / 1000, 3),
      timestamp: isoUtc(r.at),
      current_power: r.powerW,
      current_ma: r.currentA === null ? null : Math.round(r.currentA * 1000),
      energy_today_wh: r.todayWh,
    },
  };
}

export function smartDeviceJson(d: PlugDevice, reading: PlugReading | null) {
  return {
    id: d.id,
    name: d.name,
    plugin_name: TAPO_PLUGIN,
    device_type_id: d.model?.toLowerCase() ?? 'unknown',
    address: formatHostPort(d.host, d.port),
    mac_address: d.mac,
    capabilities: CAPABILITIES,
    // The Pi polls every plug it knows; a plug removed from the Pi is gone, not inactive.
    is_active: true,
    is_online: d.online,
    last_seen: iso(d.lastSeen),
    last_error: d.lastError,
    state: reading ? stateJson(reading) : null,
    // The Pi's registry does not record when a plug was added or changed.
    created_at: null,
    updated_at: null,
  };
}

// ---- /api/smart-devices/power/summary -----------------------------------------------------------------------------

export const powerSummarySchema = {
  type: 'object',
  required: ['total_watts', 'device_count', 'devices'],
  properties: {
    total_watts: num,
    device_count: int,
    devices: { type: 'array', items: { type: 'object', required: ['device_id', 'name', 'watts'], properties: { device_id: int, name: str, watts: num } } },
  },
} as const;

/** Online plugs drawing power, as BaluHost lists them (it skips offline plugs and plugs at 0 W). */
export function powerSummaryJson(devices: { device: PlugDevice; reading: PlugReading | null }[]) {
  const drawing = devices.filter(({ device, reading }) => device.online && reading !== null && reading.powerW > 0);
  const list = drawing.map(({ device, reading }) => ({ device_id: device.id, name: device.name, watts: round(reading!.powerW, 1) }));
  return { total_watts: round(list.reduce((s, d) => s + d.watts, 0), 1), device_count: list.length, devices: list };
}

// ---- /api/energy/dashboard, /stats, /hourly -----------------------------------------------------------------------

export const periodStatsSchema = {
  type: 'object',
  required: ['device_id', 'device_name', 'start_time', 'end_time', 'samples_count', 'avg_watts', 'min_watts', 'max_watts',
    'total_energy_kwh', 'uptime_percentage', 'downtime_minutes'],
  properties: {
    device_id: int, device_name: str, start_time: str, end_time: str, samples_count: int, avg_watts: num, min_watts: num,
    max_watts: num, total_energy_kwh: num, uptime_percentage: num, downtime_minutes: int,
  },
} as const;
const nullablePeriodStats = { ...periodStatsSchema, type: ['object', 'null'] } as const;

export function periodStatsJson(d: PlugDevice, f: PeriodFigures | null) {
  if (!f) return null;
  const downMs = Math.max(0, f.observedMs - f.coveredMs);
  return {
    device_id: d.id,
    device_name: d.name,
    start_time: isoUtc(f.from),
    end_time: isoUtc(f.to),
    samples_count: f.samples,
    avg_watts: round(f.avgW, 1),
    min_watts: round(f.minW, 1),
    max_watts: round(f.maxW, 1),
    total_energy_kwh: round(f.energyWh / 1000, 3),
    uptime_percentage: f.observedMs > 0 ? round((f.coveredMs / f.observedMs) * 100, 1) : 100,
    downtime_minutes: Math.floor(downMs / 60_000),
  };
}

export const hourlySampleSchema = {
  type: 'object',
  required: ['timestamp', 'avg_watts', 'sample_count'],
  properties: { timestamp: str, avg_watts: num, sample_count: int },
} as const;

/** BaluHost keys its hours as "YYYY-MM-DD HH:00:00" (UTC, space, no zone); its web client reads them as UTC. */
export function hourKey(ms: number): string {
  return new Date(ms).toISOString().slice(0, 19).replace('T', ' ');
}

export function hourlyJson(hours: Rollup[]) {
  return hours.map((h) => ({ timestamp: hourKey(h.start), avg_watts: round(h.avgW ?? 0, 1), sample_count: h.samples }));
}

export const dashboardSchema = {
  type: 'object',
  required: ['device_id', 'device_name', 'today', 'week', 'month', 'hourly_samples', 'current_watts', 'is_online', 'last_updated'],
  properties: {
    device_id: int, device_name: str, today: nullablePeriodStats, week: nullablePeriodStats, month: nullablePeriodStats,
    hourly_samples: { type: 'array', items: hourlySampleSchema }, current_watts: num, is_online: bool, last_updated: str,
  },
} as const;

export interface DashboardInput {
  device: PlugDevice;
  reading: PlugReading | null;
  periods: Record<UtcPeriod, PeriodFigures | null>;
  hours: Rollup[];
  now: number;
}

export function dashboardJson({ device, reading, periods, hours, now }: DashboardInput) {
  return {
    device_id: device.id,
    device_name: device.name,
    today: periodStatsJson(device, periods.today),
    week: periodStatsJson(device, periods.week),
    month: periodStatsJson(device, periods.month),
    hourly_samples: hourlyJson(hours),
    // BaluHost sends 0.0 when it has no live value; a plug that stopped answering has none.
    current_watts: device.online && reading ? reading.powerW : 0,
    is_online: device.online,
    last_updated: isoUtc(reading?.at ?? now),
  };
}

// ---- /api/energy/cost, /cumulative, /price ------------------------------------------------------------------------

export const PERIOD_NAMES: Record<UtcPeriod, string> = { today: 'Today', week: 'This Week', month: 'This Month' };

export const costSchema = {
  type: 'object',
  required: ['device_id', 'device_name', 'period_name', 'total_kwh', 'cost_per_kwh', 'estimated_cost', 'currency'],
  properties: { device_id: int, device_name: str, period_name: str, total_kwh: num, cost_per_kwh: num, estimated_cost: num, currency: str },
} as const;

export function costJson(d: PlugDevice, period: UtcPeriod, totalWh: number, cost: number, pricePerKwh: number, currency: string) {
  return {
    device_id: d.id,
    device_name: d.name,
    period_name: PERIOD_NAMES[period],
    total_kwh: round(totalWh / 1000, 3),
    cost_per_kwh: round(pricePerKwh, 4),
    estimated_cost: round(cost, 2),
    currency,
  };
}

export const cumulativeSchema = {
  type: 'object',
  required: ['device_id', 'device_name', 'period', 'cost_per_kwh', 'currency', 'total_kwh', 'total_cost', 'data_points'],
  properties: {
    device_id: int, device_name: str, period: str, cost_per_kwh: num, currency: str, total_kwh: num, total_cost: num,
    data_points: {
      type: 'array',
      items: {
        type: 'object',
        required: ['timestamp', 'cumulative_kwh', 'cumulative_cost', 'instant_watts'],
        properties: { timestamp: str, cumulative_kwh: num, cumulative_cost: num, instant_watts: num },
      },
    },
  },
} as const;

/** BaluHost thins its chart to about 200 points, keeping the first and the last. */
const MAX_POINTS = 200;

function thin<T>(points: T[]): T[] {
  if (points.length <= MAX_POINTS) return points;
  const step = Math.floor(points.length / MAX_POINTS);
  const out = [points[0]!];
  for (let i = step; i < points.length - 1; i += step) out.push(points[i]!);
  out.push(points[points.length - 1]!);
  return out;
}

export function cumulativeJson(
  who: { id: number; name: string }, period: UtcPeriod, c: Cumulative, pricePerKwh: number, currency: string,
) {
  return {
    device_id: who.id,
    device_name: who.name,
    period,
    cost_per_kwh: round(pricePerKwh, 4),
    currency,
    total_kwh: round(c.energyWh / 1000, 4),
    total_cost: round(c.cost, 2),
    data_points: thin(c.points).map((p) => ({
      timestamp: isoUtc(p.at),
      cumulative_kwh: round(p.cumulativeWh / 1000, 4),
      cumulative_cost: round(p.cumulativeCost, 4),
      instant_watts: round(p.meanW, 1),
    })),
  };
}

export const priceSchema = {
  type: 'object',
  required: ['id', 'cost_per_kwh', 'currency', 'updated_at', 'updated_by_user_id'],
  properties: { id: int, cost_per_kwh: num, currency: str, updated_at: str, updated_by_user_id: { type: ['integer', 'null'] } },
} as const;

// ---- /api/plugins/tapo_smart_plug/config --------------------------------------------------------------------------

export const pluginConfigSchema = {
  type: 'object',
  required: ['name', 'config', 'schema'],
  properties: {
    name: str,
    config: { type: 'object', required: ['panel_devices'], properties: { panel_devices: { type: 'array', items: int } } },
    schema: { type: 'null' },
  },
} as const;
