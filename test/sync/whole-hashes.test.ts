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
import { WholeHashes } from '../../src/sync/whole-hashes.ts';
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

test('WholeHashes vouches only for the exact chunk list that arrived in order and hashed to the whole-file hash', async () => {
  const f = await file(100_000, [10_001, 50_003, 77_777]);
  const list = f.chunks.map(({ hash, size }) => ({ hash, size }));
  const feed = (w: WholeHashes, stage: string, order: number[], fileHash = f.hash) => {
    for (const i of order) w.add(stage, fileHash, f.data.length, f.chunks[i]!.offset, f.chunks[i]!.hash, f.chunks[i]!.data);
  };

  const w = new WholeHashes();
  assert.equal(w.vouches('s', list), false, 'nothing arrived');
  feed(w, 's', [0, 1, 2]);
  assert.equal(w.vouches('s', list), false, 'not all of it arrived');
  feed(w, 's', [3]);
  assert.equal(w.vouches('s', list), true, 'all of it, in order');
  assert.equal(w.vouches('s', [...list.slice(0, 3)]), false, 'a shorter list');
  assert.equal(w.vouches('s', [list[1]!, list[0]!, list[2]!, list[3]!]), false, 'the same chunks in another order');
  assert.equal(w.vouches('s', list.map((c, i) => (i === 2 ? { ...c, size: c.size + 1 } : c))), false, 'a size changed');
  assert.equal(w.vouches('other', list), false, 'another staging file');

  const gap = new WholeHashes();
  feed(gap, 's', [0, 2, 3]);
  assert.equal(gap.vouches('s', list), false, 'a chunk skipped (a resumed upload): not vouched for');
  const shuffled = new WholeHashes();
  feed(shuffled, 's', [0, 2, 1, 3]);
  assert.equal(shuffled.vouches('s', list), false, 'out of order: not vouched for');
  const wrong = new WholeHashes();
  feed(wrong, 's', [0, 1, 2, 3], await blake(randomBytes(10)));
  assert.equal(wrong.vouches('s', list), false, 'the chunks do not hash to the whole-file hash in the staging name');

  const again = new WholeHashes();
  feed(again, 's', [0, 1, 0, 1, 2, 3]);
  assert.equal(again.vouches('s', list), true, 'an upload that starts over from offset 0 is hashed afresh');
});

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
        const writes: StagedWrite[] = f.chunks.map((c) => ({ stage: w.stageOf(place(c.offset), c.size)!, hash: c.hash, data: c.data, offset: c.offset, fileSize: f.data.length }));
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
