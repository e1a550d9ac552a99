// Sign-in in a real `balupi serve` process: `balupi user add` then a standalone login (CLI on the data directory,
// and through the daemon's socket while it runs); and with BALUPI_NAS_URL pointing at the BaluHost stand-in,
// a forwarded login, then refresh and /auth/me answered by the Pi once the stand-in is down.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { CLI, startDaemonProcess, tempDir } from '../helpers/daemon-process.ts';
import { BaluHostEmulator } from '../emulators/baluhost.ts';

function cli(args: string[], env: Record<string, string>, stdin = ''): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('exit', (code) => resolve({ code, stdout, stderr }));
    p.stdin.end(stdin);
  });
}

const postJson = (url: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });

test('balupi user add, then login at a standalone daemon; user list and add through the running daemon', async () => {
  const data = await tempDir();
  const env = { BALUPI_DATA_DIR: data.path };
  try {
    const weak = await cli(['user', 'add', 'lena', '--password-stdin'], env, 'short\n');
    assert.equal(weak.code, 2);
    assert.match(weak.stderr, /password must be 8 to 128 characters/);
    const added = await cli(['user', 'add', 'lena', '--admin', '--password-stdin'], env, 'Lena-pass-1\n');
    assert.equal(added.code, 0, added.stderr);
    assert.match(added.stdout, /added admin "lena" \(id 1000001\)/);
    const dup = await cli(['user', 'add', 'lena', '--password-stdin'], env, 'Lena-pass-2\n');
    assert.equal(dup.code, 1);
    assert.match(dup.stderr, /exists already/);

    const d = await startDaemonProcess({ dataDir: data.path, env: { BALUPI_JWT_SECRET: 'standalone-secret-standalone-secret!' } });
    try {
      const base = `http://127.0.0.1:${d.ports.http}`;
      const res = await postJson(`${base}/api/auth/login`, { username: 'lena', password: 'Lena-pass-1' });
      assert.equal(res.status, 200);
      const body = (await res.json()) as any;
      assert.equal(body.user.username, 'lena');
      const me = await fetch(`${base}/api/auth/me`, { headers: { authorization: `Bearer ${body.access_token}` } });
      assert.deepEqual(await me.json(), body.user);
      assert.equal((await postJson(`${base}/api/auth/login`, { username: 'lena', password: 'nope' })).status, 401);

      // The daemon holds the database: the CLI goes through its socket.
      const second = await cli(['user', 'add', 'max', '--password-stdin'], env, 'Max-pass-12\n');
      assert.equal(second.code, 0, second.stderr);
      assert.match(second.stdout, /through the running daemon/);
      assert.equal((await postJson(`${base}/api/auth/login`, { username: 'max', password: 'Max-pass-12' })).status, 200);
      const list = await cli(['user', 'list', '--json'], env);
      assert.deepEqual(JSON.parse(list.stdout).users.map((u: { username: string; role: string }) => `${u.username}:${u.role}`), ['lena:admin', 'max:user']);
      const rm = await cli(['user', 'rm', 'max'], env);
      assert.equal(rm.code, 0, rm.stderr);
      assert.equal((await postJson(`${base}/api/auth/login`, { username: 'max', password: 'Max-pass-12' })).status, 401);
    } finally {
      await d.stop();
    }
  } finally {
    await data.remove();
  }
});

test('a real daemon in front of the stand-in: forwarded login, then refresh and /auth/me while the stand-in is down', async () => {
  const secret = 'shared-baluhost-secret-key-of-32-chars';
  const emu = await BaluHostEmulator.start({ secret });
  const d = await startDaemonProcess({ env: { BALUPI_JWT_SECRET: secret, BALUPI_NAS_URL: emu.url, BALUPI_NAS_POLL_INTERVAL_S: '1', BALUPI_NAS_FAST_POLL_INTERVAL_S: '1' } });
  try {
    const base = `http://127.0.0.1:${d.ports.http}`;
    await d.waitForLog((l) => l.msg === 'NAS is online');
    const user = emu.accounts.addUser({ username: 'nora', password: 'Nora-pass-1', email: 'nora@example.org' });
    const login = await postJson(`${base}/api/auth/login`, { username: 'nora', password: 'Nora-pass-1' });
    assert.equal(login.status, 200);
    assert.equal(emu.received.at(-1)!.path, '/api/auth/login');
    const refreshToken = emu.accounts.refreshToken(user);

    await emu.goDown();
    const refreshed = await postJson(`${base}/api/auth/refresh`, { refresh_token: refreshToken });
    assert.equal(refreshed.status, 200);
    const body = (await refreshed.json()) as any;
    assert.deepEqual(body.user, emu.accounts.userPublic(user));
    const me = await fetch(`${base}/api/auth/me`, { headers: { authorization: `Bearer ${body.access_token}`, 'content-type': 'application/json' } });
    assert.equal(me.status, 200);
    assert.deepEqual(await me.json(), emu.accounts.userPublic(user));
    await d.waitForLog((l) => typeof l.msg === 'string' && /^NAS is (offline|standby|unknown)/.test(l.msg));
    const offlineLogin = await postJson(`${base}/api/auth/login`, { username: 'nora', password: 'Nora-pass-1' });
    assert.equal(offlineLogin.status, 200);
  } finally {
    await d.stop();
    await emu.close();
  }
});
