// Concurrent edits on a hub and a pi (the hub was down while both sides changed the same files) must leave exactly
// one conflict copy, the same on both sides, named the Syncthing way after the peer whose version lost; the older
// modification loses, a modification beats a deletion, and both peers record the conflict.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { blake, cli, hubFiles, local, piFiles, piIngest, piStat, piStatus, startHub, startPi, tempDir, waitFor, type DaemonProcess } from './peers.ts';

let dir: Awaited<ReturnType<typeof tempDir>> | undefined;
const running: DaemonProcess[] = [];
after(async () => {
  for (const p of running) await p.stop();
  await dir?.remove();
});

test('concurrent edits make exactly one conflict copy on both sides; modify beats delete', async () => {
  dir = await tempDir('balupi-conflict-');
  const root = path.join(dir.path, 'root');
  const hubData = path.join(dir.path, 'hub');
  await fs.mkdir(path.join(root, 'c'), { recursive: true });
  for (const name of ['newer-on-pi.txt', 'newer-on-hub.txt', 'deleted-on-pi.txt']) await fs.writeFile(path.join(root, 'c', name), `base of ${name}`);
  let hub = await startHub({ root, dataDir: hubData });
  running.push(hub);
  const pi = await startPi({ hubGrpcPort: hub.ports.grpc, dataDir: path.join(dir.path, 'pi'), env: { BALUPI_SYNC_RETRY_MAX_S: '0.5' } });
  running.push(pi);
  await waitFor('the base versions on the pi', async () => (await piFiles(pi.dataDir)).length === 3);
  const hubPeer = JSON.parse((await cli(hubData, ['status', '--json'])).stdout).peerId as string;
  const piPeer = (await piStatus(pi.dataDir)).peerId as string;

  // The NAS goes to sleep; both sides edit the same files meanwhile.
  await hub.stop();
  running.splice(running.indexOf(hub), 1);
  const now = Date.now();
  const hubEdit = async (name: string, text: string, mtime: number) => {
    const f = path.join(root, 'c', name);
    await fs.writeFile(f, text);
    await fs.utimes(f, mtime / 1000, mtime / 1000);
  };
  await hubEdit('newer-on-pi.txt', 'hub edit (older)', now - 60_000);
  await hubEdit('newer-on-hub.txt', 'hub edit (newer)', now);
  await hubEdit('deleted-on-pi.txt', 'hub edit of a file the pi deletes', now);
  await piIngest(pi.dataDir, 'c/newer-on-pi.txt', Buffer.from('pi edit (newer)'), now);
  await piIngest(pi.dataDir, 'c/newer-on-hub.txt', Buffer.from('pi edit (older)'), now - 60_000);
  assert.equal((await local(pi.dataDir, 'POST', '/local/store/rm?name=c/deleted-on-pi.txt')).status, 200);

  hub = await startHub({ root, dataDir: hubData, grpcPort: hub.ports.grpc });
  running.push(hub);
  const conflictRe = (stem: string, peer: string) => new RegExp(`^c/${stem}\\.sync-conflict-\\d{8}-\\d{6}-${peer}\\.txt$`);
  const settled = async () => {
    const s = await piStatus(pi.dataDir);
    return s.hub.caughtUp && s.queue.pending + s.queue.uploading + s.queue.failed === 0 && s.hub.cursor === s.hub.hub.maxSequence;
  };
  await waitFor('both conflict copies in the hub root and on the pi', async () => {
    const h = (await hubFiles(root)).filter((f) => f.includes('sync-conflict'));
    const p = (await piFiles(pi.dataDir)).filter((f) => f.includes('sync-conflict'));
    return h.length >= 2 && p.length >= 2 && (await settled());
  }).catch(async (err) => {
    console.log(await hubFiles(root), await piFiles(pi.dataDir), JSON.stringify(await piStatus(pi.dataDir)));
    console.log(pi.logs.filter((l) => l.msg !== 'request').map((l) => JSON.stringify(l)).join('\n'));
    console.log(hub.logs.filter((l) => l.msg !== 'request').map((l) => JSON.stringify(l)).join('\n'));
    throw err;
  });

  const hubList = await hubFiles(root);
  const piList = await piFiles(pi.dataDir);
  assert.deepEqual(piList, hubList, 'both sides hold the same names');
  const copies = hubList.filter((f) => f.includes('sync-conflict'));
  assert.equal(copies.length, 2, `exactly one copy per conflicting file: ${copies.join(', ')}`);
  const hubLost = copies.find((f) => conflictRe('newer-on-pi', hubPeer).test(f));
  const piLost = copies.find((f) => conflictRe('newer-on-hub', piPeer).test(f));
  assert.ok(hubLost, `the hub's older version kept under the hub's id: ${copies}`);
  assert.ok(piLost, `the pi's older version kept under the pi's id: ${copies}`);

  const read = (f: string) => fs.readFile(path.join(root, f), 'utf8');
  assert.equal(await read('c/newer-on-pi.txt'), 'pi edit (newer)');
  assert.equal(await read(hubLost), 'hub edit (older)');
  assert.equal(await read('c/newer-on-hub.txt'), 'hub edit (newer)');
  assert.equal(await read(piLost), 'pi edit (older)');
  assert.equal(await read('c/deleted-on-pi.txt'), 'hub edit of a file the pi deletes', 'modify beats delete');
  for (const f of hubList) assert.equal((await piStat(pi.dataDir, f))?.hash, await blake(Buffer.from(await read(f))), `${f}: same content on both sides`);

  for (const data of [hubData, pi.dataDir]) {
    const r = await cli(data, ['conflicts', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const list = JSON.parse(r.stdout) as { path: string; copy: string | null; reason: string }[];
    assert.deepEqual(list.map((c) => c.path).sort(), ['c/deleted-on-pi.txt', 'c/newer-on-hub.txt', 'c/newer-on-pi.txt'], `${data}: conflicts recorded`);
    assert.equal(list.find((c) => c.path === 'c/deleted-on-pi.txt')?.reason, 'modified_vs_deleted');
    assert.equal(list.find((c) => c.path === 'c/deleted-on-pi.txt')?.copy, null, 'a losing deletion leaves nothing to keep');
  }
});
