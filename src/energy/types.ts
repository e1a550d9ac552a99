// Shared vocabulary of the energy module: the plug side (client, poller, devices) produces these, the series side
// (storage, rollups, costs, alerts, NAS power state) consumes them.

export type DeviceRole = 'nas' | 'monitor' | 'generic';

/** A configured smart plug. `id` is a small positive integer, stable for the life of the data directory
 *  (BaluHost's smart-device API addresses devices by integer id). */
export interface PlugDevice {
  id: number;
  host: string;
  port: number;
  /** The operator's name for the plug; when none was given, the plug's own nickname, else `Tapo <host>`. */
  name: string;
  /** The nickname set in the Tapo app (decoded from the plug's base64), null until the plug was reached. */
  nickname?: string | null;
  role: DeviceRole;
  model: string | null;
  firmware: string | null;
  mac: string | null;
  /** Power above this many watts raises an alert; null = no limit. */
  maxPowerW: number | null;
  online: boolean;
  /** ms since epoch of the last successful poll. */
  lastSeen: number | null;
  lastError: string | null;
}

/** One poll of one plug, in SI-ish units (the plug's mW / Wh / minutes are converted at the client). */
export interface PlugReading {
  deviceId: number;
  /** ms since epoch when the plug answered. */
  at: number;
  powerW: number;
  /** Only from firmware that answers get_emeter_data; null otherwise (never invented). */
  voltageV: number | null;
  currentA: number | null;
  /** The plug's own counters: today's energy resets at the plug's local midnight. */
  todayWh: number | null;
  monthWh: number | null;
  deviceOn: boolean;
}
