// BALUPI_HUB_IGNORE with two real processes: a hub whose root holds what BaluHost keeps beside its users' files (its
// upload temp folder, a trash) and a pi that mirrors everything. Ignored paths never reach the pi, whichever way they
// appear in the root; a pi's file at an ignored path is refused for good and stays on the pi; rules changed between
// starts drop what they now ignore from the pis and bring back what they no longer ignore, and the root's files stay.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { cli, hubFiles, local, piFiles, piIngest, piStat, piStatus, startHub, startPi, tempDir, waitFor, type DaemonProcess } from './peers.ts';

const RULES = '.tmp,.Trash-*,*.part,admin/Downloads';
let dir: Awaited<ReturnType<typeof tempDir>>;
let hub: DaemonProcess;
let pi: DaemonProcess;
let root: string;
let hubData: string;

const put = async (rel: string, data: string | Buffer) => {
  await fs.mkdir(path.dirname(path.join(root, rel)), { recursive: true });
  await fs.writeFile(path.join(root, rel), data);
};
const hubEnv = (rules: string) => ({ BALUPI_HUB_IGNORE: rules, BALUPI_HUB_RESCAN_S: '0.2', BALUPI_LOG_LEVEL: 'debug' });
/** Resolves once a rescan that began after this call has read the whole root (every file not ignored). */
const rescanned = async () => {
  const count = () => hub.logs.filter((l) => l.msg === 'hub root rescanned').length;
  const before = count();
  await waitFor('a whole rescan of the hub root', async () => count() >= before + 2);
};

before(async () => {
  dir = await tempDir('balupi-ignore-');
  root = path.join(dir.path, 'root');
  hubData = path.join(dir.path, 'hub');
  await put('Shared/a.txt', 'a file everyone syncs');
  await put('Shared/b.txt', 'another one');
  await put('.tmp/upload-17/part-0', 'half an upload');
  await put('.Trash-1000/files/old.txt', 'thrown away');
  await put('Shared/movie.mkv.part', 'a download in progress');
  await put('admin/Downloads/x.iso', 'kept on the NAS only');
  await put('admin/notes.txt', 'synced: only admin/Downloads is left out');
  hub = await startHub({ root, dataDir: hubData, env: hubEnv(RULES) });
  pi = await startPi({ hubGrpcPort: hub.ports.grpc, dataDir: path.join(dir.path, 'pi') });
  assert.equal((await cli(pi.dataDir, ['pin', '/'])).code, 0);
});

after(async () => {
  await pi?.stop();
  await hub?.stop();
  await dir?.remove();
});

test('ignored files in the root at the first start, and written while the hub runs, never reach the pi', async () => {
  const synced = ['Shared/a.txt', 'Shared/b.txt', 'admin/notes.txt'];
  assert.deepEqual(await waitFor('the synced files on the pi', async () => ((await piFiles(pi.dataDir)).length === 3 ? piFiles(pi.dataDir) : null)), synced);
  await put('.tmp/upload-18/part-0', 'another upload, live');
  await put('Shared/c.iso.part', 'another download');
  await put('admin/Downloads/sub/y.iso', 'deeper below an ignored folder');
  await put('Shared/live.txt', 'written while the hub runs');
  await rescanned();
  await waitFor('Shared/live.txt on the pi', () => piStat(pi.dataDir, 'Shared/live.txt'));
  assert.deepEqual(await piFiles(pi.dataDir), [...synced, 'Shared/live.txt'].sort());
  for (const p of ['.tmp/upload-18/part-0', 'Shared/c.iso.part', 'admin/Downloads/sub/y.iso', '.Trash-1000/files/old.txt']) {
    assert.equal(await piStat(hub.dataDir, p), null, `${p} is not in the hub's index`);
  }
  const status = await cli(hub.dataDir, ['status']);
  assert.match(status.stdout, /left out: \.tmp, \.Trash-\*, \*\.part, admin\/Downloads/);
  assert.deepEqual(JSON.parse((await cli(hub.dataDir, ['status', '--json'])).stdout).root.ignore, [...RULES.split(','), '/.balupi-versions']);
});

test('a file moved into the trash leaves the pis; its file stays in the trash on the NAS', async () => {
  await waitFor('Shared/b.txt on the pi', async () => (await piStat(pi.dataDir, 'Shared/b.txt'))?.state === 'local');
  await fs.mkdir(path.join(root, '.Trash-1000', 'files'), { recursive: true });
  await fs.rename(path.join(root, 'Shared', 'b.txt'), path.join(root, '.Trash-1000', 'files', 'b.txt'));
  await waitFor('Shared/b.txt gone from the pi', async () => !(await piFiles(pi.dataDir)).includes('Shared/b.txt'));
  assert.equal(await fs.readFile(path.join(root, '.Trash-1000', 'files', 'b.txt'), 'utf8'), 'another one');
  assert.ok(!(await piFiles(pi.dataDir)).some((p) => p.startsWith('.Trash-')));
});

test('a pi\'s new file at an ignored path fails for good, unsent, and stays on the pi; the rest of its push lands', async () => {
  const hubLogsBefore = hub.logs.length;
  const big = randomBytes(9 * 1024 * 1024); // its own upload with places, and a Commit of its own
  await piIngest(pi.dataDir, '.tmp/mine.bin', Buffer.from('small, inline in a CommitBatch'));
  await piIngest(pi.dataDir, 'admin/Downloads/big.iso', big);
  await piIngest(pi.dataDir, 'Shared/from-pi.txt', Buffer.from('lands in the root'));
  await waitFor('Shared/from-pi.txt in the hub root', async () => (await fs.readFile(path.join(root, 'Shared', 'from-pi.txt'), 'utf8').catch(() => '')) === 'lands in the root');
  const status = await waitFor('two failed uploads', async () => {
    const s = await piStatus(pi.dataDir);
    return s.queue.failed === 2 ? s : null;
  });
  const failed = Object.fromEntries(status.failedUploads.map((f: any) => [f.path, f]));
  for (const p of ['.tmp/mine.bin', 'admin/Downloads/big.iso']) {
    assert.match(failed[p]?.lastError ?? '', /leaves this path out of the sync/, `${p} failed with the reason`);
    assert.equal(failed[p].nextAttemptAt, null, `${p} is not retried`);
    assert.equal((await piStat(pi.dataDir, p))?.state, 'local', `${p} stays on the pi with its bytes`);
  }
  const inRoot = await hubFiles(root);
  assert.ok(!inRoot.includes(path.join('.tmp', 'mine.bin')));
  assert.deepEqual(await fs.readdir(path.join(root, 'admin', 'Downloads')), ['sub', 'x.iso'], 'no staging file was written beside the ignored path');
  const stored = (await local(hub.dataDir, 'GET', '/local/store/stats')).json().storedBytes;
  assert.ok(stored < 4 * 1024 * 1024, `big.iso was not uploaded: the hub stores ${stored} bytes in chunk files, not its 9 MiB`);
  // Unsent: the pi knew the hub's patterns from Hello (no chunk of big.iso, each at least 256 KiB, reached the hub).
  const notPushed = pi.logs.filter((l) => l.msg === 'sync: not pushed, the hub leaves these paths out of the sync').flatMap((l) => l.paths as string[]);
  assert.deepEqual(notPushed.sort(), ['.tmp/mine.bin', 'admin/Downloads/big.iso']);
  assert.ok(!hub.logs.slice(hubLogsBefore).some((l) => l.msg === 'chunks received' && Number(l.bytes) >= 256 * 1024), 'no chunk of big.iso was sent');
});

test('rules changed between starts: newly ignored files leave the pi, files no longer ignored come back; the root keeps all', async () => {
  await hub.stop();
  hub = await startHub({ root, dataDir: hubData, grpcPort: hub.ports.grpc, env: hubEnv(`${RULES},Shared`) });
  await waitFor('Shared/ gone from the pi', async () => !(await piFiles(pi.dataDir)).some((p) => p.startsWith('Shared/')));
  assert.ok(hub.logs.some((l) => /no longer synced/.test(String(l.msg)) && l.files === 3), 'the three synced files under Shared/ were dropped');
  assert.equal(await fs.readFile(path.join(root, 'Shared', 'a.txt'), 'utf8'), 'a file everyone syncs', 'the root keeps them');

  await hub.stop();
  hub = await startHub({ root, dataDir: hubData, grpcPort: hub.ports.grpc, env: hubEnv('.tmp,.Trash-*') });
  await waitFor('Shared/a.txt back on the pi, with its bytes', async () => (await piStat(pi.dataDir, 'Shared/a.txt'))?.state === 'local');
  const back = await waitFor('admin/Downloads on the pi', async () => {
    const files = await piFiles(pi.dataDir);
    return files.includes('admin/Downloads/x.iso') && files.includes('Shared/movie.mkv.part') ? files : null;
  });
  assert.ok(back.includes('admin/Downloads/sub/y.iso'));
  // The pi's big.iso, refused for good while admin/Downloads was left out, is tried again and arrives.
  await waitFor('big.iso from the pi in the root', async () => (await fs.stat(path.join(root, 'admin', 'Downloads', 'big.iso')).catch(() => null))?.size === 9 * 1024 * 1024);
  const failed = (await piStatus(pi.dataDir)).failedUploads.map((f: any) => f.path);
  assert.deepEqual(failed, ['.tmp/mine.bin'], 'what is still left out stays failed');
  assert.ok(!back.some((p) => p.startsWith('.tmp/') && p !== '.tmp/mine.bin'), 'the pi\'s own .tmp/mine.bin is all there is of .tmp');
});
