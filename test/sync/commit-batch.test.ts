// CommitBatch against a real hub process, as an untrusted peer would drive it: a good batch lands in the store and
// the root folder; a batch with one malformed entry (path traversal, duplicate path, too many entries) is refused as a
// whole with nothing visible; entries whose chunks never arrived (the uploader vanished mid-stream), whose bytes do
// not hash to the file hash, or that conflict get their own outcome while the others commit. Then a pi process is
// killed with SIGKILL in the middle of pushing a few hundred small files in batches: the hub shows only complete
// files, and after a restart the pi finishes the rest.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Code, ConnectError } from '@connectrpc/connect';
import { createSyncClient } from '../../src/sync/client.ts';
import { hashToBytes } from '../../src/sync/wire.ts';
import { CommitStatus, type CommitBatchResult } from '../../src/gen/balupi/sync/v1/sync_pb.js';
import { FAST, SECRET, blake, hubFiles, piIngest, startHub, startPi, tempDir, waitFor, type DaemonProcess } from './peers.ts';
import { startDaemonProcess } from '../helpers/daemon-process.ts';
import { isOwnTemp } from '../../src/sync/root-files.ts';

let dir: Awaited<ReturnType<typeof tempDir>>;
let hub: DaemonProcess;
let root: string;
const running = new Set<DaemonProcess>();

before(async () => {
  dir = await tempDir('balupi-batch-');
  root = path.join(dir.path, 'root');
  await fs.mkdir(root, { recursive: true });
  hub = await startHub({ root, dataDir: path.join(dir.path, 'hub') });
  running.add(hub);
});
after(async () => {
  for (const p of running) await p.stop();
  await dir?.remove();
});

const client = () => createSyncClient({ baseUrl: `http://127.0.0.1:${hub.ports.grpc}`, peerSecret: SECRET });

/** A one-chunk file: its bytes, and the FileInfo fields naming them. */
async function oneChunk(p: string, data: Buffer) {
  const h = hashToBytes(await blake(data));
  return { data, h, file: { path: p, size: BigInt(data.length), mtimeMs: 1_700_000_000_000n, mode: 0o644, hash: h, chunks: [{ hash: h, size: data.length }], version: 0n, sequence: 0n, deleted: false } };
}

async function upload(items: { h: Uint8Array; data: Buffer }[]) {
  await client().uploadChunks(
    (async function* () {
      for (const it of items) yield { hash: it.h, data: it.data };
    })(),
  );
}

const rootHas = async (p: string) => (await hubFiles(root)).includes(p);
const storeRecord = async (p: string) => {
  for await (const m of client().changes({ indexId: '', sinceSequence: 0n, follow: false })) {
    const f = m.files.find((x) => x.path === p);
    if (f) return f;
  }
  return undefined;
};
const outcome = (r: CommitBatchResult | undefined) => r?.outcome;

test('a good batch: every entry is committed in one call and written into the root folder', async () => {
  const files = await Promise.all(Array.from({ length: 20 }, (_, i) => oneChunk(`batch/ok/f${i}.bin`, randomBytes(1000 + i))));
  await upload(files);
  const res = await client().commitBatch({ peerId: 'TESTPER', entries: files.map((f) => ({ file: f.file, baseVersion: 0n })) });
  assert.equal(res.results.length, files.length);
  for (const r of res.results) {
    const o = outcome(r)!;
    assert.equal(o.case, 'committed');
    assert.equal(o.case === 'committed' && o.value.status, CommitStatus.OK);
    assert.equal(o.case === 'committed' && o.value.file?.version, 1n);
  }
  for (const f of files) {
    await waitFor(`${f.file.path} in the root`, async () => (await fs.readFile(path.join(root, f.file.path)).catch(() => null))?.equals(f.data));
  }
});

test('a batch with one malformed entry is refused as a whole: traversal, duplicates, too many entries; nothing is visible', async () => {
  const good = await oneChunk('batch/refused/good.bin', randomBytes(500));
  await upload([good]);
  const cases: [string, { file: typeof good.file; baseVersion: bigint }[]][] = [
    ['path traversal', [{ file: good.file, baseVersion: 0n }, { file: { ...good.file, path: '../escape.bin' }, baseVersion: 0n }]],
    ['absolute path', [{ file: good.file, baseVersion: 0n }, { file: { ...good.file, path: '/etc/passwd' }, baseVersion: 0n }]],
    ['sizes that do not add up', [{ file: good.file, baseVersion: 0n }, { file: { ...good.file, path: 'batch/refused/b.bin', size: 1n }, baseVersion: 0n }]],
    ['the same path twice', [{ file: good.file, baseVersion: 0n }, { file: good.file, baseVersion: 0n }]],
    ['1,001 entries', Array.from({ length: 1001 }, (_, i) => ({ file: { ...good.file, path: `batch/refused/n${i}.bin` }, baseVersion: 0n }))],
    ['no entries', []],
  ];
  for (const [what, entries] of cases) {
    await assert.rejects(client().commitBatch({ peerId: 'TESTPER', entries }), (err: ConnectError) => err.code === Code.InvalidArgument, what);
  }
  assert.equal(await storeRecord('batch/refused/good.bin'), undefined, 'the good entry of a refused batch was not committed');
  assert.equal(await storeRecord('batch/refused/n0.bin'), undefined);
  await assert.rejects(fs.access(path.join(dir.path, 'escape.bin')), 'nothing written outside the root');
  assert.equal(await rootHas('batch/refused/good.bin'), false);
});

test('entries fail on their own: chunks that never arrived (uploader vanished), wrong file hash, a file below a file; the rest commit', async () => {
  const ok = await oneChunk('batch/mixed/ok.bin', randomBytes(3000));
  const lost = await oneChunk('batch/mixed/lost.bin', randomBytes(3000));
  const liar = await oneChunk('batch/mixed/liar.bin', randomBytes(3000));
  const dir2 = await oneChunk('batch/mixed/d', randomBytes(100));
  const under = await oneChunk('batch/mixed/d/x.bin', randomBytes(100));
  await upload([ok]);
  // The uploader's next stream breaks off before `lost`'s chunk goes out (it vanished).
  const ac = new AbortController();
  await assert.rejects(
    client().uploadChunks(
      (async function* () {
        ac.abort();
        yield { hash: lost.h, data: lost.data };
      })(),
      { signal: ac.signal },
    ),
    (err: ConnectError) => err.code === Code.Canceled,
  );
  assert.equal((await client().missingChunks({ hashes: [lost.h] })).missing.length, 1, "the vanished uploader's last chunk is not on the hub");
  await upload([liar, dir2, under]);
  const res = await client().commitBatch({
    peerId: 'TESTPER',
    entries: [
      { file: ok.file, baseVersion: 0n },
      { file: lost.file, baseVersion: 0n },
      { file: { ...liar.file, hash: hashToBytes(await blake(Buffer.from('something else'))) }, baseVersion: 0n },
      { file: dir2.file, baseVersion: 0n },
      { file: under.file, baseVersion: 0n },
    ],
  });
  const [rOk, rLost, rLiar, rDir, rUnder] = res.results.map(outcome);
  assert.equal(rOk?.case, 'committed');
  assert.ok(rLost?.case === 'error' && rLost.value.code === Code.FailedPrecondition, `lost: ${rLost?.case}`);
  assert.ok(rLiar?.case === 'error' && rLiar.value.code === Code.DataLoss, `liar: ${rLiar?.case}`);
  assert.equal(rDir?.case, 'committed');
  assert.ok(rUnder?.case === 'error' && rUnder.value.code === Code.FailedPrecondition, 'a file below a file of the same batch is refused');
  // Nothing of the failed entries is visible, in the store or in the root folder.
  for (const p of ['batch/mixed/lost.bin', 'batch/mixed/liar.bin', 'batch/mixed/d/x.bin']) {
    assert.equal(await storeRecord(p), undefined, p);
    assert.equal(await rootHas(p), false, p);
  }
  await waitFor('ok.bin in the root', async () => (await fs.readFile(path.join(root, 'batch/mixed/ok.bin')).catch(() => null))?.equals(ok.data));
});

test('a conflicting entry in a batch is resolved as Commit resolves it: both versions survive', async () => {
  const mine = await oneChunk('batch/conflict/doc.txt', Buffer.from('older, from the batch'));
  const theirs = await oneChunk('batch/conflict/doc.txt', Buffer.from('newer, committed first by another peer'));
  await upload([mine, theirs]);
  assert.equal((await client().commit({ peerId: 'OTHERPR', file: { ...theirs.file, mtimeMs: 1_800_000_000_000n }, baseVersion: 0n })).status, CommitStatus.OK);
  const res = await client().commitBatch({ peerId: 'TESTPER', entries: [{ file: mine.file, baseVersion: 0n }] });
  const o = outcome(res.results[0]);
  assert.ok(o?.case === 'committed' && o.value.status === CommitStatus.CONFLICT, `outcome: ${o?.case}`);
  assert.equal(Buffer.from(o.value.file!.hash).toString('hex'), Buffer.from(theirs.h).toString('hex'), 'the newer version keeps the path');
  assert.match(o.value.conflictCopy?.path ?? '', /^batch\/conflict\/doc\.sync-conflict-\d{8}-\d{6}-TESTPER\.txt$/);
  await waitFor('the conflict copy in the root', async () => (await hubFiles(root)).some((f) => f.startsWith('batch/conflict/doc.sync-conflict-')));
});

test('a pi killed with SIGKILL in the middle of pushing batches: the hub shows only complete files; a restart finishes', async () => {
  const piDir = path.join(dir.path, 'pi');
  const files = new Map<string, Buffer>();
  // Ingested before the pi daemon runs its sync (no hub URL yet): the restart with a hub URL pushes them all at once.
  const offline = await startDaemonProcess({ env: FAST, args: ['--role', 'pi'], dataDir: piDir });
  running.add(offline);
  for (let i = 0; i < 300; i++) {
    const data = randomBytes(2000 + ((i * 7919) % 20_000));
    files.set(`killed/d${i % 7}/f${i}.bin`, data);
    await piIngest(piDir, `killed/d${i % 7}/f${i}.bin`, data);
  }
  await offline.stop();
  running.delete(offline);
  const pi = await startPi({ hubGrpcPort: hub.ports.grpc, dataDir: piDir, waitConnected: false });
  running.add(pi);
  const isCommit = (l: { msg?: unknown }) => l.msg === 'sync commit' || l.msg === 'sync commit batch';
  const commitsBefore = hub.logs.filter(isCommit).length;
  await hub.waitForLog((l) => isCommit(l) && hub.logs.filter(isCommit).length > commitsBefore);
  pi.proc.kill('SIGKILL');
  await pi.exited;
  running.delete(pi);
  // Every file the hub shows, in its root folder or its index, is complete and right.
  // (A temp file being written is not a visible file: the watcher and every reader of the root skip TEMP_PREFIX.)
  const shown = (await hubFiles(root)).filter((f) => f.startsWith('killed/') && !isOwnTemp(f));
  for (const f of shown) assert.ok((await fs.readFile(path.join(root, f))).equals(files.get(f)!), `${f} is complete`);
  for (const f of files.keys()) {
    const rec = await storeRecord(f);
    if (rec) {
      const missing = await client().missingChunks({ hashes: rec.chunks.map((c) => c.hash) });
      assert.equal(missing.missing.length, 0, `${f} is in the hub's index, so all its chunks are there`);
    }
  }
  const again = await startPi({ hubGrpcPort: hub.ports.grpc, dataDir: piDir, waitConnected: false });
  running.add(again);
  await waitFor('every file in the hub root', async () => (await hubFiles(root)).filter((f) => f.startsWith('killed/') && !isOwnTemp(f)).length === files.size, 60_000);
  for (const [f, data] of files) assert.ok((await fs.readFile(path.join(root, f))).equals(data), f);
});
