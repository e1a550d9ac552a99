// The hub's write-once push (src/sync/staging.ts), against a real hub process driven by a test peer on the generated
// client: chunks uploaded with a place land in a staging file beside the path and nowhere else; the commit puts that
// very file in place; staged chunks survive a hub restart and are not asked for again; wrong chunks and unusable
// places change nothing they should not; the start-up sweep removes what no upload or commit can claim.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Code, ConnectError } from '@connectrpc/connect';
import { createSyncClient } from '../../src/sync/client.ts';
import { bytesToHash, hashToBytes, type Place } from '../../src/sync/wire.ts';
import { STAGE_PREFIX } from '../../src/sync/staging.ts';
import { TEMP_PREFIX } from '../../src/sync/root-files.ts';
import { CommitStatus } from '../../src/gen/balupi/sync/v1/sync_pb.js';
import { blake, local, SECRET, startHub, tempDir, waitFor, type DaemonProcess } from './peers.ts';

const MiB = 1024 * 1024;
let dir: Awaited<ReturnType<typeof tempDir>>;
let hub: DaemonProcess;
let root: string;
let hubData: string;

before(async () => {
  dir = await tempDir('balupi-staging-');
  root = path.join(dir.path, 'root');
  hubData = path.join(dir.path, 'hub');
  await fs.mkdir(root, { recursive: true });
  hub = await startHub({ root, dataDir: hubData });
});
after(async () => {
  await hub?.stop();
  await dir?.remove();
});

const client = () => createSyncClient({ baseUrl: `http://127.0.0.1:${hub.ports.grpc}`, peerSecret: SECRET });

async function restartHub(): Promise<void> {
  await hub.stop();
  hub = await startHub({ root, dataDir: hubData });
}

/** A file of `mib` random MiB cut into 1 MiB chunks (any cut will do: the hub checks chunk and whole-file hashes). */
async function largeFile(name: string, mib: number, shared?: Buffer) {
  const data = Buffer.concat([shared ?? Buffer.alloc(0), randomBytes(mib * MiB - (shared?.length ?? 0))]);
  const chunks: { hash: string; size: number; offset: number; data: Buffer }[] = [];
  for (let off = 0; off < data.length; off += MiB) {
    const piece = data.subarray(off, Math.min(off + MiB, data.length));
    chunks.push({ hash: await blake(piece), size: piece.length, offset: off, data: piece });
  }
  const hash = await blake(data);
  const place = (offset: number): Place => ({ path: name, fileSize: BigInt(data.length), fileHash: hashToBytes(hash), offset: BigInt(offset) });
  const info = {
    path: name,
    size: BigInt(data.length),
    mtimeMs: 1_700_000_000_000n,
    mode: 0o640,
    hash: hashToBytes(hash),
    chunks: chunks.map((c) => ({ hash: hashToBytes(c.hash), size: c.size })),
    version: 0n,
    sequence: 0n,
    deleted: false,
  };
  return { name, data, hash, chunks, place, info, stage: path.join(root, path.dirname(name), `${STAGE_PREFIX}${hash}`) };
}
type LargeFile = Awaited<ReturnType<typeof largeFile>>;

async function upload(f: LargeFile, which: LargeFile['chunks'], opts: { place?: (c: LargeFile['chunks'][number]) => Place | undefined } = {}) {
  async function* stream() {
    for (const c of which) {
      const place = opts.place ? opts.place(c) : f.place(c.offset);
      yield { hash: hashToBytes(c.hash), data: c.data, ...(place ? { place } : {}) };
    }
  }
  return client().uploadChunks(stream());
}

const missing = async (hashes: string[]) => (await client().missingChunks({ hashes: hashes.map(hashToBytes) })).missing.map(bytesToHash);
const chunkFile = (h: string) => path.join(hubData, 'store', 'chunks', h.slice(0, 2), h);
const exists = (p: string) => fs.access(p).then(() => true, () => false);
const fsck = async () => (await local(hubData, 'POST', '/local/store/fsck')).json();

test('a large file uploaded with places is written once: into a staging file, which the commit puts in place', async () => {
  const f = await largeFile('video/clip.mp4', 12);
  const res = await upload(f, f.chunks);
  assert.equal(res.stored, 12);
  const staged = await fs.stat(f.stage);
  assert.equal(staged.size, f.data.length, 'the staging file holds the whole file');
  for (const c of f.chunks) assert.equal(await exists(chunkFile(c.hash)), false, 'no chunk file on the hub');
  assert.deepEqual(await missing(f.chunks.map((c) => c.hash)), [], 'the staged chunks count as held');
  assert.equal((await client().commit({ peerId: 'TESTPER', file: f.info, baseVersion: 0n })).status, CommitStatus.OK);
  const target = path.join(root, f.name);
  const placed = await waitFor('the file in the root', async () => (await exists(target)) && !(await exists(f.stage)) && fs.stat(target));
  assert.equal(placed.ino, staged.ino, 'the staging file itself was renamed into place, not copied');
  assert.ok((await fs.readFile(target)).equals(f.data));
  assert.equal(placed.mode & 0o777, 0o640);
  assert.equal(Math.floor(placed.mtimeMs), 1_700_000_000_000);
  assert.deepEqual(await fs.readdir(path.dirname(target)), ['clip.mp4'], 'no temp or staging file left');
  // The store reads the bytes from the placed file (a pull of it works), and fsck finds nothing wrong.
  let got = 0;
  for await (const m of client().downloadChunks({ hashes: f.chunks.map((c) => hashToBytes(c.hash)) })) got += m.data.length;
  assert.equal(got, f.data.length);
  const report = await fsck();
  assert.deepEqual(report.problems, []);
});

test('staged chunks survive a hub restart: a resumed upload sends only the rest, and chunks the hub held already are filled in', async () => {
  const small = randomBytes(MiB); // a chunk the hub gets as an ordinary upload first, then finds in the large file
  await client().uploadChunks((async function* () { yield { hash: hashToBytes(await blake(small)), data: small }; })());
  const f = await largeFile('docs/big.bin', 10, small);
  assert.deepEqual(await missing([f.chunks[0]!.hash]), [], 'the first chunk is held already');
  const firstHalf = f.chunks.slice(1, 5);
  await upload(f, firstHalf);
  await restartHub();
  const still = await missing(f.chunks.map((c) => c.hash));
  assert.deepEqual(still, f.chunks.slice(5).map((c) => c.hash), 'after the restart only the chunks never acknowledged are asked for');
  await upload(f, f.chunks.filter((c) => still.includes(c.hash)));
  await client().commit({ peerId: 'TESTPER', file: f.info, baseVersion: 0n });
  const target = path.join(root, f.name);
  await waitFor('the file in the root', async () => (await exists(target)) && !(await exists(f.stage)));
  assert.ok((await fs.readFile(target)).equals(f.data), 'the chunk the upload did not bring was copied into the staging file');
  assert.deepEqual((await fsck()).problems, []);
});

test('a wrong chunk with a place is rejected: nothing of it counts as held, the other chunks of the stream do', async () => {
  const f = await largeFile('docs/wrong.bin', 9);
  const bad = f.chunks[3]!;
  async function* stream() {
    for (const c of f.chunks) {
      const data = c === bad ? Buffer.from(c.data).fill(7, 0, 10) : c.data;
      yield { hash: hashToBytes(c.hash), data, place: f.place(c.offset) };
    }
  }
  await assert.rejects(client().uploadChunks(stream()), (err: ConnectError) => err.code === Code.DataLoss && err.rawMessage.includes(bad.hash));
  assert.deepEqual(await missing(f.chunks.map((c) => c.hash)), [bad.hash]);
  await assert.rejects(client().commit({ peerId: 'TESTPER', file: f.info, baseVersion: 0n }), (err: ConnectError) => err.code === Code.FailedPrecondition);
  assert.equal(await exists(path.join(root, f.name)), false);
});

test('a place that cannot be used (leaves the root, past the file end, a small file) stores the chunk as without one', async () => {
  const f = await largeFile('docs/odd.bin', 9);
  const [a, b, c] = f.chunks;
  const places = new Map<string, Place>([
    [a!.hash, { ...f.place(0), path: '../escape.bin' }],
    [b!.hash, f.place(f.data.length)], // would end past the file's size
    [c!.hash, { ...f.place(0), fileSize: 3n * BigInt(MiB) }], // too small to stage
  ]);
  await upload(f, [a!, b!, c!], { place: (x) => places.get(x.hash) });
  assert.deepEqual(await missing([a!.hash, b!.hash, c!.hash]), []);
  for (const x of [a!, b!, c!]) assert.equal(await exists(chunkFile(x.hash)), true, 'stored in a chunk file');
  assert.equal(await exists(path.join(dir.path, 'escape.bin')), false, 'nothing written outside the root');
  assert.equal(await exists(f.stage), false, 'no staging file');
});

test('the start-up sweep removes staging files nothing counts on, temp files of a killed hub, and forgets chunks whose staging file is gone', async () => {
  // Temp files as a hub killed in the middle of writing into its root leaves them (found by bench/soak-sync.ts: a
  // `.balupi-tmp-…` file stayed in the NAS's folder for good); a user's file of a similar name is not ours.
  await fs.mkdir(path.join(root, 'docs', 'deep'), { recursive: true });
  const leftovers = [path.join(root, `${TEMP_PREFIX}0123456789ab-a`), path.join(root, 'docs', 'deep', `${TEMP_PREFIX}ba9876543210-b`)];
  for (const l of leftovers) await fs.writeFile(l, randomBytes(2000));
  const usersOwn = path.join(root, 'docs', 'balupi-tmp-notes.txt');
  await fs.writeFile(usersOwn, 'mine');
  const stray = path.join(root, 'docs', `${STAGE_PREFIX}${'ab'.repeat(32)}`);
  await fs.writeFile(stray, randomBytes(1000));
  const young = path.join(root, 'docs', `${STAGE_PREFIX}${'cd'.repeat(32)}`);
  await fs.writeFile(young, randomBytes(1000)); // written a moment ago: an upload may be about to record it
  const hourAndMore = new Date(Date.now() - 2 * 3600 * 1000);
  await fs.utimes(stray, hourAndMore, hourAndMore);
  const f = await largeFile('docs/lost.bin', 9);
  await upload(f, f.chunks.slice(0, 3));
  assert.deepEqual(await missing(f.chunks.slice(0, 3).map((c) => c.hash)), []);
  await fs.rm(f.stage); // behind the hub's back
  await restartHub();
  assert.equal(await exists(stray), false, 'a staging file without locations, untouched for hours, is removed');
  assert.equal(await exists(young), true, 'one written a moment ago stays');
  for (const l of leftovers) assert.equal(await exists(l), false, `${path.relative(root, l)}: a temp file of an earlier run is removed`);
  assert.equal(await exists(usersOwn), true, "a user's file is not a temp file");
  assert.ok(hub.logs.some((l) => l.msg === 'hub root: removed stale temp and staging files' && l.files === 3 && l.locations === 3));
  assert.equal((await local(hubData, 'GET', '/local/store/stat?name=docs%2Fbalupi-tmp-notes.txt')).json()?.size, 4, "the user's file was read as any other");
  assert.deepEqual(await missing(f.chunks.slice(0, 3).map((c) => c.hash)), f.chunks.slice(0, 3).map((c) => c.hash), 'asked for again');
  // Uploaded again, the file completes as usual.
  await upload(f, f.chunks);
  await client().commit({ peerId: 'TESTPER', file: f.info, baseVersion: 0n });
  await waitFor('the file in the root', async () => (await exists(path.join(root, f.name))) && !(await exists(f.stage)));
  assert.ok((await fs.readFile(path.join(root, f.name))).equals(f.data));
  const problems = (await fsck()).problems as { kind: string }[];
  // gc has not run: the forgotten chunks' rows are unreferenced staged rows, which fsck accepts.
  assert.deepEqual(problems, []);
});

test('two paths with the same large content in one directory share a staging name, but never an inode', async () => {
  const f = await largeFile('twins/a.bin', 9);
  await upload(f, f.chunks);
  const b = { ...f.info, path: 'twins/b.bin' };
  const res = await client().commitBatch({ peerId: 'TESTPER', entries: [{ file: f.info, baseVersion: 0n }, { file: b, baseVersion: 0n }] });
  assert.deepEqual(res.results.map((r) => r.outcome.case), ['committed', 'committed']);
  const [pa, pb] = [path.join(root, 'twins', 'a.bin'), path.join(root, 'twins', 'b.bin')];
  await waitFor('both files in the root, no staging file left', async () => (await exists(pa)) && (await exists(pb)) && !(await exists(f.stage)));
  const [sa, sb] = [await fs.stat(pa), await fs.stat(pb)];
  assert.notEqual(sa.ino, sb.ino, 'an edit of one must not change the other');
  assert.equal(sa.nlink, 1);
  assert.equal(sb.nlink, 1);
  assert.ok((await fs.readFile(pa)).equals(f.data));
  assert.ok((await fs.readFile(pb)).equals(f.data));
  assert.deepEqual((await fsck()).problems, []);
});

test("a commit whose whole-file hash its chunks do not have is refused, even when they were staged under that hash, in order", async () => {
  // The hub checks a version's whole-file hash at commit. Chunks staged in order vouch for it without a read-back
  // (whole-hashes.ts), but only for the hash they really have: here the peer places real chunks under another file's
  // hash and commits them under that hash. The commit must read them back and fail; the path must stay unwritten.
  const f = await largeFile('video/forged.mp4', 9);
  const other = await blake(randomBytes(64));
  const res = await upload(f, f.chunks, { place: (c) => ({ ...f.place(c.offset), fileHash: hashToBytes(other) }) });
  assert.equal(res.stored, 9, 'each chunk itself is right, so each is stored');
  const forged = { ...f.info, hash: hashToBytes(other) };
  await assert.rejects(client().commit({ peerId: 'TESTPER', file: forged, baseVersion: 0n }), (err: ConnectError) => {
    assert.equal(err.code, Code.DataLoss);
    assert.match(err.rawMessage, /hash to/);
    return true;
  });
  assert.equal(await exists(path.join(root, f.name)), false, 'nothing written at the path');
  // The same chunks under their real hash: the commit goes through (they are held already, nothing is re-sent).
  assert.deepEqual(await missing(f.chunks.map((c) => c.hash)), []);
  assert.equal((await client().commit({ peerId: 'TESTPER', file: f.info, baseVersion: 0n })).status, CommitStatus.OK);
  const target = path.join(root, f.name);
  await waitFor('the file in the root', () => exists(target));
  assert.ok((await fs.readFile(target)).equals(f.data));
});
