// Host figures on Linux come from procfs/sysfs without starting processes (systeminformation forked a shell several
// times per sample, some of it with execSync, which blocked the event loop). Parsers run against fixture trees laid
// out like a Raspberry Pi's; the monitor itself runs against this machine's real files.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import cp from 'node:child_process';
import { BOOT, busyPercent, cpuClockMhz, cpuTemperature, networkBytes, parseNetDev, type LinuxPaths } from '../../src/system/linux-host.ts';
import { SystemMonitor } from '../../src/system/status.ts';
import { tempDir } from '../helpers/daemon-process.ts';

const PI_NET_DEV = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:  912345    1200    0    0    0     0          0         0   912345    1200    0    0    0     0       0          0
  eth0: 1234567890 987654    0    3    0     0          0      1234 98765432  123456    0    0    0     0       0          0
 wlan0:     100       2    0    0    0     0          0         0      200       3    0    0    0     0       0          0
`;

async function fixture(dir: string, zones: { type: string; temp: string }[], khz?: string): Promise<LinuxPaths> {
  const paths: LinuxPaths = { thermal: path.join(dir, 'thermal'), cpufreq: path.join(dir, 'scaling_cur_freq'), netDev: path.join(dir, 'net-dev') };
  await fs.mkdir(paths.thermal, { recursive: true });
  for (const [i, z] of zones.entries()) {
    const zd = path.join(paths.thermal, `thermal_zone${i}`);
    await fs.mkdir(zd);
    await fs.writeFile(path.join(zd, 'type'), `${z.type}\n`);
    await fs.writeFile(path.join(zd, 'temp'), `${z.temp}\n`);
  }
  await fs.writeFile(path.join(paths.thermal, 'cooling_device0'), ''); // not a zone: ignored
  if (khz !== undefined) await fs.writeFile(paths.cpufreq, `${khz}\n`);
  await fs.writeFile(paths.netDev, PI_NET_DEV);
  return paths;
}

test('/proc/net/dev: bytes per interface; the total leaves out loopback', async () => {
  assert.deepEqual(parseNetDev(PI_NET_DEV), [
    { iface: 'lo', rx: 912345, tx: 912345 },
    { iface: 'eth0', rx: 1234567890, tx: 98765432 },
    { iface: 'wlan0', rx: 100, tx: 200 },
  ]);
  assert.deepEqual(parseNetDev('garbage\n\nno colon here\n'), []);
  const dir = await tempDir('balupi-host-');
  try {
    const paths = await fixture(dir.path, []);
    assert.deepEqual(await networkBytes(paths), { rx: 1234567890 + 100, tx: 98765432 + 200 });
    assert.equal(await networkBytes({ ...paths, netDev: path.join(dir.path, 'missing') }), null);
  } finally {
    await dir.remove();
  }
});

test('temperature: the CPU/SoC zone wins over others (the Pi: cpu-thermal), else the first zone, else null; clock from cpufreq in MHz', async () => {
  const dir = await tempDir('balupi-host-');
  try {
    const pi = await fixture(path.join(dir.path, 'pi'), [{ type: 'battery', temp: '30000' }, { type: 'cpu-thermal', temp: '48312' }], '1400000');
    assert.equal(await cpuTemperature(pi), 48.3);
    assert.equal(await cpuClockMhz(pi), 1400);
    const other = await fixture(path.join(dir.path, 'other'), [{ type: 'acpitz', temp: '27800' }, { type: 'bogus', temp: 'n/a' }]);
    assert.equal(await cpuTemperature(other), 27.8);
    const clock = await cpuClockMhz(other); // no cpufreq file: the kernel's per-core figure, or null
    assert.ok(clock === null || (Number.isInteger(clock) && clock > 0), String(clock));
    const none = await fixture(path.join(dir.path, 'none'), []);
    assert.equal(await cpuTemperature(none), null);
  } finally {
    await dir.remove();
  }
});

test('busy share between two readings stays within 0-100 and is 0 when no time passed', () => {
  assert.equal(busyPercent({ busy: 100, total: 1000 }, { busy: 150, total: 1100 }), 50);
  assert.equal(busyPercent({ busy: 100, total: 1000 }, { busy: 100, total: 1000 }), 0);
  assert.equal(busyPercent(BOOT, { busy: 300, total: 200 }), 100);
});

test('the monitor samples this Linux host without starting a single process', { skip: process.platform !== 'linux' && 'Linux only' }, async () => {
  const names = ['exec', 'execSync', 'execFile', 'execFileSync', 'spawn', 'spawnSync', 'fork'] as const;
  const started: string[] = [];
  const mod = cp as unknown as Record<string, (...a: unknown[]) => unknown>;
  const originals = new Map(names.map((n) => [n, mod[n]!]));
  for (const n of names) mod[n] = (...a: unknown[]) => (started.push(`${n} ${String(a[0])}`), originals.get(n)!(...a));
  const dir = await tempDir('balupi-host-');
  const monitor = new SystemMonitor({ dataDir: dir.path, intervalMs: 20 });
  try {
    await monitor.start();
    const first = monitor.current();
    assert.equal(first.network, null, 'no rate before a second sample');
    const deadline = Date.now() + 10_000;
    while (monitor.current().sampled_at === first.sampled_at && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    const second = monitor.current();
    assert.notEqual(second.sampled_at, first.sampled_at, 'a second sample was taken');
    assert.deepEqual(started, [], 'no child process was started');
    for (const s of [first, second]) {
      assert.ok(s.cpu_percent >= 0 && s.cpu_percent <= 100, String(s.cpu_percent));
      assert.ok(s.cpu_frequency_mhz === null || s.cpu_frequency_mhz > 0);
      assert.ok(s.cpu_temp_celsius === null || (s.cpu_temp_celsius > -50 && s.cpu_temp_celsius < 150));
      assert.ok(s.memory.total > 0 && s.disk.total > 0);
    }
    assert.ok(second.network === null || (second.network.rx_bytes_per_s >= 0 && second.network.tx_bytes_per_s >= 0));
  } finally {
    await monitor.stop();
    for (const n of names) mod[n] = originals.get(n)!;
    await dir.remove();
  }
});
