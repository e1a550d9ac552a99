// The balupi command itself, as users run it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TokenVerifier } from '../src/auth/tokens.ts';
import { CLI, tempDir } from './helpers/daemon-process.ts';

const run = (args: string[], env: Record<string, string> = {}) =>
  spawnSync(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH, ...env }, encoding: 'utf8' });

test('`balupi token` prints a token the daemon accepts, for the secret it generated and kept', async () => {
  const dir = await tempDir();
  try {
    const r = run(['--data-dir', dir.path, 'token', '--user', 'bob', '--id', '42', '--user-role', 'user', '--ttl', '1h']);
    assert.equal(r.status, 0, r.stderr);
    const secrets = JSON.parse(await readFile(join(dir.path, 'secrets.json'), 'utf8'));
    const user = await new TokenVerifier(secrets.jwt_secret).verifyAccess(r.stdout.trim());
    assert.deepEqual(user, { id: 42, username: 'bob', role: 'user' });
    const again = run(['token', '--user', 'bob'], { BALUPI_DATA_DIR: dir.path });
    assert.deepEqual(JSON.parse(await readFile(join(dir.path, 'secrets.json'), 'utf8')), secrets, 'the secret is generated once');
    assert.equal((await new TokenVerifier(secrets.jwt_secret).verifyAccess(again.stdout.trim())).username, 'bob');
  } finally {
    await dir.remove();
  }
});

test('`balupi token` with BALUPI_JWT_SECRET signs with BaluHost\'s key', async () => {
  const dir = await tempDir();
  try {
    const r = run(['token', '--user', 'carol'], { BALUPI_DATA_DIR: dir.path, BALUPI_JWT_SECRET: 'baluhost-secret-key' });
    assert.equal((await new TokenVerifier('baluhost-secret-key').verifyAccess(r.stdout.trim())).username, 'carol');
  } finally {
    await dir.remove();
  }
});

test('wrong invocations get one line and exit 2', () => {
  for (const [args, expected] of [
    [['token'], /^balupi: token needs --user NAME\n$/],
    [['token', '--user', 'x', '--ttl', 'soon'], /--ttl: "soon" is not a duration/],
    [['token', '--user', 'x', '--id', 'abc'], /--id must be a numeric user id/],
    [['token', '--user', 'x', '--bogus'], /Unknown option '--bogus'/],
    [['frobnicate'], /unknown command "frobnicate"/],
    [['--data-dir'], /--data-dir needs a value/],
  ] as const) {
    const r = run([...args], { BALUPI_DATA_DIR: '/nonexistent-balupi' });
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, expected);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  }
  const help = run(['--help']);
  assert.equal(help.status, 0);
  assert.match(help.stdout, /serve .*\n.*token/s);
  for (const flag of ['version', '--version', '-V']) {
    const v = run([flag]);
    assert.equal(v.status, 0, `${flag}: ${v.stderr}`);
    assert.match(v.stdout, /^balupi \d+\.\d+\.\d+\n$/, flag);
  }
});
