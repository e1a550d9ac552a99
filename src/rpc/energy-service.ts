// balupi.energy.v1.EnergyService over the same EnergyMonitor as the REST routes: latest readings, a device's
// history as a server stream (raw samples come straight off the series iterator, so any range streams in bounded
// memory), and the summary. Peers need the pairing secret (the daemon's interceptor); errors map in rpc/errors.ts.

import { create } from '@bufbuild/protobuf';
import { timestampDate, timestampFromMs, type Timestamp } from '@bufbuild/protobuf/wkt';
import type { ServiceImpl } from '@connectrpc/connect';
import {
  DeviceReadingSchema, EnergyService, GetCurrentResponseSchema, GetSummaryResponseSchema, Resolution,
  StreamHistoryResponseSchema, type StreamHistoryResponse,
} from '../gen/balupi/energy/v1/energy_pb.js';
import type { EnergyMonitor } from '../energy/monitor.ts';
import type { HistoryResolution } from '../energy/energy-queries.ts';
import { EnergyQueryError, MAX_RANGE_MS } from '../energy/time-range.ts';

const DEFAULT_SPAN_MS = 24 * 3_600_000;

const RESOLUTIONS: Record<Resolution, HistoryResolution> = {
  [Resolution.UNSPECIFIED]: 'hour',
  [Resolution.RAW]: 'raw',
  [Resolution.HOUR]: 'hour',
  [Resolution.DAY]: 'day',
  [Resolution.MONTH]: 'month',
};

const ms = (t: Timestamp | undefined): number | undefined => (t ? timestampDate(t).getTime() : undefined);

export function energyService(monitor: EnergyMonitor): ServiceImpl<typeof EnergyService> {
  const q = monitor.queries;
  return {
    async getCurrent() {
      const v = q.current();
      return create(GetCurrentResponseSchema, {
        totalPowerW: v.totalPowerW,
        devices: v.devices.map(({ device, reading }) =>
          create(DeviceReadingSchema, {
            deviceId: device.id,
            deviceName: device.name,
            role: device.role,
            powerW: reading?.powerW ?? 0,
            voltageV: reading?.voltageV ?? undefined,
            currentA: reading?.currentA ?? undefined,
            isOnline: device.online,
            deviceOn: reading?.deviceOn ?? false,
            timestamp: reading ? timestampFromMs(reading.at) : undefined,
          }),
        ),
      });
    },

    async *streamHistory(req): AsyncGenerator<StreamHistoryResponse> {
      const device = q.device(req.deviceId);
      const resolution = RESOLUTIONS[req.resolution];
      if (resolution === undefined) throw new EnergyQueryError(`unknown resolution ${req.resolution}`);
      const to = ms(req.to) ?? Date.now();
      const from = ms(req.from) ?? to - DEFAULT_SPAN_MS;
      if (to <= from) throw new EnergyQueryError('to must be after from');
      if (to - from > MAX_RANGE_MS) throw new EnergyQueryError('the range from..to must not exceed 3660 days');
      for await (const p of q.points(device.id, { from, to, period: null }, resolution)) {
        if (p.kind === 'raw') {
          const r = p.reading;
          yield create(StreamHistoryResponseSchema, {
            time: timestampFromMs(r.at), avgW: r.powerW, minW: r.powerW, maxW: r.powerW, energyWh: 0, samples: 1,
          });
        } else {
          const b = p.rollup;
          yield create(StreamHistoryResponseSchema, {
            time: timestampFromMs(b.start), avgW: b.avgW ?? 0, minW: b.minW ?? 0, maxW: b.maxW ?? 0,
            energyWh: b.energyWh, samples: b.samples, partial: b.partial,
          });
        }
      }
    },

    async getSummary() {
      const s = await q.summary();
      return create(GetSummaryResponseSchema, {
        totalPowerW: s.current.totalPowerW,
        todayKwh: s.today.total.energyWh / 1000,
        todayCost: s.today.total.cost,
        monthKwh: s.month.actualWh / 1000,
        monthCost: s.month.actualCost,
        monthCostEstimate: s.month.estimateCost,
        currency: s.currency,
        nasState: s.nas.snapshot.state,
        nasStateSince: s.nas.snapshot.since === null ? undefined : timestampFromMs(s.nas.snapshot.since),
        nasStateReason: s.nas.snapshot.reason,
        devices: s.devicesTotal,
        devicesOnline: s.devicesOnline,
      });
    },
  };
}

export { EnergyService };
