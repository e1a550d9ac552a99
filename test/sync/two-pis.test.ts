// Two pis on one hub, each a real process: what one pushes reaches the other through the hub (bytes too, where the
// other pins them), a rename on one costs the other no download, and the same file edited on both makes exactly one
// conflict copy, the same on all three peers (the older modification loses, named after the pi that made it).

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { cli, fetchedBytes, hubFiles, local, piCat, piFiles, piIngest, piIngestFile, piStat, piStatus, startHub, startPi, tempDir, waitFor, writeRandomFile, type DaemonProcess } from './peers.ts';

const MiB = 1024 * 1024;
let dir: Awaited<ReturnType<typeof tempDir>> | undefined;
const running: DaemonProcess[] = [];
after(async () => {
  for (const p of running) await p.stop();
  await dir?.remove();
});


test('two pis on one hub: a push reaches the other pi, a rename downloads nothing again, a file edited on both makes one conflict copy everywhere', async () => {
  dir = await tempDir('balupi-two-pis-');
  const root = path.join(dir.path, 'root');
  await fs.mkdir(root);
  const hub = await startHub({ root, dataDir: path.join(dir.path, 'hub') });
  running.push(hub);
  const p1 = await startPi({ hubGrpcPort: hub.ports.grpc, dataDir: path.join(dir.path, 'p1') });
  running.push(p1);
  const p2 = await startPi({ hubGrpcPort: hub.ports.grpc, dataDir: path.join(dir.path, 'p2') });
  running.push(p2);
  const pinned = await cli(p2.dataDir, ['pin', '/']);
  assert.equal(pinned.code, 0, pinned.stderr);

  const video = path.join(dir.path, 'video.bin');
  await writeRandomFile(video, 12 * MiB);
  const bytes = await fs.readFile(video);
  await piIngestFile(p1.dataDir, 'v/a.mp4', video);
  await waitFor('v/a.mp4 with its bytes on the second pi', async () => (await piStat(p2.dataDir, 'v/a.mp4'))?.state === 'local');
  assert.ok((await piCat(p2.dataDir, 'v/a.mp4')).equals(bytes));
  const fetched = fetchedBytes(p2);
  assert.equal(fetched, 12 * MiB);

  // Renamed on the first pi: the second has the bytes already.
  await piIngestFile(p1.dataDir, 'v/b.mp4', video);
  assert.equal((await local(p1.dataDir, 'POST', '/local/store/rm?name=v/a.mp4')).status, 200);
  await waitFor('the rename on the second pi', async () => {
    const files = await piFiles(p2.dataDir);
    return files.includes('v/b.mp4') && !files.includes('v/a.mp4') && (await piStat(p2.dataDir, 'v/b.mp4'))?.state === 'local';
  });
  assert.ok((await piCat(p2.dataDir, 'v/b.mp4')).equals(bytes));
  assert.equal(fetchedBytes(p2), fetched, 'nothing was downloaded again');

  // The same file edited on both pis; the second pi's edit is the newer one and wins.
  const now = Date.now();
  await Promise.all([piIngest(p1.dataDir, 'd/c.txt', Buffer.from('from the first pi'), now), piIngest(p2.dataDir, 'd/c.txt', Buffer.from('from the second pi, later'), now + 5000)]);
  const p1Peer = (await piStatus(p1.dataDir)).peerId as string;
  const names = async () => [(await piFiles(p1.dataDir)).filter((f) => f.startsWith('d/')), (await piFiles(p2.dataDir)).filter((f) => f.startsWith('d/')), (await hubFiles(root)).filter((f) => f.startsWith('d/'))].map((l) => l.sort());
  await waitFor('one conflict copy on all three', async () => {
    const [a, b, h] = await names();
    return a!.length === 2 && JSON.stringify(a) === JSON.stringify(b) && JSON.stringify(a) === JSON.stringify(h);
  });
  const [files] = await names();
  const copy = files!.find((f) => f !== 'd/c.txt')!;
  assert.match(copy, new RegExp(`^d/c\\.sync-conflict-\\d{8}-\\d{6}-${p1Peer}\\.txt$`), 'the copy is named after the pi whose version lost');
  await waitFor('the winning version everywhere', async () => (await fs.readFile(path.join(root, 'd', 'c.txt'), 'utf8')) === 'from the second pi, later' && (await piCat(p1.dataDir, 'd/c.txt').catch(() => Buffer.alloc(0))).toString() === 'from the second pi, later');
  assert.equal(await fs.readFile(path.join(root, copy), 'utf8'), 'from the first pi');
  assert.equal((await piCat(p2.dataDir, 'd/c.txt')).toString(), 'from the second pi, later');
  // The hub's feed carried the first pi's version to the second while its own push was on its way; applied after
  // the hub's answer, that older record replaced the second pi's file (its bytes dropped, fetched back later).
  assert.equal((await piStat(p2.dataDir, 'd/c.txt')).version, 1, 'the second pi\'s own file was never replaced');
  await waitFor('the copy\'s bytes on the second pi (it pins everything)', async () => (await piStat(p2.dataDir, copy))?.state === 'local');
  assert.equal(fetchedBytes(p2), fetched + 'from the first pi'.length, 'the second pi fetched the copy, not its own file again');
});
