// How the energy module's answers look in JSON: snake_case names, ISO-8601 UTC timestamps with Z, kWh and costs
// rounded for display, null for what is not known. The JSON schemas here serve Fastify's response serialization
// and document the shapes; the functions map domain values (energy-queries.ts) onto them.

import type { Alert } from '../energy/alerts.ts';
import type { CostBucket, CostReport } from '../energy/cost.ts';
import type { CostsView, CurrentDevice, CurrentView, DeviceHistory, HistoryPoint, SummaryView } from '../energy/energy-queries.ts';
import type { Tariff } from '../energy/tariff.ts';
import type { TimeRange } from '../energy/time-range.ts';
import type { PlugDevice, PlugReading } from '../energy/types.ts';
import { isoUtc } from '../energy/csv.ts';
import { formatHostPort } from '../energy/plug-client.ts';
import { num, int, str, bool, nNum, nStr, nBool } from '../http/schema-types.ts';

export { isoUtc };


const round = (x: number, digits: number): number => Math.round(x * 10 ** digits) / 10 ** digits;
const kwh = (wh: number): number => round(wh / 1000, 4);
const money = (x: number): number => round(x, 4);
const iso = (ms: number | null | undefined): string | null => (ms === null || ms === undefined ? null : isoUtc(ms));

// ---- current readings ---------------------------------------------------------------------------------------------

export const currentDeviceSchema = {
  type: 'object',
  required: ['device_id', 'device_name', 'name', 'role', 'power_w', 'voltage_v', 'current_a', 'is_online', 'device_on', 'timestamp'],
  properties: {
    device_id: int, device_name: str, name: str, role: str, power_w: nNum, voltage_v: nNum, current_a: nNum,
    energy_today_kwh: nNum, is_online: bool, device_on: nBool, timestamp: nStr,
  },
} as const;

export const currentSchema = {
  type: 'object',
  required: ['devices', 'partial_devices', 'total_power_w', 'timestamp'],
  properties: {
    devices: { type: 'array', items: currentDeviceSchema },
    partial_devices: { type: 'array', items: currentDeviceSchema },
    total_power_w: num,
    timestamp: str,
  },
} as const;

export function currentDeviceJson({ device, reading }: CurrentDevice) {
  return {
    device_id: device.id,
    device_name: device.name,
    // The earlier BaluPi web dashboard reads `name`; BaluHost's shapes say `device_name`. Both, same value.
    name: device.name,
    role: device.role,
    power_w: reading?.powerW ?? null,
    voltage_v: reading?.voltageV ?? null,
    current_a: reading?.currentA ?? null,
    energy_today_kwh: reading?.todayWh == null ? null : kwh(reading.todayWh),
    is_online: device.online,
    device_on: reading?.deviceOn ?? null,
    timestamp: iso(reading?.at),
  };
}

/** A reading with power, voltage and current all measured. */
const complete = ({ reading }: CurrentDevice) => reading !== null && reading.voltageV !== null && reading.currentA !== null;

/**
 * `devices` holds the plugs whose latest reading measured power, voltage and current; `partial_devices` the others
 * (firmware without get_emeter_data, or never read), with null for what was not measured. The split is for the
 * BaluHost web client's Pi dashboard, which calls toFixed() on power_w and voltage_v of every entry in `devices`
 * (a null there crashes its card) and must not be shown a voltage nobody measured. `total_power_w` covers every
 * online plug with a reading, in either list.
 */
export function currentJson(v: CurrentView) {
  return {
    devices: v.devices.filter(complete).map(currentDeviceJson),
    partial_devices: v.devices.filter((d) => !complete(d)).map(currentDeviceJson),
    total_power_w: round(v.totalPowerW, 3),
    timestamp: isoUtc(v.at),
  };
}

// ---- history ------------------------------------------------------------------------------------------------------

const rangeProps = { from: str, to: str, period: nStr } as const;

export const pointSchema = {
  type: 'object',
  required: ['timestamp', 'power_w'],
  properties: {
    timestamp: str, end: str, power_w: nNum, min_w: nNum, max_w: nNum, energy_wh: num, samples: int, partial: bool,
    voltage_v: nNum, current_a: nNum, device_on: bool,
  },
} as const;

export const historySchema = {
  type: 'object',
  required: ['from', 'to', 'period', 'resolution', 'devices'],
  properties: {
    ...rangeProps,
    resolution: str,
    devices: {
      type: 'array',
      items: {
        type: 'object',
        required: ['device_id', 'device_name', 'points'],
        properties: { device_id: int, device_name: str, points: { type: 'array', items: pointSchema } },
      },
    },
  },
} as const;

/** Raw points carry the sample; bucket points carry the mean as power_w (so a chart plots power_w either way). */
export function pointJson(p: HistoryPoint) {
  if (p.kind === 'raw') {
    const r: PlugReading = p.reading;
    return { timestamp: isoUtc(r.at), power_w: r.powerW, voltage_v: r.voltageV, current_a: r.currentA, device_on: r.deviceOn };
  }
  const b = p.rollup;
  return {
    timestamp: isoUtc(b.start), end: isoUtc(b.end), power_w: b.avgW === null ? null : round(b.avgW, 3),
    min_w: b.minW, max_w: b.maxW, energy_wh: round(b.energyWh, 3), samples: b.samples, partial: b.partial,
  };
}

function rangeJson(range: TimeRange) {
  return { from: isoUtc(range.from), to: isoUtc(range.to), period: range.period };
}

export function historyJson(range: TimeRange, resolution: string, devices: DeviceHistory[]) {
  return {
    ...rangeJson(range),
    resolution,
    devices: devices.map((d) => ({ device_id: d.device.id, device_name: d.device.name, points: d.points.map(pointJson) })),
  };
}

// ---- costs and summary --------------------------------------------------------------------------------------------

const bucketSchema = {
  type: 'object',
  properties: { timestamp: str, end: str, energy_kwh: num, cost: num, partial: bool },
} as const;
const costTotalsProps = { energy_kwh: num, cost: num, unpriced_kwh: num, buckets: { type: 'array', items: bucketSchema } } as const;

export const costsSchema = {
  type: 'object',
  required: ['from', 'to', 'resolution', 'currency', 'total', 'devices'],
  properties: {
    ...rangeProps,
    resolution: str,
    currency: str,
    total: { type: 'object', properties: costTotalsProps },
    devices: { type: 'array', items: { type: 'object', properties: { device_id: int, device_name: str, ...costTotalsProps } } },
  },
} as const;

const bucketJson = (b: CostBucket) => ({ timestamp: isoUtc(b.start), end: isoUtc(b.end), energy_kwh: kwh(b.energyWh), cost: money(b.cost), partial: b.partial });

export function costsJson(range: TimeRange, v: CostsView) {
  const r: CostReport = v.report;
  const name = new Map(v.devices.map((d) => [d.id, d.name]));
  return {
    ...rangeJson(range),
    resolution: r.resolution,
    currency: v.currency,
    total: { energy_kwh: kwh(r.total.energyWh), cost: money(r.total.cost), unpriced_kwh: kwh(r.total.unpricedWh), buckets: r.total.buckets.map(bucketJson) },
    devices: r.devices.map((d) => ({
      device_id: d.deviceId, device_name: name.get(d.deviceId) ?? `Device ${d.deviceId}`,
      energy_kwh: kwh(d.energyWh), cost: money(d.cost), unpriced_kwh: kwh(d.unpricedWh), buckets: d.buckets.map(bucketJson),
    })),
  };
}

export const summarySchema = {
  type: 'object',
  properties: {
    total_power_w: num, devices_online: int, devices_total: int,
    today_kwh: num, today_cost: num, month_kwh: num, month_cost: num,
    month_estimate_kwh: num, month_cost_estimate: num, avg_daily_kwh: nNum, estimate_basis_days: int,
    currency: str, price_per_kwh: nNum, price_tier: nStr,
    nas_state: str, nas_state_since: nStr, nas_state_reason: str, nas_power_w: nNum, nas_device_id: { type: ['integer', 'null'] },
    timestamp: str,
  },
} as const;

export function summaryJson(s: SummaryView) {
  return {
    total_power_w: round(s.current.totalPowerW, 3),
    devices_online: s.devicesOnline,
    devices_total: s.devicesTotal,
    today_kwh: kwh(s.today.total.energyWh),
    today_cost: money(s.today.total.cost),
    month_kwh: kwh(s.month.actualWh),
    month_cost: money(s.month.actualCost),
    month_estimate_kwh: kwh(s.month.estimateWh),
    month_cost_estimate: money(s.month.estimateCost),
    avg_daily_kwh: s.month.basisDailyWh === null ? null : kwh(s.month.basisDailyWh),
    estimate_basis_days: s.month.basisDays,
    currency: s.currency,
    price_per_kwh: s.priceNow?.pricePerKwh ?? null,
    price_tier: s.priceNow?.tier ?? null,
    nas_state: s.nas.snapshot.state,
    nas_state_since: iso(s.nas.snapshot.since),
    nas_state_reason: s.nas.snapshot.reason,
    nas_power_w: s.nas.snapshot.powerW,
    nas_device_id: s.nas.device?.id ?? null,
    timestamp: isoUtc(s.at),
  };
}

// ---- tariffs ------------------------------------------------------------------------------------------------------

const tiers = { type: 'array', items: { type: 'string', enum: ['on', 'mid', 'off'] } } as const;

export const tariffSchema = {
  type: 'object',
  properties: {
    id: str, name: str, kind: str, valid_from: str, currency: nStr, created_at: str,
    price_per_kwh: num, on_peak: num, mid_peak: num, off_peak: num, weekday: tiers, weekend: tiers,
  },
} as const;

/** POST body: the shape checks; parseTariffInput checks values (ranges, 24 slots, dates). */
export const tariffBodySchema = {
  type: 'object',
  required: ['kind', 'valid_from'],
  properties: {
    kind: { type: 'string', enum: ['constant', 'tou'] }, name: str, valid_from: str, currency: nStr,
    price_per_kwh: num, on_peak: num, mid_peak: num, off_peak: num, weekday: { type: 'array' }, weekend: { type: 'array' },
  },
} as const;

export const pricesSchema = {
  type: 'object',
  properties: {
    currency: str,
    default_price_per_kwh: num,
    current: { type: ['object', 'null'], properties: { price_per_kwh: num, tier: nStr, tariff_id: str, tariff_name: str } },
    tariffs: { type: 'array', items: tariffSchema },
  },
} as const;

const SNAKE: Record<string, string> = { validFrom: 'valid_from', pricePerKwh: 'price_per_kwh', onPeak: 'on_peak', midPeak: 'mid_peak', offPeak: 'off_peak', createdAt: 'created_at' };
const CAMEL: Record<string, string> = Object.fromEntries(Object.entries(SNAKE).map(([c, s]) => [s, c]));

/** The request body with the tariff module's field names. */
export function tariffInput(body: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(body).map(([k, v]) => [CAMEL[k] ?? k, v]));
}

/** parseTariffInput names fields the TypeScript way; the client sent them snake_case. */
export function snakeMessage(message: string): string {
  return message.replace(/\b(validFrom|pricePerKwh|onPeak|midPeak|offPeak)\b/g, (m) => SNAKE[m] ?? m);
}

export function tariffJson(t: Tariff) {
  const common = { id: t.id, name: t.name, kind: t.kind, valid_from: t.validFrom, currency: t.currency, created_at: isoUtc(t.createdAt) };
  if (t.kind === 'constant') return { ...common, price_per_kwh: t.pricePerKwh };
  return { ...common, on_peak: t.onPeak, mid_peak: t.midPeak, off_peak: t.offPeak, weekday: t.weekday, weekend: t.weekend };
}

// ---- alerts -------------------------------------------------------------------------------------------------------

export const alertSchema = {
  type: 'object',
  properties: {
    id: str, kind: str, device_id: int, device_name: str, message: str,
    details: { type: 'object', additionalProperties: true },
    opened_at: str, last_seen_at: str, occurrences: int, cleared_at: nStr, acknowledged_at: nStr,
    is_active: bool, is_acknowledged: bool,
  },
} as const;

/** Detail keys come from the alert rules in camelCase; instants (…At, …Since) become ISO strings. */
function detailsJson(details: Alert['details']): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(details)) {
    const snake = k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
    out[snake] = typeof v === 'number' && /(At|Since)$/.test(k) ? isoUtc(v) : v;
  }
  return out;
}

export function alertJson(a: Alert, deviceName: string) {
  return {
    id: a.id, kind: a.kind, device_id: a.deviceId, device_name: deviceName, message: a.message, details: detailsJson(a.details),
    opened_at: isoUtc(a.openedAt), last_seen_at: isoUtc(a.lastSeenAt), occurrences: a.occurrences,
    cleared_at: iso(a.clearedAt), acknowledged_at: iso(a.acknowledgedAt),
    is_active: a.clearedAt === null, is_acknowledged: a.acknowledgedAt !== null,
  };
}

// ---- devices (Tapo) -----------------------------------------------------------------------------------------------

export const deviceSchema = {
  type: 'object',
  properties: {
    id: int, name: str, nickname: nStr, host: str, port: int, address: str, role: str, model: nStr, firmware: nStr, mac: nStr,
    max_power_w: nNum, is_online: bool, last_seen: nStr, last_error: nStr, device_on: nBool, power_w: nNum,
  },
} as const;

export function deviceJson(d: PlugDevice, reading: PlugReading | null) {
  return {
    id: d.id, name: d.name, nickname: d.nickname ?? null, host: d.host, port: d.port,
    address: formatHostPort(d.host, d.port),
    role: d.role, model: d.model, firmware: d.firmware, mac: d.mac, max_power_w: d.maxPowerW,
    is_online: d.online, last_seen: iso(d.lastSeen), last_error: d.lastError,
    device_on: reading?.deviceOn ?? null, power_w: reading?.powerW ?? null,
  };
}
