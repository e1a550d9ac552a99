// The hub as an untrusted peer sees it: a real hub process driven by test peers built on the generated Connect client
// and by an @grpc/grpc-js client built from the .proto files alone. A wrong pairing secret is refused; a corrupt
// chunk is rejected and nothing of it is stored while the other chunks complete; paths are validated like user input.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { Code, ConnectError } from '@connectrpc/connect';
import { createSyncClient } from '../../src/sync/client.ts';
import { hashToBytes, bytesToHash } from '../../src/sync/wire.ts';
import { Role } from '../../src/gen/balupi/sync/v1/sync_pb.js';
import { SECRET, blake, hubFiles, startHub, startPi, tempDir, waitFor, type DaemonProcess } from './peers.ts';

let dir: Awaited<ReturnType<typeof tempDir>>;
let hub: DaemonProcess;
let root: string;

before(async () => {
  dir = await tempDir('balupi-hubproto-');
  root = path.join(dir.path, 'root');
  await fs.mkdir(path.join(root, 'docs'), { recursive: true });
  await fs.writeFile(path.join(root, 'docs', 'readme.txt'), 'hub content');
  hub = await startHub({ root, dataDir: path.join(dir.path, 'hub') });
});
after(async () => {
  await hub?.stop();
  await dir?.remove();
});

const client = (secret = SECRET) => createSyncClient({ baseUrl: `http://127.0.0.1:${hub.ports.grpc}`, peerSecret: secret });
const hello = { peerId: 'TESTPER', role: Role.PI, protocolVersion: 1, capabilities: [], indexId: '', maxSequence: 0n };

test('a wrong pairing secret is refused: by the hub for a test client, and for a pi process, which syncs nothing', async () => {
  await assert.rejects(client('not-the-secret').hello(hello), (err: ConnectError) => err.code === Code.Unauthenticated && /wrong peer secret/.test(err.rawMessage));
  const pi = await startPi({ hubGrpcPort: hub.ports.grpc, env: { BALUPI_PEER_SECRET: 'not-the-secret' }, waitConnected: false });
  try {
    await pi.waitForLog((l) => l.msg === 'sync pairing refused by the hub: check BALUPI_PEER_SECRET');
    assert.equal(pi.logs.some((l) => l.msg === 'sync connected to the hub'), false);
    assert.equal(hub.logs.some((l) => l.msg === 'sync peer said hello' && l.role === 'pi'), false, 'the hub never accepted the pi');
  } finally {
    await pi.stop();
  }
  await assert.rejects(client().hello({ ...hello, protocolVersion: 2 }), (err: ConnectError) => err.code === Code.FailedPrecondition, 'an unknown protocol version is refused');
});

test('a corrupt chunk is rejected with an error, nothing of it is stored, and the other chunks of the stream complete', async () => {
  const good1 = randomBytes(100_000);
  const good2 = randomBytes(70_000);
  const claimed = randomBytes(50_000); // what the peer says it sends
  const sent = Buffer.from(claimed);
  sent[1234] = sent[1234]! ^ 0xff; // what it really sends
  const [h1, h2, hc, hs] = await Promise.all([blake(good1), blake(good2), blake(claimed), blake(sent)]);
  async function* stream() {
    yield { hash: hashToBytes(h1), data: good1 };
    yield { hash: hashToBytes(hc), data: sent };
    yield { hash: hashToBytes(h2), data: good2 };
  }
  await assert.rejects(client().uploadChunks(stream()), (err: ConnectError) => err.code === Code.DataLoss && err.rawMessage.includes(hc));
  const missing = (await client().missingChunks({ hashes: [h1, hc, h2, hs].map(hashToBytes) })).missing.map(bytesToHash);
  assert.deepEqual(missing, [hc, hs], 'the good chunks are stored; neither the claimed nor the actual hash of the bad one');
  for (const h of [hc, hs]) await assert.rejects(fs.access(path.join(hub.dataDir, 'store', 'chunks', h.slice(0, 2), h)), `no chunk file for ${h}`);
  const tmp = await fs.readdir(path.join(hub.dataDir, 'store', 'tmp'));
  assert.deepEqual(tmp, [], 'no temp file left behind');

  // A commit naming the rejected chunk is refused, and the path does not appear.
  const file = { path: 'bad.bin', size: 50_000n, mtimeMs: 0n, mode: 0o644, hash: hashToBytes(hc), chunks: [{ hash: hashToBytes(hc), size: 50_000 }], version: 0n, sequence: 0n, deleted: false };
  await assert.rejects(client().commit({ peerId: 'TESTPER', file, baseVersion: 0n }), (err: ConnectError) => err.code === Code.FailedPrecondition);
  // A download of a chunk the hub does not hold ends with NOT_FOUND.
  await assert.rejects(async () => {
    for await (const _ of client().downloadChunks({ hashes: [hashToBytes(hc)] }));
  }, (err: ConnectError) => err.code === Code.NotFound);
  assert.equal((await hubFiles(root)).includes('bad.bin'), false);
});

test('paths from peers are validated like user input: .., absolute, NUL, backslash, empty segments', async () => {
  const data = Buffer.from('payload');
  const h = await blake(data);
  async function* one() {
    yield { hash: hashToBytes(h), data };
  }
  await client().uploadChunks(one());
  const bad = ['../escape.txt', 'docs/../../escape.txt', '/etc/passwd', 'a\0b', 'a\\b', 'a//b', './a', 'docs/', 'x\ny'];
  for (const p of bad) {
    const file = { path: p, size: 7n, mtimeMs: 0n, mode: 0o644, hash: hashToBytes(h), chunks: [{ hash: hashToBytes(h), size: 7 }], version: 0n, sequence: 0n, deleted: false };
    await assert.rejects(client().commit({ peerId: 'TESTPER', file, baseVersion: 0n }), (err: ConnectError) => err.code === Code.InvalidArgument, JSON.stringify(p));
  }
  // A directory in the root that is a symlink out of it must not be written through.
  const outside = path.join(dir.path, 'outside');
  await fs.mkdir(outside);
  await fs.symlink(outside, path.join(root, 'link'));
  const via = { path: 'link/x.txt', size: 7n, mtimeMs: 0n, mode: 0o644, hash: hashToBytes(h), chunks: [{ hash: hashToBytes(h), size: 7 }], version: 0n, sequence: 0n, deleted: false };
  await assert.rejects(client().commit({ peerId: 'TESTPER', file: via, baseVersion: 0n }), (err: ConnectError) => err.code === Code.InvalidArgument);
  assert.deepEqual(await fs.readdir(outside), [], 'nothing written outside the root');
  await assert.rejects(fs.access(path.join(dir.path, 'escape.txt')));
  // Hash and size fields are checked too.
  const short = { path: 'ok.txt', size: 7n, mtimeMs: 0n, mode: 0o644, hash: new Uint8Array(5), chunks: [], version: 0n, sequence: 0n, deleted: false };
  await assert.rejects(client().commit({ peerId: 'TESTPER', file: short, baseVersion: 0n }), (err: ConnectError) => err.code === Code.InvalidArgument);
  // And a good path from the same peer works.
  const good = { path: 'from-peer/ok.txt', size: 7n, mtimeMs: 1_700_000_000_000n, mode: 0o644, hash: hashToBytes(h), chunks: [{ hash: hashToBytes(h), size: 7 }], version: 0n, sequence: 0n, deleted: false };
  const res = await client().commit({ peerId: 'TESTPER', file: good, baseVersion: 0n });
  assert.equal(res.file?.version, 1n);
  await waitFor('the committed file in the root', async () => (await fs.readFile(path.join(root, 'from-peer', 'ok.txt'), 'utf8').catch(() => '')) === 'payload');
});

test('a peer that ignores Hello\'s ignore_patterns: the hub refuses a new version of such a path (Commit, a CommitBatch entry, a placed chunk), takes the rest and a deletion', async () => {
  const data = Buffer.from('into BaluHost\'s upload folder');
  const h = await blake(data);
  const info = (p: string) => ({ path: p, size: BigInt(data.length), mtimeMs: 1_700_000_000_000n, mode: 0o644, hash: hashToBytes(h), chunks: [{ hash: hashToBytes(h), size: data.length }], version: 0n, sequence: 0n, deleted: false });
  const ignored = (err: ConnectError) => err.code === Code.InvalidArgument && /leaves this path out of the sync/.test(err.rawMessage);
  await assert.rejects(client().commit({ peerId: 'TESTPER', file: info('.tmp/upload/part-0'), baseVersion: 0n }), ignored);
  const batch = await client().commitBatch({ peerId: 'TESTPER', entries: [{ file: info('Shared/.Trash-1000/x.txt'), baseVersion: 0n, data }, { file: info('Shared/kept.txt'), baseVersion: 0n, data }] });
  assert.equal(batch.results[0]!.outcome.case, 'error');
  assert.equal(batch.results[0]!.outcome.case === 'error' && batch.results[0]!.outcome.value.code, Code.InvalidArgument);
  assert.equal(batch.results[1]!.outcome.case, 'committed', 'the other entry of the batch is taken');
  await waitFor('Shared/kept.txt in the root', async () => (await fs.readFile(path.join(root, 'Shared', 'kept.txt'), 'utf8').catch(() => '')) === data.toString());
  const del = { ...info('.tmp/never-here.txt'), size: 0n, hash: new Uint8Array(0), chunks: [], deleted: true };
  await client().commit({ peerId: 'TESTPER', file: del, baseVersion: 0n }); // a deletion goes through
  // A large file's chunk placed at an ignored path ends its upload before anything of it is stored.
  const big = randomBytes(300 * 1024);
  const bh = await blake(big);
  async function* placed() {
    yield { hash: hashToBytes(bh), data: big, place: { path: '.tmp/big.iso', fileSize: BigInt(16 * 1024 * 1024), fileHash: hashToBytes(bh), offset: 0n } };
  }
  await assert.rejects(client().uploadChunks(placed()), ignored);
  const missing = await client().missingChunks({ hashes: [hashToBytes(bh)] });
  assert.equal(missing.missing.length, 1, 'the placed chunk was not stored');
  assert.ok(!(await hubFiles(root)).some((f) => f.startsWith('.tmp')), 'nothing written under .tmp');
});

test('an @grpc/grpc-js client built from the .proto files says Hello, reads the change feed, downloads a chunk and commits a file', async () => {
  const def = protoLoader.loadSync('balupi/sync/v1/sync.proto', { includeDirs: [new URL('../../proto', import.meta.url).pathname], keepCase: true, longs: String, enums: String, bytes: Buffer });
  const pkg = grpc.loadPackageDefinition(def) as any;
  const c = new pkg.balupi.sync.v1.SyncService(`127.0.0.1:${hub.ports.grpc}`, grpc.credentials.createInsecure());
  const md = new grpc.Metadata();
  md.set('authorization', `Bearer ${SECRET}`);
  try {
    const res = await new Promise<any>((resolve, reject) =>
      c.Hello({ peer_id: 'GRPCJSX', role: 'ROLE_PI', protocol_version: 1, capabilities: [], index_id: '', max_sequence: 0 }, md, (err: Error | null, r: any) => (err ? reject(err) : resolve(r))),
    );
    assert.equal(res.role, 'ROLE_HUB');
    assert.equal(res.protocol_version, 1);
    assert.match(res.index_id, /^[0-9a-f]{16}$/);
    assert.ok(Number(res.max_sequence) >= 1);
    assert.deepEqual(res.ignore_patterns, ['.system', '.tmp', 'lost+found', '.Trash-*', '/.balupi-versions'], 'the hub names what it leaves out (the defaults)');

    const call = c.Changes({ index_id: res.index_id, since_sequence: 0, follow: false }, md);
    const files: any[] = [];
    let caughtUp = false;
    for await (const msg of call) {
      files.push(...msg.files);
      caughtUp ||= msg.caught_up;
    }
    assert.equal(caughtUp, true);
    const readme = files.find((f) => f.path === 'docs/readme.txt');
    assert.ok(readme, `feed lists the root's file: ${files.map((f) => f.path)}`);
    assert.equal(Buffer.from(readme.hash).toString('hex'), await blake(Buffer.from('hub content')));
    assert.equal(Number(readme.size), 11);
    assert.equal(readme.chunks.length, 1);

    // Download the chunk with grpc-js too: the bytes are the file's.
    const down = c.DownloadChunks({ hashes: [readme.chunks[0].hash] }, md);
    const parts: Buffer[] = [];
    for await (const m of down) parts.push(Buffer.from(m.data));
    assert.equal(Buffer.concat(parts).toString(), 'hub content');

    // And commit a new file with its bytes in the request (the hub's own CommitBatch handler answers grpc-js too).
    const body = Buffer.from('committed by grpc-js');
    const h = Buffer.from(await blake(body), 'hex');
    const file = { path: 'from-grpcjs/new.txt', size: body.length, mtime_ms: 1_700_000_000_000, mode: 0o644, hash: h, chunks: [{ hash: h, size: body.length }], version: 0, sequence: 0, deleted: false };
    const committed = await new Promise<any>((resolve, reject) =>
      c.CommitBatch({ peer_id: 'GRPCJSX', entries: [{ file, base_version: 0, data: body }] }, md, (err: Error | null, r: any) => (err ? reject(err) : resolve(r))),
    );
    assert.equal(committed.results[0].committed?.status, 'COMMIT_STATUS_OK', JSON.stringify(committed.results[0]));
    assert.equal(await fs.readFile(path.join(root, 'from-grpcjs', 'new.txt'), 'utf8'), 'committed by grpc-js');

    const wrong = new grpc.Metadata();
    wrong.set('authorization', 'Bearer wrong');
    await assert.rejects(
      new Promise((resolve, reject) => c.Hello({ protocol_version: 1 }, wrong, (err: Error | null, r: any) => (err ? reject(err) : resolve(r)))),
      (err: grpc.ServiceError) => err.code === grpc.status.UNAUTHENTICATED,
    );
  } finally {
    c.close();
  }
});
