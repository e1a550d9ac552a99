// The daemon's Node options (src/node-flags.ts) must be given at process start, so every launcher spells them out;
// this keeps the launchers and the list in step, and checks the daemon notices a start without them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { spawn } from 'node:child_process';
import { NODE_FLAGS, missingNodeFlags } from '../src/node-flags.ts';
import { CLI, startDaemonProcess, tempDir } from './helpers/daemon-process.ts';

const read = (p: string) => fs.readFile(new URL(`../${p}`, import.meta.url), 'utf8');

test('every launcher passes the daemon its Node options: bin shebang and re-run, npm start, the systemd unit', async () => {
  const bin = await read('bin/balupi.js');
  const shebang = bin.split('\n')[0]!;
  const start = JSON.parse(await read('package.json')).scripts.start as string;
  const unit = (await read('deploy/balupi.service')).split('\n').find((l) => l.startsWith('ExecStart='))!;
  const rerun = bin.split('\n').find((l) => l.includes('spawnSync(own,'))!;
  for (const flag of NODE_FLAGS) {
    assert.ok(shebang.includes(flag), `shebang ${shebang}`);
    assert.ok(rerun.includes(flag), `re-run under the project's Node: ${rerun}`);
    assert.ok(start.includes(`node ${flag}`), `npm start: ${start}`);
    assert.ok(unit.includes(` ${flag} `), `systemd: ${unit}`);
  }
});

test('missingNodeFlags sees options on the command line or in NODE_OPTIONS', () => {
  assert.deepEqual(missingNodeFlags([], ''), [...NODE_FLAGS]);
  assert.deepEqual(missingNodeFlags([...NODE_FLAGS], ''), []);
  assert.deepEqual(missingNodeFlags([], `--enable-source-maps ${NODE_FLAGS.join(' ')}`), []);
});

test('a daemon started with its options says nothing; one started without them logs a warning naming them', async () => {
  const daemon = await startDaemonProcess();
  try {
    assert.equal(daemon.logs.some((l) => l.level === 40 && String(l.msg).startsWith('node started without')), false);
  } finally {
    await daemon.stop();
  }
  // Without them: a plain `node src/cli.ts serve`, stopped once it has said so.
  const dir = await tempDir();
  const proc = spawn(process.execPath, [CLI, 'serve'], {
    env: { PATH: process.env.PATH ?? '', BALUPI_DATA_DIR: dir.path, BALUPI_HOST: '127.0.0.1', BALUPI_PORT: '0', BALUPI_GRPC_PORT: '0', BALUPI_LOG_FORMAT: 'json', BALUPI_MDNS: 'off' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  const warning = await new Promise<Record<string, unknown>>((resolve, reject) => {
    proc.stdout!.on('data', (d) => {
      out += d;
      for (const line of out.split('\n')) {
        if (line.includes('node started without')) resolve(JSON.parse(line));
      }
    });
    proc.once('exit', (code) => reject(new Error(`exited ${code} before warning; output: ${out}`)));
  });
  proc.kill('SIGTERM');
  await new Promise((resolve) => proc.once('exit', resolve));
  await dir.remove();
  assert.equal(warning.level, 40);
  assert.deepEqual(warning.missing, [...NODE_FLAGS]);
});
