// CSV export of the energy history: a header row, then one row per raw sample or per bucket, device after device,
// in time order. Produced as an async generator of text pieces of a few kB, so the HTTP layer streams it with
// backpressure and a year of raw samples never sits in memory.

import type { Calendar } from './calendar.ts';
import type { EnergyQueries, HistoryResolution } from './energy-queries.ts';
import type { TimeRange } from './time-range.ts';
import type { PlugDevice } from './types.ts';

const RAW_HEADER = ['timestamp', 'local_time', 'device_id', 'device_name', 'power_w', 'voltage_v', 'current_a', 'device_on', 'today_wh'];
const BUCKET_HEADER = ['timestamp', 'local_time', 'end', 'device_id', 'device_name', 'avg_w', 'min_w', 'max_w', 'energy_wh', 'samples', 'partial'];
/** Rows are joined into pieces of about this many characters before being handed to the stream. */
const PIECE_CHARS = 16 * 1024;

export function csvHeader(resolution: HistoryResolution): string[] {
  return resolution === 'raw' ? RAW_HEADER : BUCKET_HEADER;
}

/** RFC 4180 quoting; a leading = + - @ is prefixed with ' so a spreadsheet does not run a device name as a formula. */
export function csvField(v: string | number | boolean | null): string {
  if (v === null) return '';
  if (typeof v !== 'string') return String(v);
  const safe = /^[=+\-@]/.test(v) ? `'${v}` : v;
  return /[",\r\n]/.test(safe) ? `"${safe.replaceAll('"', '""')}"` : safe;
}

/** ISO 8601 UTC with Z, without a zero fraction (2026-03-01T12:00:00Z), as BaluHost's Pydantic writes it. */
export function isoUtc(ms: number): string {
  return new Date(ms).toISOString().replace('.000Z', 'Z');
}

export async function* energyCsv(
  queries: EnergyQueries,
  calendar: Calendar,
  q: { devices: PlugDevice[]; range: TimeRange; resolution: HistoryResolution },
): AsyncGenerator<string> {
  let piece = csvHeader(q.resolution).join(',') + '\r\n';
  for (const device of q.devices) {
    for await (const p of queries.points(device.id, q.range, q.resolution)) {
      let row: (string | number | boolean | null)[];
      if (p.kind === 'raw') {
        const r = p.reading;
        row = [isoUtc(r.at), calendar.formatLocal(r.at), device.id, device.name, r.powerW, r.voltageV, r.currentA, r.deviceOn, r.todayWh];
      } else {
        const b = p.rollup;
        row = [isoUtc(b.start), calendar.formatLocal(b.start), isoUtc(b.end), device.id, device.name, b.avgW, b.minW, b.maxW,
          round(b.energyWh, 3), b.samples, b.partial];
      }
      piece += row.map(csvField).join(',') + '\r\n';
      if (piece.length >= PIECE_CHARS) {
        yield piece;
        piece = '';
      }
    }
  }
  if (piece !== '') yield piece;
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
