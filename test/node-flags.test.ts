// The daemon's Node options (src/node-flags.ts) must be given at process start, so every launcher spells them out;
// this keeps the launchers and the list in step, and checks the daemon notices a start without them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { NODE_FLAGS, missingNodeFlags } from '../src/node-flags.ts';
import { startDaemonProcess, type DaemonProcess } from './helpers/daemon-process.ts';

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
  const warning = (d: DaemonProcess) => d.logs.find((l) => String(l.msg).startsWith('node started without'));
  const withFlags = await startDaemonProcess();
  try {
    assert.equal(warning(withFlags), undefined);
  } finally {
    await withFlags.stop();
  }
  // Without them, like a plain `node src/cli.ts serve` (the warning comes before the daemon listens).
  const without = await startDaemonProcess({ nodeFlags: [] });
  try {
    const w = warning(without);
    assert.ok(w, 'a warning');
    assert.equal(w.level, 40);
    assert.deepEqual(w.missing, [...NODE_FLAGS]);
  } finally {
    await without.stop();
  }
});
