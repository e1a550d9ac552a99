// CSV export of raw samples or rollups (for /api/energy/export.csv), streamed in chunks of lines so a year of raw
// data never sits in memory. Times are given twice: UTC ISO 8601 and local ISO 8601 with its offset (unambiguous in
// the repeated October hour). Numbers use '.' decimals and no thousands separators; empty = unknown.

import type { Calendar } from './calendar.ts';
import type { Resolution, Rollup } from './rollup.ts';
import type { PlugReading } from './types.ts';

export interface CsvSource {
  readonly calendar: Calendar;
  iterateRaw(deviceId: number, from: number, to: number): AsyncIterable<PlugReading>;
  rollups(deviceId: number, resolution: Resolution, from: number, to: number): Promise<Rollup[]>;
}

export interface CsvQuery {
  deviceIds: readonly number[];
  from: number;
  to: number;
  resolution: 'raw' | Resolution;
}

const RAW_HEADER = 'device_id,time_utc,time_local,power_w,voltage_v,current_a,today_wh,month_wh,device_on';
const ROLLUP_HEADER = 'device_id,start_utc,start_local,end_local,samples,avg_w,min_w,max_w,energy_wh,counter_wh,covered_s,partial';
const LINES_PER_CHUNK = 1000;

const num = (v: number | null): string => (v === null ? '' : String(Math.round(v * 1e6) / 1e6));

/** Yields CSV text chunks (each ends with a newline), header first. */
export async function* energyCsv(src: CsvSource, q: CsvQuery): AsyncGenerator<string> {
  const cal = src.calendar;
  let lines: string[] = [q.resolution === 'raw' ? RAW_HEADER : ROLLUP_HEADER];
  for (const id of q.deviceIds) {
    if (q.resolution === 'raw') {
      for await (const r of src.iterateRaw(id, q.from, q.to)) {
        lines.push(`${id},${new Date(r.at).toISOString()},${cal.formatLocal(r.at)},${num(r.powerW)},${num(r.voltageV)},` +
          `${num(r.currentA)},${num(r.todayWh)},${num(r.monthWh)},${r.deviceOn ? 1 : 0}`);
        if (lines.length >= LINES_PER_CHUNK) { yield lines.join('\n') + '\n'; lines = []; }
      }
    } else {
      for (const r of await src.rollups(id, q.resolution, q.from, q.to)) {
        lines.push(`${id},${new Date(r.start).toISOString()},${cal.formatLocal(r.start)},${cal.formatLocal(r.end)},` +
          `${r.samples},${num(r.avgW)},${num(r.minW)},${num(r.maxW)},${num(r.energyWh)},${num(r.counterWh)},` +
          `${r.coveredMs / 1000},${r.partial ? 1 : 0}`);
        if (lines.length >= LINES_PER_CHUNK) { yield lines.join('\n') + '\n'; lines = []; }
      }
    }
  }
  if (lines.length > 0) yield lines.join('\n') + '\n';
}
