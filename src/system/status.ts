// Host figures for /api/system/status and NodeService.GetStatus. They are sampled in the background every few
// seconds so a request never waits for a measurement (the Python BaluPi blocked each request for a CPU sample).
import { statfs } from 'node:fs/promises';
import { cpus, hostname, loadavg, uptime } from 'node:os';
import si from 'systeminformation';

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

export class SystemMonitor {
  readonly #dataDir: string;
  readonly #intervalMs: number;
  #timer: NodeJS.Timeout | null = null;
  #latest: HostStatus | null = null;
  #sampling: Promise<void> | null = null;

  constructor(opts: { dataDir: string; intervalMs: number }) {
    this.#dataDir = opts.dataDir;
    this.#intervalMs = opts.intervalMs;
  }

  /**
   * Takes the first sample (so the first request has data) and keeps sampling until stop(). The first sample's CPU
   * figure is the average since boot: systeminformation's first currentLoad() waits 500 ms to measure a delta, which
   * was half of the daemon's start-up time. Later samples come from currentLoad() in the background (the first of
   * them measures over those 500 ms, every other one the interval since the sample before).
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
    const [load, speed, temp, mem, fs, net] = await Promise.all([
      first ? { currentLoad: loadSinceBoot() } : si.currentLoad().catch(() => null),
      si.cpuCurrentSpeed().catch(() => null),
      si.cpuTemperature().catch(() => null),
      si.mem(),
      statfs(this.#dataDir),
      si.networkStats('*').catch(() => null),
    ]);
    const diskTotal = fs.blocks * fs.bsize;
    const diskFree = fs.bavail * fs.bsize;
    const diskUsed = diskTotal - fs.bfree * fs.bsize;
    const memUsed = mem.total - mem.available;
    const avg = loadavg();
    const cores = cpus();
    const ghz = speed?.avg;
    this.#latest = {
      hostname: hostname(),
      cpu_percent: round1(load?.currentLoad ?? 0),
      cpu_cores: cores.length,
      cpu_frequency_mhz: typeof ghz === 'number' && ghz > 0 ? Math.round(ghz * 1000) : null,
      cpu_model: cores[0]?.model.trim() || null,
      cpu_temp_celsius: typeof temp?.main === 'number' && Number.isFinite(temp.main) ? temp.main : null,
      memory: { total: mem.total, used: memUsed, free: mem.free, available: mem.available, percent: round1((memUsed / mem.total) * 100) },
      disk: { path: this.#dataDir, total: diskTotal, used: diskUsed, free: diskFree, percent: diskTotal ? round1((diskUsed / diskTotal) * 100) : 0 },
      uptime_seconds: Math.floor(uptime()),
      load_avg: [avg[0] ?? 0, avg[1] ?? 0, avg[2] ?? 0],
      network: networkRates(net),
      sampled_at: new Date().toISOString(),
    };
  }
}

/** Busy share of all cores since boot, in percent (from the kernel's per-core times, as os.cpus() reports them). */
function loadSinceBoot(): number {
  let busy = 0;
  let total = 0;
  for (const c of cpus()) {
    const t = c.times;
    busy += t.user + t.nice + t.sys + t.irq;
    total += t.user + t.nice + t.sys + t.irq + t.idle;
  }
  return total > 0 ? (busy / total) * 100 : 0;
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
