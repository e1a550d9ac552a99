// Host figures read straight from procfs and sysfs, for Linux (the Pi). systeminformation starts a shell for several
// of them (`cat /proc/stat`, `cat /sys/class/thermal/...`, `ip route`, one `cat` per interface counter), some through
// execSync: every 5-second sample forked the daemon several times and blocked its event loop while the children ran,
// on a machine where memory and the main thread are what sync needs most. Off Linux, status.ts keeps using
// systeminformation.

import { readFile, readdir } from 'node:fs/promises';
import { cpus } from 'node:os';
import path from 'node:path';

/** Where the files live; tests point this at a fixture tree. */
export interface LinuxPaths {
  thermal: string;
  cpufreq: string;
  netDev: string;
}

export const LINUX_PATHS: LinuxPaths = {
  thermal: '/sys/class/thermal',
  cpufreq: '/sys/devices/system/cpu/cpu0/cpufreq/scaling_cur_freq',
  netDev: '/proc/net/dev',
};

/** Busy and total CPU time over all cores since boot (ms), from the kernel's per-core times. */
export function cpuTimes(): { busy: number; total: number } {
  let busy = 0;
  let total = 0;
  for (const c of cpus()) {
    const t = c.times;
    busy += t.user + t.nice + t.sys + t.irq;
    total += t.user + t.nice + t.sys + t.irq + t.idle;
  }
  return { busy, total };
}

/** cpuTimes() as it was at boot: busyPercent(BOOT, cpuTimes()) is the average since boot. */
export const BOOT: Readonly<{ busy: number; total: number }> = Object.freeze({ busy: 0, total: 0 });

/** Busy share in percent between two cpuTimes() readings (0 when no time passed). */
export function busyPercent(before: { busy: number; total: number }, after: { busy: number; total: number }): number {
  const total = after.total - before.total;
  return total > 0 ? Math.min(100, Math.max(0, ((after.busy - before.busy) / total) * 100)) : 0;
}

/**
 * The CPU's temperature in °C: the thermal zone whose type names the CPU or SoC (the Pi's is "cpu-thermal"), else the
 * first zone; null without thermal zones (containers, many VMs).
 */
export async function cpuTemperature(paths: LinuxPaths = LINUX_PATHS): Promise<number | null> {
  const zones = (await readdir(paths.thermal).catch(() => [] as string[])).filter((z) => z.startsWith('thermal_zone')).sort();
  const read: { type: string; milli: number }[] = [];
  for (const z of zones) {
    const [type, temp] = await Promise.all([
      readFile(path.join(paths.thermal, z, 'type'), 'utf8').catch(() => ''),
      readFile(path.join(paths.thermal, z, 'temp'), 'utf8').catch(() => ''),
    ]);
    const milli = Number.parseInt(temp, 10);
    if (Number.isFinite(milli)) read.push({ type: type.trim(), milli });
  }
  const zone = read.find((z) => /cpu|soc|x86_pkg/i.test(z.type)) ?? read[0];
  return zone ? Math.round(zone.milli / 100) / 10 : null;
}

/** The first core's current clock in MHz (cpufreq), else what the kernel reports per core; null if unknown. */
export async function cpuClockMhz(paths: LinuxPaths = LINUX_PATHS): Promise<number | null> {
  const khz = Number.parseInt(await readFile(paths.cpufreq, 'utf8').catch(() => ''), 10);
  if (Number.isFinite(khz) && khz > 0) return Math.round(khz / 1000);
  const speed = cpus()[0]?.speed ?? 0;
  return speed > 0 ? speed : null;
}

/** Received and sent bytes per interface, from the text of /proc/net/dev. */
export function parseNetDev(text: string): { iface: string; rx: number; tx: number }[] {
  const out: { iface: string; rx: number; tx: number }[] = [];
  for (const line of text.split('\n').slice(2)) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const f = line.slice(colon + 1).trim().split(/\s+/).map(Number);
    // receive: bytes packets errs drop fifo frame compressed multicast; transmit: bytes ...
    if (f.length >= 9 && Number.isFinite(f[0]) && Number.isFinite(f[8])) out.push({ iface: line.slice(0, colon).trim(), rx: f[0]!, tx: f[8]! });
  }
  return out;
}

/** Bytes received and sent so far over every interface but loopback; null if /proc/net/dev cannot be read. */
export async function networkBytes(paths: LinuxPaths = LINUX_PATHS): Promise<{ rx: number; tx: number } | null> {
  const text = await readFile(paths.netDev, 'utf8').catch(() => null);
  if (text === null) return null;
  let rx = 0;
  let tx = 0;
  for (const i of parseNetDev(text)) {
    if (i.iface === 'lo') continue;
    rx += i.rx;
    tx += i.tx;
  }
  return { rx, tx };
}
