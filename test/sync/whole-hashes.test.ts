// Staging-file writes in process: chunks go into a pushed file's staging file around the page cache where the file
// system allows (and plainly, without losing a byte, where it refuses), and their whole-file hash is taken as they
// arrive, so that a commit can skip reading the file back: only for exactly the chunk list that arrived, in order,
// hashing to the file's own hash. Anything else must not be vouched for.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { openStore } from '../../store/index.ts';
import { localRun, WholeHashes, workerRun, type RunHasher } from '../../src/sync/whole-hashes.ts';
import { Staging, type StagedWrite } from '../../src/sync/staging.ts';
import { DirSyncs } from '../../src/sync/root-files.ts';
import { hashToBytes } from '../../src/sync/wire.ts';
import { tempDir } from '../helpers/daemon-process.ts';
import { blake } from './peers.ts';

/** A file cut at unaligned places (as content-defined chunking cuts), with its chunks' hashes and offsets. */
async function file(size: number, cuts: number[]) {
  const data = randomBytes(size);
  const bounds = [0, ...cuts, size];
  const chunks = [];
  for (let i = 0; i + 1 < bounds.length; i++) {
    const piece = data.subarray(bounds[i]!, bounds[i + 1]!);
    chunks.push({ hash: await blake(piece), size: piece.length, offset: bounds[i]!, data: piece });
  }
  return { data, hash: await blake(data), chunks };
}

for (const where of ['in the store worker', 'on the main thread'] as const) {
  test(`WholeHashes (${where}) vouches only for the exact chunk list that arrived in order and hashed to the whole-file hash`, async () => {
    const dir = await tempDir('balupi-whole-');
    const store = await openStore({ dir: dir.path });
    const open = (): RunHasher => {
      if (where === 'on the main thread') return localRun();
      const session = store.hashSession();
      assert.ok(session, 'the store has a worker');
      return workerRun(session);
    };
    try {
      const f = await file(100_000, [10_001, 50_003, 77_777]);
      const list = f.chunks.map(({ hash, size }) => ({ hash, size }));
      /** Checks the chunks in `order` the way an upload does (each awaited, as the batcher does); returns the outcomes. */
      const feed = async (w: WholeHashes, stage: string, order: number[], fileHash = f.hash) => {
        const out = [];
        for (const i of order) {
          const c = f.chunks[i]!;
          const r = await w.check(stage, fileHash, f.data.length, c.offset, c.hash, Buffer.from(c.data));
          if (r) assert.ok(Buffer.from(r.data).equals(c.data), 'the bytes come back intact');
          out.push(r?.ok);
        }
        return out;
      };

      const w = new WholeHashes(open);
      assert.equal(w.vouches('s', list), false, 'nothing arrived');
      assert.deepEqual(await feed(w, 's', [0, 1, 2]), [true, true, true]);
      assert.equal(w.vouches('s', list), false, 'not all of it arrived');
      await feed(w, 's', [3]);
      assert.equal(w.vouches('s', list), true, 'all of it, in order');
      assert.equal(w.vouches('s', [...list.slice(0, 3)]), false, 'a shorter list');
      assert.equal(w.vouches('s', [list[1]!, list[0]!, list[2]!, list[3]!]), false, 'the same chunks in another order');
      assert.equal(w.vouches('s', list.map((c, i) => (i === 2 ? { ...c, size: c.size + 1 } : c))), false, 'a size changed');
      assert.equal(w.vouches('other', list), false, 'another staging file');

      const gap = new WholeHashes(open);
      assert.deepEqual(await feed(gap, 's', [0, 2, 3]), [true, undefined, undefined], 'past the gap the caller checks chunks itself');
      assert.equal(gap.vouches('s', list), false, 'a chunk skipped (a resumed upload): not vouched for');
      const shuffled = new WholeHashes(open);
      await feed(shuffled, 's', [0, 2, 1, 3]);
      assert.equal(shuffled.vouches('s', list), false, 'out of order: not vouched for');
      const wrong = new WholeHashes(open);
      await feed(wrong, 's', [0, 1, 2, 3], await blake(randomBytes(10)));
      assert.equal(wrong.vouches('s', list), false, 'the chunks do not hash to the whole-file hash in the staging name');

      const again = new WholeHashes(open);
      await feed(again, 's', [0, 1, 0, 1, 2, 3]);
      assert.equal(again.vouches('s', list), true, 'an upload that starts over from offset 0 is hashed afresh');

      // Input: a chunk whose bytes are not its hash's. It is refused, and the file is not vouched for even though the
      // chunks that follow are right.
      const bad = new WholeHashes(open);
      const c1 = f.chunks[1]!;
      await feed(bad, 's', [0]);
      const forged = await bad.check('s', f.hash, f.data.length, c1.offset, c1.hash, randomBytes(c1.size));
      assert.equal(forged?.ok, false, 'a wrong chunk is refused');
      await feed(bad, 's', [2, 3]);
      assert.equal(bad.vouches('s', list), false, 'a file with a refused chunk is not vouched for');
    } finally {
      await store.close();
      await dir.remove();
    }
  });
}

test('staging writes: unaligned chunks land byte for byte, directly or (where the file system refuses O_DIRECT) plainly, and vouch for their commit', async () => {
  const dir = await tempDir('balupi-stage-writes-');
  try {
    const f = await file(9 * 1024 * 1024 + 333, [4095, 1_000_001, 3_333_333, 4_194_304, 7_000_000]);
    for (const refuse of [false, true]) {
      const root = path.join(dir.path, `root-${refuse}`);
      await fs.mkdir(root);
      const store = await openStore({ dir: path.join(dir.path, `store-${refuse}`), backingDir: root });
      try {
        let opened = 0;
        const einval = () => Object.assign(new Error('EINVAL: invalid argument, open'), { code: 'EINVAL' });
        const staging = new Staging(root, store, new DirSyncs(), refuse ? { openDirect: async () => (opened++, Promise.reject(einval())) } : {});
        const place = (offset: number) => ({ path: 'v/big.bin', fileSize: BigInt(f.data.length), fileHash: hashToBytes(f.hash), offset: BigInt(offset) });
        const w = staging.writer();
        const writes: StagedWrite[] = f.chunks.map((c) => ({ stage: w.stageOf(place(c.offset), c.size)!, hash: c.hash, data: Buffer.from(c.data), offset: c.offset, fileSize: f.data.length }));
        for (const x of writes) assert.equal(await staging.check(x), true, 'each chunk checks, as an upload checks it before batching');
        // Two batches, as an upload call's batcher hands them over.
        await w.write(writes.slice(0, 3));
        await w.write(writes.slice(3));
        await w.close();
        const stage = writes[0]!.stage;
        assert.ok((await fs.readFile(path.join(root, ...stage.split('/')))).equals(f.data), `bytes exact (direct refused: ${refuse})`);
        assert.deepEqual(await store.locatedAt(stage, f.chunks.map((c) => c.hash)), f.chunks.map((c) => c.offset), 'each chunk recorded where it lies');
        assert.equal(staging.direct.allowed, !refuse, 'a refusal turns direct writes off');
        if (refuse) assert.equal(opened, 1, 'and they are not asked for again');
        assert.equal(staging.direct.arena.unitsInUse, 0, 'every slot came back');
        const remote = { path: 'v/big.bin', size: f.data.length, mtimeMs: 0, mode: 0o644, hash: f.hash, sha256: null, chunks: f.chunks.map(({ hash, size }) => ({ hash, size })), version: 0, seq: 0, deleted: false };
        assert.equal(staging.vouches(remote), true, 'the chunks arrived in order: the commit need not read them back');
        assert.equal(staging.vouches({ ...remote, path: 'w/big.bin' }), false, 'not for another path');
      } finally {
        await store.close();
      }
    }
  } finally {
    await dir.remove();
  }
});
