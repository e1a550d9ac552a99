import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadConfig, ConfigError, SETTINGS } from '../src/config.ts';
import { CLI, tempDir } from './helpers/daemon-process.ts';

test('defaults run out of the box', () => {
  const c = loadConfig({});
  assert.equal(c.port, 8000);
  assert.equal(c.grpcPort, 50051);
  assert.equal(c.host, '0.0.0.0');
  assert.equal(c.role, 'pi');
  assert.equal(c.dataDir, join(process.cwd(), 'data'));
  assert.equal(c.jwtSecret, null);
});

test('environment beats YAML beats defaults', async () => {
  const dir = await tempDir();
  try {
    const file = join(dir.path, 'balupi.yaml');
    await writeFile(file, 'port: 9000\ngrpc_port: 9001\nrole: hub\ncache_max_bytes: 2G\n');
    const c = loadConfig({ BALUPI_PORT: '9100' }, file);
    assert.equal(c.port, 9100);
    assert.equal(c.grpcPort, 9001);
    assert.equal(c.role, 'hub');
    assert.equal(c.cacheMaxBytes, 2 * 2 ** 30);
    assert.equal(loadConfig({ BALUPI_CONFIG: file }).grpcPort, 9001, 'BALUPI_CONFIG names the file too');
  } finally {
    await dir.remove();
  }
});

test('invalid values name the setting and the value', async () => {
  const dir = await tempDir();
  try {
    const cases: [Record<string, string>, string | undefined, RegExp][] = [
      [{ BALUPI_PORT: 'abc' }, undefined, /BALUPI_PORT="abc".*port number/],
      [{ BALUPI_GRPC_PORT: '70000' }, undefined, /BALUPI_GRPC_PORT="70000"/],
      [{ BALUPI_ROLE: 'nas' }, undefined, /BALUPI_ROLE="nas".*one of: pi, hub/],
      [{ BALUPI_LOG_LEVEL: 'loud' }, undefined, /BALUPI_LOG_LEVEL="loud"/],
      [{ BALUPI_CACHE_MAX_BYTES: 'lots' }, undefined, /BALUPI_CACHE_MAX_BYTES="lots"/],
      [{}, join(dir.path, 'missing.yaml'), /cannot read config file .*missing\.yaml: ENOENT/],
    ];
    await writeFile(join(dir.path, 'bad.yaml'), 'port: [1, 2\n');
    cases.push([{}, join(dir.path, 'bad.yaml'), /bad\.yaml is not valid YAML/]);
    await writeFile(join(dir.path, 'unknown.yaml'), 'prot: 8000\n');
    cases.push([{}, join(dir.path, 'unknown.yaml'), /unknown setting "prot"/]);
    await writeFile(join(dir.path, 'typo.yaml'), 'port: eighty\n');
    cases.push([{}, join(dir.path, 'typo.yaml'), /invalid port in .*typo\.yaml="eighty"/]);
    for (const [env, file, expected] of cases) {
      assert.throws(() => loadConfig(env, file), (err: Error) => err instanceof ConfigError && expected.test(err.message), `${JSON.stringify(env)} ${file ?? ''}`);
    }
  } finally {
    await dir.remove();
  }
});

test('the CLI stops on a bad setting with one clear line and no stack trace', () => {
  for (const [env, expected] of [
    [{ BALUPI_PORT: 'abc' }, /^balupi: invalid BALUPI_PORT="abc": must be a port number from 0 to 65535\n$/],
    [{ BALUPI_ROLE: 'nas' }, /^balupi: invalid BALUPI_ROLE="nas": must be one of: pi, hub\n$/],
    [{ BALUPI_CONFIG: '/nonexistent/balupi.yaml' }, /^balupi: cannot read config file \/nonexistent\/balupi.yaml: ENOENT\n$/],
  ] as const) {
    const r = spawnSync(process.execPath, [CLI, 'serve'], { env: { PATH: process.env.PATH, ...env }, encoding: 'utf8' });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, expected);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  }
});

test('every setting is documented in the README table', async () => {
  const { readFile } = await import('node:fs/promises');
  const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8');
  for (const s of Object.values(SETTINGS)) {
    assert.match(readme, new RegExp(`\\| \`${s.env}\` \\|`), `${s.env} missing from README`);
  }
});
