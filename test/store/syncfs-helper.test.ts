// syncfs through the long-lived helper shell (store/syncfs-helper.js): a `sync` ahead of the real one on PATH logs
// each call with its parent's pid, so the tests see that one helper serves every flush of this process, that sync's
// failure comes back with its code (and the helper goes on serving), and that a helper killed while a flush is due
// still leaves that flush done (run once more as its own process) and the next one served.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import fsSync from 'node:fs';
import path from 'node:path';
import { syncFileSystem } from '../../store/syncfs.ts';
import { tempDir } from '../helpers/daemon-process.ts';

const real = ['/usr/bin/sync', '/bin/sync'].find((p) => fsSync.existsSync(p));
const bin = await tempDir('balupi-syncfs-bin-');
const log = path.join(bin.path, 'calls');
const killMarker = path.join(bin.path, 'kill-parent');
// Dirs named */full fail as coreutils does on a full disk. With the marker present, the call kills its parent (the
// helper shell) and waits to be killed with it, as a helper dying mid-request would.
await fs.writeFile(
  path.join(bin.path, 'sync'),
  `#!/bin/sh
echo "$PPID $*" >> '${log}'
case "$3" in */full) echo "sync: error syncing '$3': No space left on device" >&2; exit 1;; esac
if [ -e '${killMarker}' ]; then rm -f '${killMarker}'; kill -9 $PPID; exit 1; fi
exec ${real} "$@"
`,
  { mode: 0o755 },
);
process.env.PATH = `${bin.path}:${process.env.PATH ?? ''}`;
const calls = async () => (await fs.readFile(log, 'utf8')).trim().split('\n').map((l) => l.split(' '));

test.after(() => bin.remove());

test('one helper process runs every flush: 30 at once, each `sync -f -- DIR` once, all answered', async () => {
  assert.ok(real, 'coreutils sync is installed');
  const dir = await tempDir('balupi-syncfs-');
  try {
    await Promise.all(Array.from({ length: 30 }, () => syncFileSystem(dir.path)));
    const made = await calls();
    assert.equal(made.length, 30);
    for (const c of made) assert.deepEqual(c.slice(1), ['-f', '--', dir.path]);
    assert.equal(new Set(made.map((c) => c[0])).size, 1, 'one parent: the helper');
    assert.notEqual(made[0]![0], String(process.pid), 'not forked from this process');
  } finally {
    await dir.remove();
  }
});

test('a failed flush (a full disk) rejects with ENOSPC and sync\'s message; the helper goes on serving', async () => {
  await assert.rejects(syncFileSystem('/somewhere/full'), (err: NodeJS.ErrnoException) => err.code === 'ENOSPC' && /No space left on device/.test(err.message));
  const dir = await tempDir('balupi-syncfs-');
  try {
    await syncFileSystem(dir.path);
  } finally {
    await dir.remove();
  }
});

test('a helper killed while a flush is due: that flush still runs (as its own process), and a new helper serves the next', async () => {
  const dir = await tempDir('balupi-syncfs-');
  try {
    const before = (await calls()).length;
    await fs.writeFile(killMarker, '');
    await syncFileSystem(dir.path);
    const after = (await calls()).slice(before);
    assert.equal(after.length, 2, 'the call that killed the helper, then the same flush again');
    assert.equal(after[1]![0], String(process.pid), 'run again from this process itself');
    await syncFileSystem(dir.path);
    const next = (await calls()).at(-1)!;
    assert.notEqual(next[0], String(process.pid), 'a helper again');
    assert.notEqual(next[0], after[0]![0], 'a new one');
  } finally {
    await dir.remove();
  }
});
