// Interrupted transfers resume without re-sending what the other side acknowledged: the pi killed with SIGKILL at
// about half of a 200 MB upload, the hub killed and restarted in the middle of an upload, and the hub killed and
// restarted while the pi downloads a pinned file. Both sends are rate-limited (BALUPI_SYNC_MAX_SEND_RATE) so that
// "about half" can be hit reliably.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { createSyncClient } from '../../src/sync/client.ts';
import { hashToBytes } from '../../src/sync/wire.ts';
import { SECRET, blake, fileSha, hubFiles, local, piCat, piIngest, piIngestFile, piStat, startHub, startPi, tempDir, waitFor, writeRandomFile, type DaemonProcess } from './peers.ts';
import { randomBytes } from 'node:crypto';

const MiB = 1024 * 1024;
let dir: Awaited<ReturnType<typeof tempDir>> | undefined;
const running = new Set<DaemonProcess>();
after(async () => {
  for (const p of running) await p.stop();
  await dir?.remove();
});

const start = async <T extends DaemonProcess>(p: Promise<T>): Promise<T> => {
  const d = await p;
  running.add(d);
  return d;
};
/** Daemons killed by a test: their logs are printed too when it fails. */
const killed: DaemonProcess[] = [];
const kill9 = async (p: DaemonProcess) => {
  p.proc.kill('SIGKILL');
  await p.exited;
  running.delete(p);
  killed.push(p);
};

/** How many of `hashes` the hub holds, asked over the protocol (MissingChunks) with the generated client. */
async function presentOnHub(grpcPort: number, hashes: string[]): Promise<number> {
  const client = createSyncClient({ baseUrl: `http://127.0.0.1:${grpcPort}`, peerSecret: SECRET });
  const res = await client.missingChunks({ hashes: hashes.map(hashToBytes) });
  return hashes.length - res.missing.length;
}

/**
 * Runs a test body; if it fails, prints the last log lines of every daemon it ran, killed ones included, leaving out
 * the local API's request lines (these tests depend on timing across processes, and a failure without the daemons'
 * view cannot be told apart from a slow machine).
 */
const withLogsOnFailure = (fn: () => Promise<void>) => async () => {
  killed.length = 0;
  try {
    await fn();
  } catch (err) {
    for (const p of [...killed, ...running]) {
      const lines = p.logs.filter((l) => l.msg !== 'request').slice(-60);
      console.error(`--- last log lines of ${p.dataDir}${killed.includes(p) ? ' (killed)' : ''}\n${lines.map((l) => JSON.stringify(l)).join('\n')}`);
    }
    throw err;
  }
};

const received = (p: DaemonProcess) => p.logs.filter((l) => l.msg === 'chunks received') as { received: number; stored: number; duplicates: number }[];
const sum = (xs: { [k: string]: number }[], k: string) => xs.reduce((s, x) => s + (x[k] ?? 0), 0);

test('kill -9 of the pi at about half of a 200 MB upload: after restart the upload completes and acknowledged chunks are not sent again', withLogsOnFailure(async () => {
  dir = await tempDir('balupi-resume-');
  const root = path.join(dir.path, 'root');
  await fs.mkdir(root);
  const hub = await start(startHub({ root, dataDir: path.join(dir.path, 'hub') }));
  const piData = path.join(dir.path, 'pi');
  const piEnv = { BALUPI_SYNC_MAX_SEND_RATE: '40MiB' };
  let pi = await start(startPi({ hubGrpcPort: hub.ports.grpc, dataDir: piData, env: piEnv }));

  const src = path.join(dir.path, 'big.bin');
  await writeRandomFile(src, 200 * 1000 * 1000);
  const ingested = await piIngestFile(piData, 'video/big.bin', src);
  const hashes = [...new Set((ingested.file.chunks as { hash: string }[]).map((c) => c.hash))];
  assert.ok(hashes.length > 100, `a 200 MB file has many chunks (${hashes.length})`);

  await waitFor('about half of the chunks on the hub', async () => (await presentOnHub(hub.ports.grpc, hashes)) >= hashes.length * 0.45);
  const callsBeforeKill = received(hub).length;
  await kill9(pi);
  // The hub reports the broken upload call once it has stored what arrived (one call carries the whole file).
  await waitFor('the hub\'s report of the interrupted upload', async () => received(hub).length > callsBeforeKill);
  const atKill = await presentOnHub(hub.ports.grpc, hashes);
  assert.ok(atKill > 0 && atKill < hashes.length, `the kill landed mid-upload (${atKill} of ${hashes.length} chunks on the hub)`);
  assert.equal(sum(received(hub), 'stored'), atKill, 'what the hub reported stored is what it holds');
  const callsBefore = received(hub).length;

  pi = await start(startPi({ hubGrpcPort: hub.ports.grpc, dataDir: piData, env: piEnv, waitConnected: false }));
  const target = path.join(root, 'video', 'big.bin');
  await waitFor('the whole file in the hub root', async () => (await fs.stat(target).catch(() => null))?.size === 200 * 1000 * 1000, 60_000);
  assert.equal(await fileSha(target), await fileSha(src));

  const after = received(hub).slice(callsBefore);
  assert.equal(sum(after, 'received'), hashes.length - atKill, 'after the restart only the chunks the hub lacked were sent');
  assert.equal(sum(received(hub), 'duplicates'), 0, 'no chunk the hub already held was ever sent');
  assert.equal(sum(received(hub), 'stored'), hashes.length, 'every chunk stored exactly once');
  const status = (await local(piData, 'GET', '/local/sync/status')).json();
  assert.equal(status.dirtyBytes, 0, 'the pi knows the hub has every chunk');
  await pi.stop();
  running.delete(pi);
  await hub.stop();
  running.delete(hub);
}));

test('the hub restarting mid-transfer: uploads and downloads resume and complete', withLogsOnFailure(async () => {
  dir ??= await tempDir('balupi-resume-');
  const root = path.join(dir.path, 'root2');
  await fs.mkdir(root);
  const hubData = path.join(dir.path, 'hub2');
  const hubEnv = { BALUPI_SYNC_MAX_SEND_RATE: '30MiB' };
  let hub = await start(startHub({ root, dataDir: hubData, env: hubEnv }));
  const port = hub.ports.grpc;
  const piData = path.join(dir.path, 'pi2');
  const pi = await start(startPi({ hubGrpcPort: port, dataDir: piData, env: { BALUPI_SYNC_MAX_SEND_RATE: '30MiB', BALUPI_SYNC_RETRY_MAX_S: '0.5' } }));

  // Upload: pi -> hub, hub killed at about half and restarted on the same port.
  const up = path.join(dir.path, 'up.bin');
  await writeRandomFile(up, 80 * MiB);
  const ingested = await piIngestFile(piData, 'up.bin', up);
  const hashes = [...new Set((ingested.file.chunks as { hash: string }[]).map((c) => c.hash))];
  await waitFor('about half uploaded', async () => (await presentOnHub(port, hashes)) >= hashes.length * 0.4);
  await kill9(hub);
  hub = await start(startHub({ root, dataDir: hubData, env: hubEnv, grpcPort: port }));
  const atRestart = await presentOnHub(port, hashes);
  assert.ok(atRestart > 0 && atRestart < hashes.length, `the hub kept the chunks it had stored (${atRestart} of ${hashes.length})`);
  await waitFor('the upload completed in the hub root', async () => (await fs.stat(path.join(root, 'up.bin')).catch(() => null))?.size === 80 * MiB, 60_000);
  assert.equal(await fileSha(path.join(root, 'up.bin')), await fileSha(up));
  assert.equal(sum(received(hub), 'duplicates'), 0, 'chunks the first hub stored were not sent again');
  assert.ok(sum(received(hub), 'received') <= hashes.length - atRestart + 1, 'the restarted hub received only the rest');

  // Download: a pinned file on its way hub -> pi when the hub dies.
  const down = path.join(root, 'down.bin');
  await writeRandomFile(down, 80 * MiB);
  await waitFor('down.bin known on the pi', () => piStat(piData, 'down.bin'));
  assert.equal((await local(piData, 'POST', '/local/sync/pin?name=down.bin&pinned=true')).status, 200);
  await waitFor('about half downloaded', async () => (await local(piData, 'GET', '/local/store/stats')).json().storedBytes >= 80 * MiB + 30 * MiB);
  await kill9(hub);
  hub = await start(startHub({ root, dataDir: hubData, env: hubEnv, grpcPort: port }));
  await waitFor('the pinned file complete on the pi', async () => (await piStat(piData, 'down.bin'))?.state === 'local', 60_000);
  const cat = await local(piData, 'GET', '/local/store/cat?name=down.bin');
  assert.ok(cat.body.equals(await fs.readFile(down)), 'the downloaded bytes are the hub\'s');
}));

test('renames made while the hub was away send no bytes when it returns: each new name commits before its old name goes', withLogsOnFailure(async () => {
  dir ??= await tempDir('balupi-resume-');
  const root = path.join(dir.path, 'root3');
  await fs.mkdir(root);
  const hubData = path.join(dir.path, 'hub3');
  let hub = await start(startHub({ root, dataDir: hubData }));
  const port = hub.ports.grpc;
  const piData = path.join(dir.path, 'pi3');
  const pi = await start(startPi({ hubGrpcPort: port, dataDir: piData, env: { BALUPI_SYNC_RETRY_MAX_S: '0.5' } }));
  const video = path.join(dir.path, 'video.bin');
  await writeRandomFile(video, 24 * MiB); // the large lane
  const note = Buffer.from('a small file, pushed in a batch');
  await piIngestFile(piData, 'v/a.mp4', video);
  await piIngest(piData, 'd/a.txt', note);
  await waitFor('both files in the hub root', async () => (await fs.stat(path.join(root, 'v', 'a.mp4')).catch(() => null))?.size === 24 * MiB && (await hubFiles(root)).includes('d/a.txt'));
  await waitFor('the pi pushed both', async () => { const q = (await local(piData, 'GET', '/local/sync/status')).json().queue; return q.pending + q.uploading + q.failed === 0 && q.synced >= 2; });

  // The NAS sleeps; meanwhile both files are renamed on the pi (a new name with the same bytes, and a deletion).
  await hub.stop();
  running.delete(hub);
  await piIngestFile(piData, 'v/b.mp4', video);
  assert.equal((await local(piData, 'POST', '/local/store/rm?name=v/a.mp4')).status, 200);
  await piIngest(piData, 'd/b.txt', note);
  assert.equal((await local(piData, 'POST', '/local/store/rm?name=d/a.txt')).status, 200);

  hub = await start(startHub({ root, dataDir: hubData, grpcPort: port }));
  await waitFor('the renames in the hub root', async () => {
    const files = await hubFiles(root);
    return files.includes('v/b.mp4') && files.includes('d/b.txt') && !files.includes('v/a.mp4') && !files.includes('d/a.txt');
  }, 60_000);
  assert.equal(await fileSha(path.join(root, 'v', 'b.mp4')), await fileSha(video));
  assert.deepEqual(received(hub), [], 'the hub had every byte already: nothing was uploaded again');
  assert.deepEqual(pi.logs.filter((l) => l.msg === 'sync upload failed'), [], 'no commit failed for bytes the hub had dropped');
}));

test('a pinned file edited in place on the NAS while the pi downloads it: the pi ends with the new content and keeps its session', withLogsOnFailure(async () => {
  dir ??= await tempDir('balupi-resume-');
  const root = path.join(dir.path, 'root4');
  await fs.mkdir(root);
  const big = path.join(root, 'big.bin');
  await writeRandomFile(big, 40 * MiB);
  const hub = await start(startHub({ root, dataDir: path.join(dir.path, 'hub4'), env: { BALUPI_SYNC_MAX_SEND_RATE: '20MiB' } }));
  const piData = path.join(dir.path, 'pi4');
  const pi = await start(startPi({ hubGrpcPort: hub.ports.grpc, dataDir: piData, env: { BALUPI_SYNC_RETRY_MAX_S: '0.5' } }));
  assert.equal((await local(piData, 'POST', '/local/sync/pin?name=big.bin&pinned=true')).status, 200);
  await waitFor('part of it downloaded', async () => (await local(piData, 'GET', '/local/store/stats')).json().storedBytes >= 10 * MiB);
  // Someone overwrites 5 MiB near the end in place: chunks the pi still has to fetch are no longer in the file.
  const fh = await fs.open(big, 'r+');
  await fh.write(randomBytes(5 * MiB), 0, 5 * MiB, 30 * MiB);
  await fh.close();
  const edited = await fs.readFile(big);
  await waitFor('the edited version complete on the pi', async () => {
    const s = await piStat(piData, 'big.bin');
    return s?.state === 'local' && s.hash === (await blake(edited)) && (await piCat(piData, 'big.bin')).equals(edited);
  }, 60_000);
  const ended = pi.logs.filter((l) => l.msg === 'sync hub unreachable; will retry' || l.msg === 'sync session ended by an error; will start over');
  assert.deepEqual(ended, [], 'the pi kept its session: the rest of the round was fetched, the file again once its new record came');
  assert.equal(pi.logs.filter((l) => l.msg === 'sync connected to the hub').length, 1);
}));
