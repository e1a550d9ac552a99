// The rsync baseline of bench/sync.ts: an rsync daemon on 127.0.0.1 (generated rsyncd.conf, one module per folder),
// and timing a client run. Needs rsync (apt-get install -y rsync).
import fs from 'node:fs/promises';
import path from 'node:path';
import os from 'node:os';
import net from 'node:net';
import { spawn, type ChildProcess } from 'node:child_process';

/** A free TCP port on 127.0.0.1 (free when asked; the caller binds it soon after). */
export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** Polls `cond` every 100 ms until it holds; throws after `timeoutMs`. */
export async function until(cond: () => Promise<boolean>, timeoutMs = 600_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error('benchmark step timed out');
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Runs a program to its end; its wall time and stdout (stderr passes through). */
export function run(cmd: string, args: string[]): Promise<{ ms: number; stdout: string }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.on('exit', (code) => (code === 0 ? resolve({ ms: performance.now() - t0, stdout }) : reject(new Error(`${cmd} exited ${code}`))));
  });
}

/**
 * An rsync daemon on 127.0.0.1 serving `modules` (name → folder; `readOnly` for the ones only read from), its config,
 * pid and log files in `dir`. Resolves once it accepts connections; `url(module)` is the module's rsync:// address.
 */
export async function startRsyncd(dir: string, modules: Record<string, { path: string; readOnly: boolean }>): Promise<{ proc: ChildProcess; url: (module: string) => string }> {
  const port = await freePort();
  const { uid, gid } = os.userInfo();
  const conf = path.join(dir, 'rsyncd.conf');
  await fs.writeFile(
    conf,
    [
      `port = ${port}`,
      'address = 127.0.0.1',
      'use chroot = no',
      `pid file = ${path.join(dir, 'rsyncd.pid')}`,
      `log file = ${path.join(dir, 'rsyncd.log')}`,
      ...Object.entries(modules).map(([name, m]) => `[${name}]\n  path = ${m.path}\n  read only = ${m.readOnly}\n  uid = ${uid}\n  gid = ${gid}`),
      '',
    ].join('\n'),
  );
  const proc = spawn('rsync', ['--daemon', '--no-detach', `--config=${conf}`], { stdio: 'inherit' });
  await until(
    () =>
      new Promise<boolean>((r) => {
        const sock = net.connect(port, '127.0.0.1');
        sock.on('connect', () => (sock.destroy(), r(true))).on('error', () => r(false));
      }),
  );
  return { proc, url: (module) => `rsync://127.0.0.1:${port}/${module}` };
}
