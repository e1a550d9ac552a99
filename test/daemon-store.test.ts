// The store commands against a data directory a running daemon holds: they go through the daemon's local API on
// <dataDir>/balupi.sock, and the user sees the same results as without the daemon.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes, createHash } from 'node:crypto';
import { writeFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { CLI, startDaemonProcess, tempDir } from './helpers/daemon-process.ts';

function run(args: string[], dataDir: string): Promise<{ code: number | null; stdout: Buffer; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [CLI, '--data-dir', dataDir, ...args], { env: { PATH: process.env.PATH ?? '' } });
    const out: Buffer[] = [];
    let err = '';
    p.stdout.on('data', (d: Buffer) => out.push(d));
    p.stderr.on('data', (d) => (err += d));
    p.on('close', (code) => resolve({ code, stdout: Buffer.concat(out), stderr: err }));
  });
}

test('ingest, ls, cat, stats and rm work through a running daemon', async () => {
  const files = await tempDir();
  const daemon = await startDaemonProcess();
  try {
    const bytes = randomBytes(3 * 1024 * 1024 + 17);
    const src = join(files.path, 'photo.jpg');
    await writeFile(src, bytes);
    const ingest = await run(['ingest', src, '--as', 'Photos/photo.jpg', '--json'], daemon.dataDir);
    assert.equal(ingest.code, 0, ingest.stderr);
    const result = JSON.parse(ingest.stdout.toString());
    const entry = Array.isArray(result) ? result[0] : (result.files?.[0] ?? result);
    assert.equal(entry.size, bytes.length);
    assert.ok(daemon.logs.some((l) => l.api === 'local' && l.url?.toString().startsWith('/local/store/ingest')), 'went through the daemon');

    const ls = await run(['ls', 'Photos', '--json'], daemon.dataDir);
    assert.equal(ls.code, 0, ls.stderr);
    assert.match(ls.stdout.toString(), /photo\.jpg/);

    const cat = await run(['cat', 'Photos/photo.jpg'], daemon.dataDir);
    assert.equal(cat.code, 0, cat.stderr);
    assert.equal(createHash('sha256').update(cat.stdout).digest('hex'), createHash('sha256').update(bytes).digest('hex'));

    const stats = await run(['stats', '--json'], daemon.dataDir);
    assert.equal(JSON.parse(stats.stdout.toString()).files, 1);

    const bad = await run(['cat', '../etc/passwd'], daemon.dataDir);
    assert.notEqual(bad.code, 0, 'a traversal name is refused through the daemon too');
    assert.doesNotMatch(bad.stderr, /\n\s+at /);

    assert.equal((await run(['rm', 'Photos/photo.jpg'], daemon.dataDir)).code, 0);
    const gone = await run(['cat', 'Photos/photo.jpg'], daemon.dataDir);
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /not found|no such/i);
    assert.equal((await stat(join(daemon.dataDir, 'balupi.sock'))).mode & 0o777, 0o600, 'socket is private to the daemon user');
  } finally {
    await daemon.stop();
    await files.remove();
  }
});
