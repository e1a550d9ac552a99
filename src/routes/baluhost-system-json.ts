// The Pi's host figures in BaluHost's system shapes (../shared/reference/clients.md §A.4, §B.4; baluhost-api.md §1,
// §5.6, §7.2), and the well-formed empty answers for the NAS features a Pi does not have (RAID, SMART, shares,
// monitoring history), which the apps' dashboards tolerate as empty but not as 404. Schemas drive serialization.

import type { NodeStatus } from '../system/node-status.ts';
export type { ServiceState } from '../system/services.ts';
import { isoUtc } from './energy-json.ts';
import { num, int, str, bool, nNum, nStr } from '../http/schema-types.ts';

const emptyList = { type: 'array', maxItems: 0 } as const;

// ---- /api/system/info ---------------------------------------------------------------------------------------------

// BaluApp reads memory.free / disk.free, BaluDesk memory.available / disk.available: both are sent.
const sizes = { total: int, used: int, free: int, available: int } as const;

export const systemInfoSchema = {
  type: 'object',
  required: ['cpu', 'memory', 'disk', 'uptime', 'system_uptime', 'dev_mode'],
  properties: {
    cpu: {
      type: 'object',
      required: ['usage', 'cores', 'frequency_mhz', 'temperature_celsius', 'model'],
      properties: { usage: num, cores: int, frequency_mhz: nNum, temperature_celsius: nNum, model: nStr },
    },
    memory: { type: 'object', required: ['total', 'used', 'free', 'available', 'speed_mts', 'type'], properties: { ...sizes, speed_mts: { type: ['integer', 'null'] }, type: nStr } },
    disk: { type: 'object', required: ['total', 'used', 'free', 'available'], properties: sizes },
    uptime: num,
    system_uptime: num,
    dev_mode: bool,
  },
} as const;

export function systemInfoJson(s: NodeStatus) {
  return {
    cpu: { usage: s.cpu_percent, cores: s.cpu_cores, frequency_mhz: s.cpu_frequency_mhz, temperature_celsius: s.cpu_temp_celsius, model: s.cpu_model },
    // RAM speed and type are not readable on a Pi: null, as BaluHost sends where it cannot tell.
    memory: { total: s.memory.total, used: s.memory.used, free: s.memory.free, available: s.memory.available, speed_mts: null, type: null },
    // The disk that holds the Pi's data directory (its cache), the one whose filling matters.
    disk: { total: s.disk.total, used: s.disk.used, free: s.disk.free, available: s.disk.free },
    // BaluHost: `uptime` is its server process, `system_uptime` the host.
    uptime: s.process.uptime_seconds,
    system_uptime: s.uptime_seconds,
    dev_mode: false,
  };
}

// ---- NAS features the Pi does not have ---------------------------------------------------------------------------

export const raidStatusSchema = {
  type: 'object', required: ['arrays', 'speed_limits', 'dev_mode'], properties: { arrays: emptyList, speed_limits: { type: 'null' }, dev_mode: bool },
} as const;
export const raidStatusJson = () => ({ arrays: [], speed_limits: null, dev_mode: false });

export const smartStatusSchema = { type: 'object', required: ['checked_at', 'devices'], properties: { checked_at: str, devices: emptyList } } as const;
export const smartStatusJson = (now: number) => ({ checked_at: isoUtc(now), devices: [] });

export const shareStatisticsSchema = {
  type: 'object',
  required: ['total_file_shares', 'active_file_shares', 'files_shared_with_me'],
  properties: { total_file_shares: int, active_file_shares: int, files_shared_with_me: int },
} as const;
export const shareStatisticsJson = () => ({ total_file_shares: 0, active_file_shares: 0, files_shared_with_me: 0 });

// ---- /api/monitoring/* -------------------------------------------------------------------------------------------

/** Where history samples would come from: the Pi keeps only the latest sample, in memory. */
const SOURCE = 'memory';

export const uptimeCurrentSchema = {
  type: 'object',
  required: ['timestamp', 'server_uptime_seconds', 'system_uptime_seconds', 'server_start_time', 'system_boot_time'],
  properties: { timestamp: str, server_uptime_seconds: int, system_uptime_seconds: int, server_start_time: str, system_boot_time: str },
} as const;

export function uptimeCurrentJson(s: NodeStatus, now: number) {
  return {
    timestamp: isoUtc(now),
    server_uptime_seconds: s.process.uptime_seconds,
    system_uptime_seconds: s.uptime_seconds,
    server_start_time: isoUtc(now - s.process.uptime_seconds * 1000),
    system_boot_time: isoUtc(now - s.uptime_seconds * 1000),
  };
}

// BaluDesk's network widget turns Mbit/s back into bytes with ×1024×1024/8, so the same factors are used here.
export const networkCurrentSchema = {
  type: 'object',
  required: ['timestamp', 'upload_mbps', 'download_mbps'],
  properties: { timestamp: str, upload_mbps: num, download_mbps: num },
} as const;

export function networkCurrentJson(s: NodeStatus, now: number) {
  const mbps = (bytesPerS: number) => Math.round(((bytesPerS * 8) / (1024 * 1024)) * 1000) / 1000;
  return {
    timestamp: isoUtc(s.network ? Date.parse(s.sampled_at) : now),
    upload_mbps: mbps(s.network?.tx_bytes_per_s ?? 0),
    download_mbps: mbps(s.network?.rx_bytes_per_s ?? 0),
  };
}

export const servicesSchema = {
  type: 'array',
  items: {
    type: 'object',
    required: ['name', 'display_name', 'state', 'detail'],
    properties: { name: str, display_name: str, state: { type: 'string', enum: ['running', 'stopped', 'degraded'] }, detail: nStr },
  },
} as const;

export const historySchema = {
  type: 'object', required: ['samples', 'sample_count', 'source'], properties: { samples: emptyList, sample_count: int, source: str },
} as const;
export const historyJson = () => ({ samples: [], sample_count: 0, source: SOURCE });

export const uptimeHistorySchema = {
  type: 'object',
  required: ['samples', 'sleep_events', 'sample_count', 'source'],
  properties: { samples: emptyList, sleep_events: emptyList, sample_count: int, source: str },
} as const;
export const uptimeHistoryJson = () => ({ samples: [], sleep_events: [], sample_count: 0, source: SOURCE });

// ---- what the BaluHost web client needs to boot -------------------------------------------------------------------

export const setupStatusSchema = {
  type: 'object', required: ['setup_required', 'completed_steps'], properties: { setup_required: bool, completed_steps: { type: 'array', items: str } },
} as const;

export const systemModeSchema = { type: 'object', required: ['dev_mode'], properties: { dev_mode: bool } } as const;

export const versionSchema = {
  type: 'object',
  required: ['version', 'commit', 'commit_short', 'tag', 'date', 'is_dev_build', 'is_prerelease'],
  properties: { version: str, commit: str, commit_short: str, tag: nStr, date: nStr, is_dev_build: bool, is_prerelease: bool },
} as const;

export function versionJson(version: string) {
  return {
    version,
    // An installed package carries no git metadata.
    commit: 'unknown',
    commit_short: 'unknown',
    tag: null,
    date: null,
    is_dev_build: false,
    is_prerelease: version.includes('-'),
  };
}

export const presenceBodySchema = {
  type: 'object',
  required: ['client_id', 'client_type'],
  properties: {
    client_id: { type: 'string', minLength: 8, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$' },
    client_type: { type: 'string', enum: ['web', 'mobile', 'desktop'] },
  },
} as const;

export const presenceSchema = {
  type: 'object',
  required: ['present', 'enabled', 'mode', 'heartbeat_interval_seconds', 'timeout_minutes'],
  properties: { present: bool, enabled: bool, mode: str, heartbeat_interval_seconds: int, timeout_minutes: int },
} as const;

/** The Pi never suspends itself, so it tracks no presence: the heartbeat is acknowledged and nothing is kept. */
export const presenceJson = () => ({ present: true, enabled: false, mode: 'active', heartbeat_interval_seconds: 45, timeout_minutes: 0 });
