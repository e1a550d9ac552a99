// CommitBatch entries that carry their file's bytes ("commit.inline", CommitBatchEntry.data), against a real hub
// process, as an untrusted peer would send them: new files are written straight into the root folder and count as held
// there (nothing uploaded first); bytes that do not match their chunk hashes or their whole-file hash fail that entry
// with DATA_LOSS and leave nothing behind, in the store or the root; data of the wrong length, data on a deletion, or
// more than the protocol allows fail the whole call with nothing visible; a path that already holds a file, or whose
// base is stale, takes the usual way (stored as uploaded, committed, a conflict keeps both versions). The pi's own
// framing of the request is checked byte for byte against the generic encoder, and a wrong secret is refused; the
// hub's own gRPC handler answers a request of two messages, of none, of bytes that are no request and one above the
// limit with a status, and commits nothing of them, while the Connect protocol still reaches the generic one; the
// pi's request buffers are taken again only once a call no longer needs them. After
// such a commit the root writer catches up without writing, and an edit made in the root right after is not lost. A
// file written but never recorded (a crash in between) is read as the hub's own, and the retried commit matches it.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Code, ConnectError } from '@connectrpc/connect';
import { createSyncClient } from '../../src/sync/client.ts';
import { hashToBytes } from '../../src/sync/wire.ts';
import { create, toBinary } from '@bufbuild/protobuf';
import { CommitBatchRequestSchema, CommitStatus, SyncService, type CommitBatchResult } from '../../src/gen/balupi/sync/v1/sync_pb.js';
import { COMMIT_BATCH_PATH, layoutCommitBatch } from '../../src/sync/commit-batch-call.ts';
import { frame } from '../../src/sync/grpc-frames.ts';
import { RPC_MAX_BYTES } from '../../src/sync/client.ts';
import http2 from 'node:http2';
import { createClient } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-node';
import { SECRET, blake, hubFiles, local, startHub, tempDir, waitFor, type DaemonProcess } from './peers.ts';

let dir: Awaited<ReturnType<typeof tempDir>>;
let hub: DaemonProcess;
let root: string;

before(async () => {
  dir = await tempDir('balupi-inline-');
  root = path.join(dir.path, 'root');
  await fs.mkdir(root, { recursive: true });
  hub = await startHub({ root, dataDir: path.join(dir.path, 'hub') });
});
after(async () => {
  await hub?.stop();
  await dir?.remove();
});

const client = () => createSyncClient({ baseUrl: `http://127.0.0.1:${hub.ports.grpc}`, peerSecret: SECRET });
const MTIME = 1_700_000_000_000;

/** A file of the given pieces (its chunks): its bytes, and the FileInfo fields naming them. */
async function fileOf(p: string, ...pieces: Buffer[]) {
  const data = Buffer.concat(pieces);
  const chunks = await Promise.all(pieces.map(async (c) => ({ hash: hashToBytes(await blake(c)), size: c.length })));
  const h = hashToBytes(await blake(data));
  return { data, h, file: { path: p, size: BigInt(data.length), mtimeMs: BigInt(MTIME), mode: 0o640, hash: h, chunks, version: 0n, sequence: 0n, deleted: false } };
}

const outcome = (r: CommitBatchResult | undefined) => r?.outcome;
const inRoot = (p: string) => fs.readFile(path.join(root, p)).catch(() => null);
const missing = async (hashes: Uint8Array[]) => (await client().missingChunks({ hashes })).missing.length;
const storeRecord = async (p: string) => {
  for await (const m of client().changes({ indexId: '', sinceSequence: 0n, follow: false })) {
    const f = m.files.find((x) => x.path === p);
    if (f) return f;
  }
  return undefined;
};

test('hello lists commit.inline', async () => {
  const res = await client().hello({ peerId: 'TESTPER', protocolVersion: 1 });
  assert.ok(res.capabilities.includes('commit.inline'), res.capabilities.join(','));
});

test('new files with their bytes: committed without any upload, in the root at once with mode and mtime, and held there', async () => {
  const files = await Promise.all(Array.from({ length: 12 }, (_, i) => fileOf(`inline/new/f${i}.bin`, randomBytes(500 + 97 * i))));
  const two = await fileOf('inline/new/two-chunks.bin', randomBytes(3000), randomBytes(2000));
  const all = [...files, two];
  assert.equal(await missing(all.flatMap((f) => f.file.chunks.map((c) => c.hash))), 13 + 1, 'nothing of them on the hub before');
  const res = await client().commitBatch({ peerId: 'TESTPER', entries: all.map((f) => ({ file: f.file, baseVersion: 0n, data: f.data })) });
  for (const [i, r] of res.results.entries()) {
    const o = outcome(r);
    assert.ok(o?.case === 'committed' && o.value.status === CommitStatus.OK && o.value.file?.version === 1n, `${all[i]!.file.path}: ${o?.case}`);
  }
  // Written before the answer: no waiting for the root writer.
  for (const f of all) {
    assert.ok((await inRoot(f.file.path))?.equals(f.data), f.file.path);
    const st = await fs.stat(path.join(root, f.file.path));
    assert.equal(st.mode & 0o777, 0o640);
    assert.equal(Math.floor(st.mtimeMs), MTIME);
  }
  assert.equal(await missing(all.flatMap((f) => f.file.chunks.map((c) => c.hash))), 0, 'the hub holds every chunk now');
  // ...and serves them from the root.
  const got: Buffer[] = [];
  for await (const m of client().downloadChunks({ hashes: two.file.chunks.map((c) => c.hash) })) got.push(Buffer.from(m.data));
  assert.ok(Buffer.concat(got).equals(two.data));
  const chunkDir = path.join(hub.dataDir, 'store', 'chunks');
  await fs.access(chunkDir);
  assert.deepEqual(await hubFiles(chunkDir), [], 'no chunk files were made for them');
});

test('bytes that do not match: that entry fails with DATA_LOSS, nothing of it is stored or written; the others commit', async () => {
  const ok = await fileOf('inline/bad/ok.bin', randomBytes(4000));
  const flipped = await fileOf('inline/bad/flipped.bin', randomBytes(4000));
  const wrongWhole = await fileOf('inline/bad/whole.bin', randomBytes(1000), randomBytes(1000));
  const wrongChunk = await fileOf('inline/bad/chunk.bin', randomBytes(1000), randomBytes(1000));
  const badData = Buffer.from(flipped.data);
  badData[100] = badData[100]! ^ 0xff;
  const res = await client().commitBatch({
    peerId: 'TESTPER',
    entries: [
      { file: ok.file, baseVersion: 0n, data: ok.data },
      { file: flipped.file, baseVersion: 0n, data: badData },
      // Right chunks, a whole-file hash that names other bytes.
      { file: { ...wrongWhole.file, hash: ok.h }, baseVersion: 0n, data: wrongWhole.data },
      // Whole-file hash right, one chunk named wrongly (the chunk list describes other bytes).
      { file: { ...wrongChunk.file, chunks: [wrongChunk.file.chunks[0]!, { hash: ok.h, size: 1000 }] }, baseVersion: 0n, data: wrongChunk.data },
    ],
  });
  const [rOk, ...bad] = res.results.map(outcome);
  assert.ok(rOk?.case === 'committed' && rOk.value.status === CommitStatus.OK);
  for (const [i, o] of bad.entries()) assert.ok(o?.case === 'error' && o.value.code === Code.DataLoss, `entry ${i + 1}: ${o?.case}`);
  for (const f of [flipped, wrongWhole, wrongChunk]) {
    assert.equal(await storeRecord(f.file.path), undefined, f.file.path);
    assert.equal(await inRoot(f.file.path), null, f.file.path);
  }
  assert.equal(await missing([flipped.h]), 1, 'the flipped bytes were not stored under its hash');
  assert.ok((await inRoot('inline/bad/ok.bin'))?.equals(ok.data));
});

test('malformed data fails the whole call, nothing visible: wrong length, data on a deletion, above 1 MiB, traversal', async () => {
  const good = await fileOf('inline/refused/good.bin', randomBytes(800));
  const big = await fileOf('inline/refused/big.bin', randomBytes(1024 * 1024 + 1));
  const cases: [string, { file: typeof good.file; baseVersion: bigint; data?: Buffer }[]][] = [
    ['data shorter than the file', [{ file: good.file, baseVersion: 0n, data: good.data }, { file: { ...good.file, path: 'inline/refused/short.bin' }, baseVersion: 0n, data: good.data.subarray(1) }]],
    ['data longer than the file', [{ file: good.file, baseVersion: 0n, data: Buffer.concat([good.data, Buffer.from('x')]) }]],
    ['data on a deletion', [{ file: { ...good.file, path: 'inline/refused/gone.bin', deleted: true, size: 0n, chunks: [], hash: new Uint8Array() }, baseVersion: 1n, data: good.data }]],
    ['above 1 MiB', [{ file: big.file, baseVersion: 0n, data: big.data }]],
    ['path traversal', [{ file: { ...good.file, path: '../escape.bin' }, baseVersion: 0n, data: good.data }]],
  ];
  for (const [what, entries] of cases) {
    await assert.rejects(client().commitBatch({ peerId: 'TESTPER', entries }), (err: ConnectError) => err.code === Code.InvalidArgument, what);
  }
  assert.equal(await storeRecord('inline/refused/good.bin'), undefined);
  assert.equal(await inRoot('inline/refused/good.bin'), null);
  await assert.rejects(fs.access(path.join(dir.path, 'escape.bin')), 'nothing written outside the root');
  assert.equal(await missing([good.h]), 1);
});

/** A raw gRPC CommitBatch call with `body` as the whole request stream: the status and message of its trailers. */
async function rawCommitBatch(body: Buffer): Promise<{ code: number; message: string }> {
  const session = http2.connect(`http://127.0.0.1:${hub.ports.grpc}`);
  try {
    const req = session.request({ ':method': 'POST', ':path': COMMIT_BATCH_PATH, 'content-type': 'application/grpc', authorization: `Bearer ${SECRET}` });
    req.end(body);
    const t = await new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
      req.on('trailers', resolve);
      req.on('error', reject);
      req.resume();
    });
    return { code: Number(t['grpc-status']), message: decodeURIComponent(String(t['grpc-message'] ?? '')) };
  } finally {
    session.close();
  }
}

test('requests the hub\'s own CommitBatch handler cannot take get a status and commit nothing: two messages, none, bytes that are no request, one above the limit', async () => {
  const a = await fileOf('inline/raw/a.bin', randomBytes(600));
  const b = await fileOf('inline/raw/b.bin', randomBytes(700));
  const request = (f: typeof a) => frame(toBinary(CommitBatchRequestSchema, create(CommitBatchRequestSchema, { peerId: 'TESTPER', entries: [{ file: f.file, baseVersion: 0n, data: f.data }] })));
  const twice = await rawCommitBatch(Buffer.concat([request(a), request(b)]));
  assert.equal(twice.code, Code.InvalidArgument, twice.message);
  const none = await rawCommitBatch(Buffer.alloc(0));
  assert.equal(none.code, Code.InvalidArgument, none.message);
  const garbage = await rawCommitBatch(frame(Buffer.from([0x12, 0xff, 0xff, 0xff, 0x0f, 0x01])));
  assert.equal(garbage.code, Code.Internal, garbage.message);
  assert.match(garbage.message, /malformed balupi\.sync\.v1\.CommitBatchRequest/);
  const head = Buffer.alloc(5);
  head.writeUInt32BE(RPC_MAX_BYTES + 1, 1);
  const huge = await rawCommitBatch(Buffer.concat([head, Buffer.alloc(64 * 1024)]));
  assert.equal(huge.code, Code.ResourceExhausted, huge.message);
  for (const p of ['inline/raw/a.bin', 'inline/raw/b.bin']) {
    assert.equal(await storeRecord(p), undefined, `${p}: not committed`);
    assert.equal(await inRoot(p), null, `${p}: not in the root`);
  }
  // The same request alone goes through, and the Connect protocol still reaches the generic handler.
  const ok = await rawCommitBatch(request(a));
  assert.equal(ok.code, 0, ok.message);
  assert.ok((await inRoot('inline/raw/a.bin'))?.equals(a.data));
  const connect = createClient(SyncService, createConnectTransport({ baseUrl: `http://127.0.0.1:${hub.ports.grpc}`, httpVersion: '2' }));
  const res = await connect.commitBatch({ peerId: 'TESTPER', entries: [{ file: b.file, baseVersion: 0n, data: b.data }] }, { headers: { authorization: `Bearer ${SECRET}` } });
  assert.equal(res.results[0]?.outcome.case, 'committed');
  assert.ok((await inRoot('inline/raw/b.bin'))?.equals(b.data));
});

test('a path that holds a file takes the usual way: a change on the right base replaces it, a stale base keeps both versions', async () => {
  const v1 = await fileOf('inline/existing/doc.txt', Buffer.from('first version'));
  const v2 = await fileOf('inline/existing/doc.txt', Buffer.from('second version, same path'));
  const stale = await fileOf('inline/existing/doc.txt', Buffer.from('an edit based on the first version'));
  const send = (f: typeof v1, base: bigint, mtimeMs = MTIME) => client().commitBatch({ peerId: 'TESTPER', entries: [{ file: { ...f.file, mtimeMs: BigInt(mtimeMs) }, baseVersion: base, data: f.data }] });
  assert.equal(outcome((await send(v1, 0n)).results[0])?.case, 'committed');
  const r2 = outcome((await send(v2, 1n, MTIME + 2000)).results[0]);
  assert.ok(r2?.case === 'committed' && r2.value.status === CommitStatus.OK && r2.value.file?.version === 2n);
  await waitFor('the second version in the root', async () => (await inRoot('inline/existing/doc.txt'))?.equals(v2.data));
  const r3 = outcome((await send(stale, 1n, MTIME + 1000)).results[0]);
  assert.ok(r3?.case === 'committed' && r3.value.status === CommitStatus.CONFLICT, `stale base: ${r3?.case}`);
  assert.match(r3.value.conflictCopy?.path ?? '', /^inline\/existing\/doc\.sync-conflict-\d{8}-\d{6}-TESTPER\.txt$/);
  const copy = r3.value.conflictCopy!.path;
  await waitFor('the losing edit kept as a conflict copy in the root', async () => (await inRoot(copy))?.equals(stale.data));
  assert.ok((await inRoot('inline/existing/doc.txt'))?.equals(v2.data), 'the newer version keeps the path');
  assert.ok((await hubFiles(root)).includes(copy));
});

test('the laid-out request (the pi\'s own CommitBatch framing) is the generic encoding byte for byte, and the hub takes it', async () => {
  const a = await fileOf('inline/framed/a.bin', randomBytes(700));
  const b = await fileOf('inline/framed/b.bin', randomBytes(900));
  const entries = [
    { file: a.file, baseVersion: 0n },
    { file: b.file, baseVersion: 0n },
    { file: { ...a.file, path: 'inline/framed/gone.bin', deleted: true, size: 0n, chunks: [], hash: new Uint8Array() }, baseVersion: 0n },
  ];
  const req = layoutCommitBatch('TESTPER', entries, [a.data.length, 0, 0]);
  a.data.copy(req.frame, req.dataAt[0]);
  assert.deepEqual(req.dataAt.slice(1), [-1, -1]);
  const generic = toBinary(CommitBatchRequestSchema, create(CommitBatchRequestSchema, { peerId: 'TESTPER', entries: [{ ...entries[0]!, data: a.data }, entries[1]!, entries[2]!] }));
  assert.equal(req.frame[0], 0);
  assert.equal(req.frame.readUInt32BE(1), generic.length);
  assert.ok(req.frame.subarray(5).equals(generic), 'same bytes as the generic encoder');
  await client().uploadChunks((async function* () { yield { hash: b.h, data: b.data }; })());
  const res = await client().commitBatchFrame!(req);
  assert.deepEqual(res.results.map((r) => r.outcome.case), ['committed', 'committed', 'committed']);
  assert.ok((await inRoot('inline/framed/a.bin'))?.equals(a.data));
  const wrong = createSyncClient({ baseUrl: `http://127.0.0.1:${hub.ports.grpc}`, peerSecret: 'not the secret' });
  await assert.rejects(wrong.commitBatchFrame!(layoutCommitBatch('TESTPER', [{ file: { ...a.file, path: 'inline/framed/c.bin' }, baseVersion: 0n }], [0])), (err: ConnectError) => err.code === Code.Unauthenticated);
  assert.equal(await storeRecord('inline/framed/c.bin'), undefined);
});

test('the pi\'s request buffers are taken again once a call has written them (or failed before writing), never while one is in use', async () => {
  const big = await fileOf('inline/pool/big.bin', randomBytes(200_000));
  const layout = () => layoutCommitBatch('TESTPER', [{ file: big.file, baseVersion: 0n }], [big.data.length]);
  const a = layout();
  const b = layout();
  assert.notEqual(a.frame.buffer, b.frame.buffer, 'two frames in use at once never share memory');
  big.data.copy(a.frame, a.dataAt[0]);
  const res = await client().commitBatchFrame!(a);
  assert.equal(res.results[0]?.outcome.case, 'committed');
  const c = layout();
  assert.equal(c.frame.buffer, a.frame.buffer, 'the written frame is taken again');
  // A call that fails before it writes anything (cancelled up front) gives its frame back too.
  const ac = new AbortController();
  ac.abort();
  await assert.rejects(client().commitBatchFrame!(c, ac.signal), (err: ConnectError) => err.code === Code.Canceled);
  assert.equal(layout().frame.buffer, a.frame.buffer);
  b.done();
  c.done(); // again: ignored
});

test('after files went straight into place the root writer catches up, and an edit in the root right after is read as a new version', async () => {
  const f = await fileOf('inline/edited/doc.txt', Buffer.from('pushed by a pi'));
  const res = await client().commitBatch({ peerId: 'TESTPER', entries: [{ file: f.file, baseVersion: 0n, data: f.data }] });
  assert.equal(outcome(res.results[0])?.case, 'committed');
  await waitFor('the root writer past the commit', async () => {
    const s = (await local(hub.dataDir, 'GET', '/local/sync/status')).json();
    return s.root.writtenSequence === s.localSequence;
  });
  const edit = Buffer.from('edited in the root folder by someone on the NAS');
  await fs.writeFile(path.join(root, 'inline/edited/doc.txt'), edit);
  const want = Buffer.from(hashToBytes(await blake(edit))).toString('hex');
  const rec = await waitFor('the edit as version 2', async () => {
    const r = await storeRecord('inline/edited/doc.txt');
    return r && Buffer.from(r.hash).toString('hex') === want ? r : undefined;
  });
  assert.equal(rec.version, 2n);
  assert.ok((await inRoot('inline/edited/doc.txt'))?.equals(edit), 'nothing overwrote the edit');
});

test('a file the hub wrote but never recorded (it crashed in between) is read as its own; the retried commit finds it identical', async () => {
  // The state such a crash leaves: the bytes in the root, no record. The watcher (at the next start: the scan) reads it.
  const f = await fileOf('inline/crash/doc.txt', Buffer.from('written into place, then the hub died before recording it'));
  await fs.mkdir(path.join(root, 'inline/crash'), { recursive: true });
  await fs.writeFile(path.join(root, 'inline/crash/doc.txt'), f.data);
  await waitFor('the hub reading the file as its own', async () => (await storeRecord('inline/crash/doc.txt'))?.version === 1n);
  const o = outcome((await client().commitBatch({ peerId: 'TESTPER', entries: [{ file: f.file, baseVersion: 0n, data: f.data }] })).results[0]);
  assert.ok(o?.case === 'committed' && o.value.status === CommitStatus.OK, `retried commit: ${o?.case}`);
  assert.equal(o.value.file?.version, 1n, 'the same version, not a new one');
  assert.equal(o.value.conflictCopy, undefined);
  assert.deepEqual((await hubFiles(root)).filter((p) => p.startsWith('inline/crash/')), ['inline/crash/doc.txt'], 'no conflict copy');
});
