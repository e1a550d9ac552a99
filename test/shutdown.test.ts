// SIGTERM with a request in flight: the daemon stops accepting connections, lets the request finish, closes its
// LevelDB and exits 0 — all within 10 s.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { connect } from 'node:net';
import { startDaemonProcess } from './helpers/daemon-process.ts';

const refused = (port: number) =>
  new Promise<string>((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve('connected');
    });
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
  });

test('SIGTERM finishes the request in flight, refuses new connections, exits 0', async () => {
  const daemon = await startDaemonProcess({ env: { BALUPI_LOG_LEVEL: 'debug' } });
  try {
    // A Connect unary call whose body arrives in two parts: the server has accepted it and is waiting for the rest.
    const req = request({
      host: '127.0.0.1',
      port: daemon.ports.http,
      method: 'POST',
      path: '/balupi.node.v1.NodeService/GetStatus',
      headers: { 'content-type': 'application/json', 'content-length': '2' },
    });
    const response = new Promise<{ status: number; body: string }>((resolve, reject) => {
      req.on('response', (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode!, body }));
      });
      req.on('error', (err) => reject(new Error(`${err.message}; daemon stderr: ${daemon.stderr()}`)));
    });
    req.write('{');
    // The signal must come after the server has the request: it logs "request received" (debug) on the headers.
    await daemon.waitForLog((l) => l.msg === 'request received' && l.url === '/balupi.node.v1.NodeService/GetStatus');
    const started = Date.now();
    daemon.proc.kill('SIGTERM');
    await daemon.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('shutting down'));
    // Poll (bounded) until the listeners are gone: close() is asynchronous inside the daemon, and a connection
    // attempt racing it may be accepted or reset before the port refuses outright.
    let http = '';
    let grpc = '';
    for (let i = 0; i < 500 && (http !== 'ECONNREFUSED' || grpc !== 'ECONNREFUSED'); i++) {
      [http, grpc] = await Promise.all([refused(daemon.ports.http), refused(daemon.ports.grpc)]);
    }
    assert.equal(http, 'ECONNREFUSED', 'REST/Connect port stops accepting');
    assert.equal(grpc, 'ECONNREFUSED', 'gRPC port stops accepting');
    assert.equal(daemon.proc.exitCode, null, 'still running while a request is in flight');
    req.end('}');
    const res = await response;
    assert.equal(res.status, 200);
    assert.equal(JSON.parse(res.body).service, 'balupi');
    const exit = await daemon.exited;
    assert.deepEqual(exit, { code: 0, signal: null });
    assert.ok(Date.now() - started < 10_000, 'stopped within 10 s');
    assert.ok(daemon.logs.some((l) => l.msg === 'stopped'), 'LevelDB and services closed before exit');
  } finally {
    await daemon.stop();
  }
});

test('an unhandled rejection (a defect) is logged, the daemon closes in order and exits 1 for systemd to restart it', async () => {
  const daemon = await startDaemonProcess({ execArgv: ['--import', new URL('./helpers/defect-on-signal.ts', import.meta.url).pathname] });
  try {
    daemon.proc.kill('SIGUSR2');
    const exit = await daemon.exited;
    assert.deepEqual(exit, { code: 1, signal: null }, `stderr: ${daemon.stderr()}`);
    const fatal = daemon.logs.find((l) => l.level === 60);
    assert.ok(fatal, 'a fatal log line');
    assert.match(String(fatal.msg), /unexpected error/);
    assert.match(String((fatal.err as { message?: string } | undefined)?.message), /injected defect/);
    assert.ok(daemon.logs.findIndex((l) => l.msg === 'stopped') > daemon.logs.indexOf(fatal), 'the orderly close ran to its end after the error');
  } finally {
    await daemon.stop(); // removes its data directory (left in the temp folder by every test run before)
  }
});
