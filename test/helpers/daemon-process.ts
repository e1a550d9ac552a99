// Starts `balupi` as a real child process (the same entry point users run) and waits for it to report its ports.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { NODE_FLAGS } from '../../src/node-flags.ts';

export const CLI = new URL('../../src/cli.ts', import.meta.url).pathname;

export interface DaemonProcess {
  proc: ChildProcess;
  dataDir: string;
  ports: { http: number; grpc: number };
  /** Parsed JSON log lines so far. */
  logs: Record<string, unknown>[];
  /** Everything the process wrote to stderr so far. */
  stderr(): string;
  /** Resolves with the first log line matching `pred` (already seen or still to come). */
  waitForLog(pred: (line: Record<string, unknown>) => boolean): Promise<Record<string, unknown>>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stop(): Promise<void>;
}

export async function tempDir(prefix = 'balupi-test-'): Promise<{ path: string; remove: () => Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

export async function startDaemonProcess(
  opts: {
    env?: Record<string, string>;
    args?: string[];
    dataDir?: string;
    /** Node options before the script (e.g. --import), after `nodeFlags`. */
    execArgv?: string[];
    /** The daemon's own Node options (default: src/node-flags.ts, as every launcher passes them). */
    nodeFlags?: readonly string[];
  } = {},
): Promise<DaemonProcess> {
  const dataDir = opts.dataDir ?? (await mkdtemp(join(tmpdir(), 'balupi-daemon-')));
  const proc = spawn(process.execPath, [...(opts.nodeFlags ?? NODE_FLAGS), ...(opts.execArgv ?? []), CLI, ...(opts.args ?? []), 'serve'], {
    env: {
      PATH: process.env.PATH ?? '',
      BALUPI_DATA_DIR: dataDir,
      BALUPI_HOST: '127.0.0.1',
      BALUPI_PORT: '0',
      BALUPI_GRPC_PORT: '0',
      BALUPI_LOG_FORMAT: 'json',
      // mDNS would announce on every real interface: test daemons keep it off unless a test points it at loopback.
      BALUPI_MDNS: 'off',
      ...opts.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Record<string, unknown>[] = [];
  const waiters: { pred: (l: Record<string, unknown>) => boolean; resolve: (l: Record<string, unknown>) => void }[] = [];
  let stderr = '';
  proc.stderr!.on('data', (d) => (stderr += d));
  createInterface({ input: proc.stdout! }).on('line', (text) => {
    let line: Record<string, unknown>;
    try {
      line = JSON.parse(text);
    } catch {
      line = { msg: text };
    }
    logs.push(line);
    for (const w of [...waiters]) {
      if (w.pred(line)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(line);
      }
    }
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const waitForLog = (pred: (l: Record<string, unknown>) => boolean) => {
    const seen = logs.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise<Record<string, unknown>>((resolve, reject) => {
      waiters.push({ pred, resolve });
      void exited.then(({ code, signal }) => reject(new Error(`daemon exited (${code ?? signal}) before the expected log line; stderr: ${stderr}`)));
    });
  };
  const ready = await waitForLog((l) => l.msg === 'balupi listening');
  return {
    proc,
    dataDir,
    ports: { http: ready.http as number, grpc: ready.grpc as number },
    logs,
    stderr: () => stderr,
    waitForLog,
    exited,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      await exited;
      if (!opts.dataDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}
