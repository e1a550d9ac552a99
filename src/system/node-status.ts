// What this node is and how its host is doing: one value served by REST (/api/system/status) and RPC
// (NodeService.GetStatus) alike.
import type { Config } from '../config.ts';
import { VERSION } from '../version.ts';
import type { HostStatus, SystemMonitor } from './status.ts';

export interface NodeStatus extends HostStatus {
  service: 'balupi';
  version: string;
  role: Config['role'];
  /** Same value as cpu_temp_celsius: the BaluHost web client's Pi dashboard reads this name. */
  temperature_c: number | null;
  /** The BaluHost web client's Pi dashboard reads memory under these names (and calls toFixed on the percent). */
  memory_percent: number;
  memory_used_mb: number;
  memory_total_mb: number;
  process: { uptime_seconds: number; rss_bytes: number };
}

export class NodeStatusService {
  readonly #monitor: SystemMonitor;
  readonly #role: Config['role'];
  constructor(monitor: SystemMonitor, role: Config['role']) {
    this.#monitor = monitor;
    this.#role = role;
  }

  get role(): Config['role'] {
    return this.#role;
  }

  status(): NodeStatus {
    const host = this.#monitor.current();
    return {
      service: 'balupi',
      version: VERSION,
      role: this.#role,
      ...host,
      temperature_c: host.cpu_temp_celsius,
      memory_percent: host.memory.percent,
      memory_used_mb: Math.round(host.memory.used / 2 ** 20),
      memory_total_mb: Math.round(host.memory.total / 2 ** 20),
      process: { uptime_seconds: Math.floor(process.uptime()), rss_bytes: process.memoryUsage.rss() },
    };
  }
}
