// A page of the hub's feed on the Pi: records of paths new to the Pi go through one store transaction and one state
// write (applyNewRemotes); everything else (a path the Pi has, a deletion, a record the batch refuses) is left for the
// per-record applyRemote, which resolves conflicts. Real store and LevelDB in this process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyNewRemotes, applyRemote, fetchWanted } from '../../src/sync/pull.ts';
import { pushPath } from '../../src/sync/push.ts';
import { isSyncError } from '../../src/sync/errors.ts';
import { readAll } from '../store/temp-store.ts';
import type { ChunkClient } from '../../src/sync/transfer.ts';
import { UploadQueue } from '../../src/sync/upload-queue.ts';
import { PathLocks } from '../../src/sync/locks.ts';
import type { SyncModel } from '../../src/sync/model.ts';
import type { RemoteFile } from '../../src/sync/wire.ts';
import type { FileRecord } from '../../store/index.ts';
import { randomBytes } from 'node:crypto';
import { bytes, node, silent, type Node } from './in-process.ts';
import { LARGE_FILE_BYTES } from '../../src/sync/push-lanes.ts';
import { Wakeup } from '../../src/sync/wakeup.ts';

const remote = (r: FileRecord): RemoteFile => ({
  path: r.path, size: r.size, mtimeMs: r.mtimeMs, mode: r.mode, hash: r.hash, sha256: r.sha256, chunks: r.chunks, version: r.version, seq: r.seq, deleted: r.deleted,
});

/** A pi's sync model and a hub, in this process, both closed afterwards. */
async function withPeers(fn: (m: SyncModel, pi: Node, hub: Node) => Promise<void>): Promise<void> {
  const [pi, hub] = [await node('pi'), await node('hub')];
  try {
    const queue = await UploadQueue.open(pi.db, { minMs: 100, maxMs: 1000 });
    await fn({ store: pi.store, state: pi.state, queue, locks: new PathLocks(), log: silent, hotThreshold: 0.5 }, pi, hub);
  } finally {
    await pi.close();
    await hub.close();
  }
}

test('new paths of a feed page are applied together: remote records, pinned under pinned dirs, bases and wants written; the rest is left for applyRemote', async () => {
  await withPeers(async (m, pi, hub) => {
    await pi.state.pinDir('keep', true);
    await pi.store.ingest('mine.txt', bytes('the pi version'));
    await pi.store.ingest('x', bytes('a file where the hub has a directory'));
    const page: RemoteFile[] = [];
    for (const [name, body] of [['a.txt', 'A'], ['keep/b.bin', 'B'], ['keep/c/d.bin', 'D'], ['mine.txt', 'the hub version'], ['x/y.txt', 'Y'], ['gone.txt', 'G']]) {
      page.push(remote((await hub.store.ingest(name!, bytes(body!))).file));
    }
    const gone = remote(await hub.store.delete('gone.txt'));
    page.splice(page.findIndex((r) => r.path === 'gone.txt'), 1, gone);
    const seqBefore = pi.store.seq;

    const { applied, rest } = await applyNewRemotes(m, page);

    assert.equal(applied, 3);
    assert.deepEqual(rest.map((r) => r.path).sort(), ['gone.txt', 'mine.txt', 'x/y.txt'], 'a path the pi has, a deletion, and a path the batch refused (x is a file here)');
    assert.equal(pi.store.seq, seqBefore + 3, 'one new version each');
    const a = (await pi.store.record('a.txt'))!;
    assert.deepEqual([a.state, a.pinned, a.hash], ['remote', false, page[0]!.hash]);
    for (const p of ['keep/b.bin', 'keep/c/d.bin']) {
      const r = (await pi.store.record(p))!;
      assert.deepEqual([r.state, r.pinned], ['remote', true], `${p} is pinned with its first version`);
    }
    assert.deepEqual((await pi.state.wantedBytes('small')).sort(), ['keep/b.bin', 'keep/c/d.bin'], 'only pinned new files are fetched');
    assert.deepEqual(await pi.state.getBase('a.txt'), { version: page[0]!.version, hash: page[0]!.hash, deleted: false });
    assert.equal(await pi.state.getBase('mine.txt'), undefined, 'nothing written for records left to applyRemote');
    assert.equal((await pi.store.record('mine.txt'))!.hash !== page[3]!.hash, true, 'the pi version is untouched');
    assert.deepEqual((await pi.store.fsck()).problems, []);

    // The same page again: nothing is new any more.
    const again = await applyNewRemotes(m, page);
    assert.equal(again.applied, 0);
    assert.equal(again.rest.length, page.length);
  });
});

test('a feed record older than the hub version the pi knows (read before its push was answered, applied after) changes nothing', async () => {
  await withPeers(async (m, pi, hub) => {
    await pi.store.ingest('c.txt', bytes('the pi edit, newer'), { mtimeMs: 5000 });
    // Another peer's version reached the hub first; the feed carries it to the pi while the pi's push is on its way.
    const stale = remote((await hub.store.ingest('c.txt', bytes('the other edit, older'), { mtimeMs: 1000 })).file);
    assert.equal(await pushPath(m, hub.client, 'c.txt'), 'conflict', 'the hub keeps both; the pi\'s newer edit wins');
    const base = await pi.state.getBase('c.txt');
    assert.ok(base && base.version > stale.version);
    const before = (await pi.store.record('c.txt'))!;

    assert.equal(await applyRemote(m, stale), 'same');
    const after = (await pi.store.record('c.txt'))!;
    assert.deepEqual([after.version, after.state, after.hash], [before.version, 'local', before.hash], 'the pi\'s file is neither replaced nor dropped');
    assert.deepEqual(await pi.state.getBase('c.txt'), base, 'the base stays the hub\'s newer version (a next push meets no false conflict)');
    assert.equal((await pi.state.wantedBytes('small')).length, 0, 'nothing to fetch');
  });
});

test('a wanted file that changed on the hub since its record came: the rest of its round is fetched, it stays wanted, and its new record gets it', async () => {
  await withPeers(async (m, pi, hub) => {
    await pi.state.pinDir('', true);
    const page: RemoteFile[] = [];
    for (const name of ['a.bin', 'b.bin', 'c.bin']) page.push(remote((await hub.store.ingest(name, bytes(`${name} `.repeat(50_000)))).file));
    assert.equal((await applyNewRemotes(m, page)).applied, 3);
    // b.bin changes on the hub before the pi fetches it: the hub no longer has the chunks its record lists.
    const newer = remote((await hub.store.ingest('b.bin', bytes('b.bin, edited on the NAS'))).file);

    await assert.rejects(fetchWanted(m, hub.client), (err) => isSyncError(err, 'chunk_gone') && (err.details?.paths as string[]).join() === 'b.bin');
    assert.deepEqual([(await pi.store.record('a.bin'))!.state, (await pi.store.record('c.bin'))!.state], ['local', 'local'], 'the files around it were fetched');
    assert.equal((await pi.store.record('b.bin'))!.state, 'remote');
    assert.deepEqual(await pi.state.wantedBytes('small'), ['b.bin'], 'still wanted');

    assert.equal(await applyRemote(m, newer), 'applied');
    assert.deepEqual(await fetchWanted(m, hub.client), { files: 1, bytes: newer.size });
    assert.equal((await pi.store.read('b.bin').then(readAll)).toString(), 'b.bin, edited on the NAS');
    assert.equal(await pi.state.countWanted(), 0);
  });
});

test('a newer version of a wanted file that the feed brings while its round downloads the older one: it stays wanted and is fetched', async () => {
  // Found by bench/soak-sync.ts (two pis, seed 1108): the round dropped the want of every file it had started with,
  // the newer version's too, so that version stayed remote on the pi for good (no later record came to want it).
  await withPeers(async (m, pi, hub) => {
    await pi.state.pinDir('', true);
    const older = remote((await hub.store.ingest('g.txt', bytes('the older version '.repeat(1000)))).file);
    assert.equal((await applyNewRemotes(m, [older])).applied, 1);
    let newer: RemoteFile | undefined;
    const client = {
      ...hub.client,
      async *downloadChunks(req, opts) {
        // The older version's chunks are already on their way (the hub holds them in a copy made before its edit).
        if (!newer) {
          await hub.store.commitFile('g.sync-conflict-copy.txt', { ...older, chunks: older.chunks }, { baseVersion: 0 });
          newer = remote((await hub.store.ingest('g.txt', bytes('the newer version, which won on the hub'))).file);
          assert.equal(await applyRemote(m, newer), 'applied');
        }
        yield* hub.client.downloadChunks(req, opts);
      },
    } as ChunkClient;

    await fetchWanted(m, client);

    const rec = (await pi.store.record('g.txt'))!;
    assert.equal(rec.hash, newer!.hash);
    assert.equal(rec.state, 'local', 'the newer version was fetched too');
    assert.equal((await pi.store.read('g.txt').then(readAll)).toString(), 'the newer version, which won on the hub');
    assert.equal(await pi.state.countWanted(), 0);
  });
});

test('fetching wanted bytes in rounds of 1,024 files: every file becomes local, and a want added during a round is fetched too', async () => {
  await withPeers(async (m, pi, hub) => {
    await pi.state.pinDir('', true);
    const page: RemoteFile[] = [];
    for (let i = 0; i < 2_100; i++) page.push(remote((await hub.store.ingest(`f/${String(i).padStart(4, '0')}.txt`, bytes(`file ${i}`))).file));
    assert.equal((await applyNewRemotes(m, page)).applied, page.length);
    // While the second round downloads, a new file appears whose path sorts before every path fetched so far.
    let calls = 0;
    const client: ChunkClient = {
      ...hub.client,
      async *downloadChunks(req, opts) {
        if (++calls === 2) assert.equal((await applyNewRemotes(m, [remote((await hub.store.ingest('a/late.txt', bytes('late'))).file)])).applied, 1);
        yield* hub.client.downloadChunks(req, opts);
      },
    } as ChunkClient;

    const got = await fetchWanted(m, client);

    assert.equal(got.files, page.length + 1);
    assert.ok(calls >= 3, `at least three rounds (${calls} downloads)`);
    assert.equal(await pi.state.countWanted(), 0);
    assert.equal(pi.store.stats().localFiles, page.length + 1);
    assert.equal((await pi.store.record('a/late.txt'))!.state, 'local');
    assert.deepEqual((await pi.store.fsck()).problems, []);
  });
});

/**
 * A ChunkClient over `hub` that records each download as 'large' (it asks for a chunk of `large`) or 'small', and holds
 * the download numbered `hold` (1-based) until one of the other kind has begun. If the lanes did not run side by side,
 * that would never happen: the test then fails with the timer's message instead of waiting forever.
 */
function gatedClient(hub: Node, large: () => Set<string>, hold: number): { client: ChunkClient; calls: ('large' | 'small')[] } {
  const calls: ('large' | 'small')[] = [];
  const began = { large: Promise.withResolvers<void>(), small: Promise.withResolvers<void>() };
  const client = {
    ...hub.client,
    async *downloadChunks(req, opts) {
      const kind = req.hashes.some((h) => large().has(Buffer.from(h).toString('hex'))) ? 'large' : 'small';
      calls.push(kind);
      began[kind].resolve();
      if (calls.length === hold) {
        const other = kind === 'large' ? 'small' : 'large';
        const t = setTimeout(() => began[other].reject(new Error(`a ${kind} download was held and no ${other} one began meanwhile: the lanes did not overlap`)), 20_000);
        await began[other].promise.finally(() => clearTimeout(t));
      }
      yield* hub.client.downloadChunks(req, opts);
    },
  } as ChunkClient;
  return { client, calls };
}

test('fetch lanes: a large wanted file is downloaded while the rounds of small files run, not after them', async () => {
  await withPeers(async (m, pi, hub) => {
    await pi.state.pinDir('', true);
    // Paths of the small files sort before the large one: a single lane in path order would fetch it last.
    const page: RemoteFile[] = [];
    for (let i = 0; i < 1_500; i++) page.push(remote((await hub.store.ingest(`a/${String(i).padStart(4, '0')}.txt`, bytes(`file ${i}`))).file));
    const big = remote((await hub.store.ingest('z/video.mp4', bytes(randomBytes(LARGE_FILE_BYTES + 1024)))).file);
    page.push(big);
    assert.equal((await applyNewRemotes(m, page)).applied, page.length);
    assert.deepEqual(await pi.state.wantedBytes('large'), ['z/video.mp4'], 'the large file is wanted in its own lane');
    // Whichever lane asks first is held until the other one has asked too.
    const { client, calls } = gatedClient(hub, () => new Set(big.chunks.map((c) => c.hash)), 1);

    const got = await fetchWanted(m, client);

    assert.equal(got.files, page.length);
    assert.deepEqual(new Set(calls.slice(0, 2)), new Set(['large', 'small']), `both lanes began before either went on (${calls.join(', ')})`);
    assert.equal(await pi.state.countWanted(), 0);
    assert.equal((await pi.store.record('z/video.mp4'))!.state, 'local');
    assert.deepEqual((await pi.store.fsck()).problems, []);
  });
});

/**
 * `smalls` small files wanted on the pi, then a large one whose record is applied during the first download (a later
 * feed page arriving while the first round runs), and `wantsAdded` notified then, if given, as the peer does for each
 * page. Download number `hold` is held until one of the other kind has begun (gatedClient).
 */
async function largeWantedDuringFirstRound(m: SyncModel, hub: Node, smalls: number, hold: number, wantsAdded?: Wakeup) {
  const page: RemoteFile[] = [];
  for (let i = 0; i < smalls; i++) page.push(remote((await hub.store.ingest(`a/${String(i).padStart(4, '0')}.txt`, bytes(`file ${i}`))).file));
  assert.equal((await applyNewRemotes(m, page)).applied, page.length);
  const big = remote((await hub.store.ingest('z/video.mp4', bytes(randomBytes(LARGE_FILE_BYTES + 1024)))).file);
  const gated = gatedClient(hub, () => new Set(big.chunks.map((c) => c.hash)), hold);
  let added = false;
  const client = {
    ...gated.client,
    async *downloadChunks(req, opts) {
      if (!added) {
        added = true;
        assert.equal((await applyNewRemotes(m, [big])).applied, 1);
        wantsAdded?.notify();
      }
      yield* gated.client.downloadChunks(req, opts);
    },
  } as ChunkClient;
  return { files: page.length + 1, calls: gated.calls, client };
}

test('fetch lanes: a large file wanted while only small ones are being fetched starts after the running round, not after all of them', async () => {
  await withPeers(async (m, pi, hub) => {
    await pi.state.pinDir('', true);
    // Without a wake-up the large lane (it found nothing and waits) looks again when the first round of small files
    // ends; the second round is held until the large file's download has begun.
    const { files, calls, client } = await largeWantedDuringFirstRound(m, hub, 2_100, 2);

    const got = await fetchWanted(m, client);

    assert.equal(got.files, files);
    assert.deepEqual(calls.slice(0, 2), ['small', 'large'], 'the large file went right after the round during which it was wanted');
    assert.equal(await pi.state.countWanted(), 0);
    assert.equal(pi.store.stats().localFiles, files);
    assert.deepEqual((await pi.store.fsck()).problems, []);
  });
});

test('fetch lanes: a large file wanted during a round of small files starts at once when the wants are announced, not after that round', async () => {
  await withPeers(async (m, pi, hub) => {
    await pi.state.pinDir('', true);
    // The first (small) download is held until a large one has begun; inside it the large file's record is applied
    // and announced: the idle large lane must start now. Waiting for the small round instead never releases the
    // hold, and the gate fails the test after 20 s.
    const wantsAdded = new Wakeup();
    const { files, calls, client } = await largeWantedDuringFirstRound(m, hub, 300, 1, wantsAdded);

    const got = await fetchWanted(m, client, undefined, wantsAdded);

    assert.equal(got.files, files);
    assert.deepEqual(calls.slice(0, 2), ['small', 'large'], 'the large download began while the first small round was held');
    assert.equal(await pi.state.countWanted(), 0);
    assert.equal(pi.store.stats().localFiles, files);
    assert.deepEqual((await pi.store.fsck()).problems, []);
  });
});
