// Two real processes on loopback: a hub with a root folder and a pi. Creating, modifying, deleting and renaming a
// file on either side must reach the other side (hub -> pi as metadata, and bytes for pinned files; pi -> hub as
// files in the root folder with their mtime).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { blake, cli, fetchedBytes, hubFiles, local, piCat, piFiles, piIngest, piStat, sha, startHub, startPi, tempDir, waitFor, type DaemonProcess } from './peers.ts';

let dir: Awaited<ReturnType<typeof tempDir>>;
let hub: DaemonProcess;
let pi: DaemonProcess;
let root: string;

before(async () => {
  dir = await tempDir('balupi-sync-');
  root = path.join(dir.path, 'root');
  await fs.mkdir(root);
  await fs.writeFile(path.join(root, 'existing.txt'), 'was here before the hub started');
  hub = await startHub({ root, dataDir: path.join(dir.path, 'hub') });
  pi = await startPi({ hubGrpcPort: hub.ports.grpc, dataDir: path.join(dir.path, 'pi') });
});

after(async () => {
  await pi?.stop();
  await hub?.stop();
  await dir?.remove();
});

const piHash = async (name: string) => (await piStat(pi.dataDir, name))?.hash;

test('the hub ingests its root at first start and the pi pulls the whole index without bytes', async () => {
  const rec = await waitFor('existing.txt on the pi', () => piStat(pi.dataDir, 'existing.txt'));
  assert.equal(rec.hash, await blake(Buffer.from('was here before the hub started')));
  assert.equal(rec.sha256, sha(Buffer.from('was here before the hub started')), 'the SHA-256 the hub took at ingest came with the record');
  assert.equal(rec.state, 'remote', 'metadata only: bytes are fetched for pinned or hot files');
  const cat = await local(pi.dataDir, 'GET', '/local/store/cat?name=existing.txt');
  assert.equal(cat.status, 409, 'no bytes on the pi yet');
  const hubStats = (await local(hub.dataDir, 'GET', '/local/store/stats')).json();
  assert.equal(hubStats.localFiles, 1);
  assert.equal(hubStats.storedBytes, 0, 'the hub reads its root file where it is, without a second copy');
});

test('create, modify, rename and delete in the hub root reach the pi (pinned files get their bytes)', async () => {
  const file = path.join(root, 'h', 'new.txt');
  await fs.mkdir(path.dirname(file));
  await fs.writeFile(file, 'first version');
  const v1 = await blake(Buffer.from('first version'));
  await waitFor('h/new.txt v1 on the pi', async () => (await piHash('h/new.txt')) === v1);

  const pinned = await cli(pi.dataDir, ['pin', 'h/new.txt']);
  assert.equal(pinned.code, 0, pinned.stderr);
  await waitFor('bytes of the pinned file', async () => (await piStat(pi.dataDir, 'h/new.txt'))?.state === 'local');
  assert.equal((await local(pi.dataDir, 'GET', '/local/store/cat?name=h/new.txt')).body.toString(), 'first version');

  await fs.writeFile(file, 'second version, longer');
  const v2 = await blake(Buffer.from('second version, longer'));
  await waitFor('h/new.txt v2 on the pi, local because pinned', async () => {
    const s = await piStat(pi.dataDir, 'h/new.txt');
    return s?.hash === v2 && s.state === 'local';
  });
  assert.equal((await local(pi.dataDir, 'GET', '/local/store/cat?name=h/new.txt')).body.toString(), 'second version, longer');

  await fs.rename(file, path.join(root, 'h', 'renamed.txt'));
  await waitFor('the rename on the pi', async () => {
    const files = await piFiles(pi.dataDir);
    return files.includes('h/renamed.txt') && !files.includes('h/new.txt');
  });
  assert.equal(await piHash('h/renamed.txt'), v2);

  await fs.rm(path.join(root, 'h', 'renamed.txt'));
  await waitFor('the deletion on the pi', async () => !(await piFiles(pi.dataDir)).includes('h/renamed.txt'));
});

test('a folder renamed in the hub root: the pi keeps the bytes it had and downloads nothing again', async () => {
  const album = path.join(root, 'album');
  await fs.mkdir(album);
  const photos = Array.from({ length: 12 }, (_, i) => randomBytes(i === 0 ? 3 * 1024 * 1024 : 200_000));
  for (const [i, data] of photos.entries()) await fs.writeFile(path.join(album, `p${i}.jpg`), data);
  await waitFor('the album on the pi', async () => (await piFiles(pi.dataDir)).filter((f) => f.startsWith('album/')).length === photos.length);
  const pinned = await cli(pi.dataDir, ['pin', 'album']);
  assert.equal(pinned.code, 0, pinned.stderr);
  const allLocal = async (dir: string) => {
    const out: string[] = [];
    for (const i of photos.keys()) if ((await piStat(pi.dataDir, `${dir}/p${i}.jpg`))?.state === 'local') out.push(`${dir}/p${i}.jpg`);
    return out.length === photos.length;
  };
  await waitFor('the album\'s bytes on the pi', () => allLocal('album'));
  const before = fetchedBytes(pi);

  await fs.rename(album, path.join(root, 'album 2'));
  await waitFor('the renamed album on the pi, with its bytes', async () => !(await piFiles(pi.dataDir)).some((f) => f.startsWith('album/')) && (await allLocal('album 2')));
  assert.equal(fetchedBytes(pi), before, 'no byte was downloaded again');
  assert.ok((await piCat(pi.dataDir, 'album 2/p0.jpg')).equals(photos[0]!));
});

test('create, modify, rename and delete on the pi reach the hub root with their mtime', async () => {
  const mtime = Date.parse('2024-05-06T07:08:09.000Z');
  const doc = path.join(root, 'p', 'doc.txt');
  await piIngest(pi.dataDir, 'p/doc.txt', Buffer.from('written on the pi'), mtime);
  await waitFor('p/doc.txt in the hub root', async () => (await fs.readFile(doc, 'utf8').catch(() => '')) === 'written on the pi');
  assert.equal((await fs.stat(doc)).mtimeMs, mtime, 'the hub writes the file with the mtime it had on the pi');
  const onHub = await piStat(hub.dataDir, 'p/doc.txt');
  assert.equal(onHub.sha256, sha(Buffer.from('written on the pi')), 'the SHA-256 the pi took at ingest reached the hub\'s record');

  const payload = randomBytes(3 * 1024 * 1024);
  await piIngest(pi.dataDir, 'p/doc.txt', payload, mtime + 1000);
  await waitFor('the modification in the hub root', async () => (await fs.readFile(doc).catch(() => Buffer.alloc(0))).equals(payload));
  assert.equal((await fs.stat(doc)).mtimeMs, mtime + 1000);
  // Once in the root, the pushed bytes are kept there only: the chunk files they arrived in go.
  await waitFor('no chunk files left in the hub store', async () => (await local(hub.dataDir, 'GET', '/local/store/stats')).json().storedBytes === 0);

  const uploadsBefore = hub.logs.filter((l) => l.msg === 'chunks received').length;
  // A rename on the pi is a new name with the same bytes plus a deletion: no chunk needs sending again.
  await piIngest(pi.dataDir, 'p/renamed.bin', payload, mtime + 1000);
  assert.equal((await local(pi.dataDir, 'POST', '/local/store/rm?name=p/doc.txt')).status, 200);
  await waitFor('the rename in the hub root', async () => {
    const files = await hubFiles(root);
    return files.includes('p/renamed.bin') && !files.includes('p/doc.txt');
  });
  assert.ok((await fs.readFile(path.join(root, 'p', 'renamed.bin'))).equals(payload));
  assert.equal(hub.logs.filter((l) => l.msg === 'chunks received').length, uploadsBefore, 'the renamed file\'s chunks were already on the hub');

  assert.equal((await local(pi.dataDir, 'POST', '/local/store/rm?name=p/renamed.bin')).status, 200);
  await waitFor('the deletion in the hub root', async () => !(await hubFiles(root)).includes('p/renamed.bin'));
  assert.deepEqual((await hubFiles(root)).filter((f) => f.includes('sync-conflict')), [], 'no conflicts on the way');
});

test('balupi status and sync --once report and run against a running daemon', async () => {
  const status = await cli(pi.dataDir, ['status', '--json']);
  assert.equal(status.code, 0, status.stderr);
  const s = JSON.parse(status.stdout);
  assert.equal(s.via, 'daemon');
  assert.equal(s.hub.connection, 'connected');
  assert.equal(s.hub.caughtUp, true);
  assert.equal(s.queue.pending + s.queue.uploading + s.queue.failed, 0);
  assert.ok(s.queue.synced >= 4, `uploads counted: ${s.queue.synced}`);
  const once = await cli(pi.dataDir, ['sync', '--once', '--json']);
  assert.equal(once.code, 0, once.stderr);
  const r = JSON.parse(once.stdout);
  assert.equal(r.failed, 0);
  assert.equal(r.cursor, s.hub.hub.maxSequence);
  // The hub: nothing waits for bytes, so no peer is left to ask.
  const h = JSON.parse((await cli(hub.dataDir, ['status', '--json'])).stdout);
  assert.equal(h.root.awaitingBytes, 0);
  assert.deepEqual(h.root.awaitingPeers, []);
});

test('balupi forget-peer: a hub forgets a known pi (known again once it says Hello), says so for an unknown id, and a pi refuses it', async () => {
  const unknown = await cli(hub.dataDir, ['forget-peer', 'NOPE234']);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stdout, /no peer NOPE234 known here/);
  const piId = JSON.parse((await cli(pi.dataDir, ['status', '--json'])).stdout).peerId as string;
  const forgot = await cli(hub.dataDir, ['forget-peer', piId, '--json']);
  assert.equal(forgot.code, 0, forgot.stderr);
  assert.deepEqual(JSON.parse(forgot.stdout), { forgotten: true, dropped: 0 });
  assert.equal((await cli(hub.dataDir, ['forget-peer', piId])).code, 1, 'forgotten: not known any more');
  assert.equal((await cli(pi.dataDir, ['sync', '--once'])).code, 0); // a session: Hello first
  assert.equal((await cli(hub.dataDir, ['forget-peer', piId])).code, 0, 'known again after its Hello');
  const onPi = await cli(pi.dataDir, ['forget-peer', 'ABCDEFG']);
  assert.equal(onPi.code, 1);
  assert.match(onPi.stderr, /runs on a hub/);
  assert.equal((await cli(hub.dataDir, ['forget-peer'])).code, 2, 'usage');
});
