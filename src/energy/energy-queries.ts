// The read side of the energy module, shared by the REST routes, the CSV export and the RPC service: current
// readings, history points, costs, the summary and alerts. Answers are domain values (camelCase, ms since epoch);
// each transport formats them itself. Nothing here writes.

import type { Calendar } from './calendar.ts';
import type { EnergySeries } from './series.ts';
import type { Resolution, Rollup } from './rollup.ts';
import type { PlugDevice, PlugReading } from './types.ts';
import type { PriceAt, TariffBook } from './tariff.ts';
import type { NasPowerSnapshot } from './nas-power.ts';
import type { Alert, AlertCenter } from './alerts.ts';
import { costReport, estimateMonth, type CostReport, type MonthEstimate } from './cost.ts';
import { DeviceRegistryError } from './device-registry.ts';
import type { TimeRange } from './time-range.ts';

export type HistoryResolution = 'raw' | Resolution;

export type HistoryPoint = { kind: 'raw'; reading: PlugReading } | { kind: 'bucket'; rollup: Rollup };

export interface CurrentDevice {
  device: PlugDevice;
  /** The latest reading (this run's, else the last one stored), null if the plug was never read. */
  reading: PlugReading | null;
}

export interface CurrentView {
  at: number;
  devices: CurrentDevice[];
  /** Sum over online plugs with a reading. */
  totalPowerW: number;
}

export interface DeviceHistory {
  device: PlugDevice;
  points: HistoryPoint[];
}

export interface NasView {
  device: PlugDevice | null;
  snapshot: NasPowerSnapshot;
}

export interface SummaryView {
  at: number;
  current: CurrentView;
  currency: string;
  today: CostReport;
  month: MonthEstimate;
  priceNow: PriceAt | null;
  nas: NasView;
  devicesOnline: number;
  devicesTotal: number;
}

export interface CostsView {
  report: CostReport;
  currency: string;
  devices: PlugDevice[];
}

/** What the queries read; the EnergyMonitor provides it. */
export interface QuerySources {
  readonly calendar: Calendar;
  readonly series: EnergySeries;
  readonly alerts: AlertCenter;
  readonly currency: string;
  devices(): PlugDevice[];
  latestReading(id: number): PlugReading | null;
  book(): Promise<TariffBook>;
  nas(): NasView;
  now(): number;
}

export class EnergyQueries {
  readonly #src: QuerySources;

  constructor(sources: QuerySources) {
    this.#src = sources;
  }

  /** The device, or DEVICE_NOT_FOUND (404) in BaluHost's words. */
  device(id: number): PlugDevice {
    const d = this.#src.devices().find((x) => x.id === id);
    if (!d) throw new DeviceRegistryError('DEVICE_NOT_FOUND', `Device ${id} not found`);
    return d;
  }

  /** One device, or all of them when `id` is undefined. */
  select(id: number | undefined): PlugDevice[] {
    return id === undefined ? this.#src.devices() : [this.device(id)];
  }

  current(): CurrentView {
    const devices = this.#src.devices().map((device) => ({ device, reading: this.#src.latestReading(device.id) }));
    let total = 0;
    for (const { device, reading } of devices) if (device.online && reading) total += reading.powerW;
    return { at: this.#src.now(), devices, totalPowerW: total };
  }

  /** The points of one device in time order: raw samples, streamed block by block, or rollup buckets. */
  async *points(deviceId: number, range: TimeRange, resolution: HistoryResolution): AsyncGenerator<HistoryPoint> {
    if (resolution === 'raw') {
      for await (const reading of this.#src.series.iterateRaw(deviceId, range.from, range.to)) yield { kind: 'raw', reading };
      return;
    }
    for (const rollup of await this.#src.series.rollups(deviceId, resolution, range.from, range.to)) {
      yield { kind: 'bucket', rollup };
    }
  }

  async history(devices: PlugDevice[], range: TimeRange, resolution: HistoryResolution): Promise<DeviceHistory[]> {
    const out: DeviceHistory[] = [];
    for (const device of devices) {
      const points: HistoryPoint[] = [];
      for await (const p of this.points(device.id, range, resolution)) points.push(p);
      out.push({ device, points });
    }
    return out;
  }

  async costs(devices: PlugDevice[], range: TimeRange, resolution: Resolution): Promise<CostsView> {
    const report = await costReport(this.#src.series, await this.#src.book(), {
      deviceIds: devices.map((d) => d.id),
      from: range.from,
      to: range.to,
      resolution,
    });
    return { report, currency: report.currency ?? this.#src.currency, devices };
  }

  async summary(): Promise<SummaryView> {
    const now = this.#src.now();
    const cal = this.#src.calendar;
    const current = this.current();
    const ids = current.devices.map((d) => d.device.id);
    const book = await this.#src.book();
    const today = await costReport(this.#src.series, book, { deviceIds: ids, from: cal.dayStart(now), to: now, resolution: 'day' });
    const month = await estimateMonth(this.#src.series, book, { deviceIds: ids, now });
    return {
      at: now,
      current,
      currency: month.currency ?? today.currency ?? this.#src.currency,
      today,
      month,
      priceNow: book.priceAt(now),
      nas: this.#src.nas(),
      devicesOnline: current.devices.filter((d) => d.device.online).length,
      devicesTotal: current.devices.length,
    };
  }

  async alerts(q: { acknowledged?: boolean; deviceId?: number; limit?: number }): Promise<Alert[]> {
    return this.#src.alerts.list(q);
  }

  /** Name of a device for display, also for devices removed since (their alerts and history remain). */
  deviceName(id: number): string {
    return this.#src.devices().find((d) => d.id === id)?.name ?? `Device ${id}`;
  }
}
