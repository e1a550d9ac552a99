// Host figures for /api/system/status and NodeService.GetStatus. They are sampled in the background every few
// seconds so a request never waits for a measurement (the Python BaluPi blocked each request for a CPU sample).
import { statfs } from 'node:fs/promises';
import { cpus, hostname, loadavg, uptime } from 'node:os';
import si from 'systeminformation';
import { BOOT, busyPercent, cpuClockMhz, cpuTemperature, cpuTimes, networkBytes } from './linux-host.ts';

export interface HostStatus {
  hostname: string;
  cpu_percent: number;
  cpu_cores: number;
  /** Current clock of the first core (cpufreq), null where the kernel does not expose it. */
  cpu_frequency_mhz: number | null;
  cpu_model: string | null;
  cpu_temp_celsius: number | null;
  memory: { total: number; used: number; free: number; available: number; percent: number };
  disk: { path: string; total: number; used: number; free: number; percent: number };
  uptime_seconds: number;
  load_avg: [number, number, number];
  /** Bytes per second over every interface but loopback since the previous sample; null until two samples exist. */
  network: { rx_bytes_per_s: number; tx_bytes_per_s: number } | null;
  sampled_at: string;
}

const round1 = (x: number) => Math.round(x * 10) / 10;

/** The figures that differ by platform (see linux-host.ts for why Linux reads them itself). */
interface Readings {
  cpuPercent: number;
  clockMhz: number | null;
  tempCelsius: number | null;
  network: HostStatus['network'];
}

export class SystemMonitor {
  readonly #dataDir: string;
  readonly #intervalMs: number;
  readonly #linux: boolean;
  #timer: NodeJS.Timeout | null = null;
  #latest: HostStatus | null = null;
  #sampling: Promise<void> | null = null;
  /** Linux: the previous sample's CPU times and network counters, for the rates between samples. */
  #cpuBefore = cpuTimes();
  #netBefore: { rx: number; tx: number; at: number } | null = null;

  constructor(opts: { dataDir: string; intervalMs: number }) {
    this.#dataDir = opts.dataDir;
    this.#intervalMs = opts.intervalMs;
    this.#linux = process.platform === 'linux';
  }

  /**
   * Takes the first sample (so the first request has data) and keeps sampling until stop(). The first sample's CPU
   * figure is the average since boot (systeminformation's first currentLoad() waits 500 ms to measure a delta, which
   * was half of the daemon's start-up time); later ones cover the time since the sample before.
   */
  async start(): Promise<void> {
    await this.#sample(true);
    this.#timer = setInterval(() => void this.#sample(), this.#intervalMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    await this.#sampling;
  }

  /** The latest sample; never waits. */
  current(): HostStatus {
    if (!this.#latest) throw new Error('SystemMonitor.current() called before start()');
    return this.#latest;
  }

  #sample(first = false): Promise<void> {
    // A slow sample (an SD card stalling statfs) must not pile up behind itself.
    this.#sampling ??= this.#measure(first).finally(() => {
      this.#sampling = null;
    });
    return this.#sampling;
  }

  async #measure(first: boolean): Promise<void> {
    const [r, mem, fs] = await Promise.all([this.#linux ? this.#linuxReadings(first) : siReadings(first), si.mem(), statfs(this.#dataDir)]);
    const diskTotal = fs.blocks * fs.bsize;
    const diskFree = fs.bavail * fs.bsize;
    const diskUsed = diskTotal - fs.bfree * fs.bsize;
    const memUsed = mem.total - mem.available;
    const avg = loadavg();
    const cores = cpus();
    this.#latest = {
      hostname: hostname(),
      cpu_percent: round1(r.cpuPercent),
      cpu_cores: cores.length,
      cpu_frequency_mhz: r.clockMhz,
      cpu_model: cores[0]?.model.trim() || null,
      cpu_temp_celsius: r.tempCelsius,
      memory: { total: mem.total, used: memUsed, free: mem.free, available: mem.available, percent: round1((memUsed / mem.total) * 100) },
      disk: { path: this.#dataDir, total: diskTotal, used: diskUsed, free: diskFree, percent: diskTotal ? round1((diskUsed / diskTotal) * 100) : 0 },
      uptime_seconds: Math.floor(uptime()),
      load_avg: [avg[0] ?? 0, avg[1] ?? 0, avg[2] ?? 0],
      network: r.network,
      sampled_at: new Date().toISOString(),
    };
  }

  async #linuxReadings(first: boolean): Promise<Readings> {
    const [clockMhz, tempCelsius, net] = await Promise.all([cpuClockMhz(), cpuTemperature(), networkBytes()]);
    const now = cpuTimes();
    const cpuPercent = busyPercent(first ? BOOT : this.#cpuBefore, now);
    this.#cpuBefore = now;
    const at = Date.now();
    const before = this.#netBefore;
    this.#netBefore = net ? { ...net, at } : null;
    const secs = before ? (at - before.at) / 1000 : 0;
    const network = net && before && secs > 0
      ? { rx_bytes_per_s: Math.round(Math.max(0, net.rx - before.rx) / secs), tx_bytes_per_s: Math.round(Math.max(0, net.tx - before.tx) / secs) }
      : null;
    return { cpuPercent, clockMhz, tempCelsius, network };
  }
}

async function siReadings(first: boolean): Promise<Readings> {
  const [load, speed, temp, net] = await Promise.all([
    first ? { currentLoad: busyPercent(BOOT, cpuTimes()) } : si.currentLoad().catch(() => null),
    si.cpuCurrentSpeed().catch(() => null),
    si.cpuTemperature().catch(() => null),
    si.networkStats('*').catch(() => null),
  ]);
  const ghz = speed?.avg;
  return {
    cpuPercent: load?.currentLoad ?? 0,
    clockMhz: typeof ghz === 'number' && ghz > 0 ? Math.round(ghz * 1000) : null,
    tempCelsius: typeof temp?.main === 'number' && Number.isFinite(temp.main) ? temp.main : null,
    network: networkRates(net),
  };
}

/** systeminformation reports per-second rates relative to its previous call (null on the first one). */
function networkRates(stats: si.Systeminformation.NetworkStatsData[] | null): HostStatus['network'] {
  const ifaces = (stats ?? []).filter((s) => s.iface !== 'lo' && typeof s.rx_sec === 'number' && typeof s.tx_sec === 'number');
  if (ifaces.length === 0) return null;
  let rx = 0;
  let tx = 0;
  for (const s of ifaces) {
    rx += Math.max(0, s.rx_sec ?? 0);
    tx += Math.max(0, s.tx_sec ?? 0);
  }
  return { rx_bytes_per_s: Math.round(rx), tx_bytes_per_s: Math.round(tx) };
}
