// Large chunk files and the hub's large root files are written around the page cache (store/direct-io.ts): whole
// blocks from aligned memory with O_DIRECT, the last partial block through an ordinary descriptor. These tests write
// real files with O_DIRECT on the test machine's disk and read them back, and refuse or fail the direct writes through
// the injectable openers: a file system without O_DIRECT (EINVAL) must fall back without losing a byte, a full disk
// must fail cleanly, and every arena slot must come back. Sources come in pieces of irregular sizes (temp-store.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import fsSync from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { AlignedArena, blake3, DirectWriter, isStoreError, O_DIRECT, openStore, writeAll, writeSpanDirect, type ChunkIo } from '../../store/index.ts';
import { openFd } from '../../store/fd-calls.ts';
import { DirectWrites, writeAtomic } from '../../src/sync/root-files.ts';
import { prngBytes, readAll, source, withStore, withTempDir } from './temp-store.ts';

const b3 = blake3();
const chunk = (size: number, seed: number) => {
  const data = prngBytes(size, seed);
  return { hash: b3.hash(data).toString('hex'), data };
};
const { O_WRONLY, O_CREAT, O_EXCL, O_DSYNC } = fsSync.constants;
const einval = () => Object.assign(new Error('EINVAL: invalid argument, open'), { code: 'EINVAL' });

/** The real direct opener, counting its calls; `fail` makes the next calls fail instead. */
function directOpener(flags: number) {
  const o = {
    calls: 0,
    fail: undefined as (() => Error) | undefined,
    open: async (p: string) => {
      o.calls += 1;
      if (o.fail) throw o.fail();
      return openFd(p, flags);
    },
  };
  return o;
}

test('the platform has O_DIRECT (Linux), so the direct paths below are the ones exercised', () => {
  assert.equal(typeof O_DIRECT, 'number');
});

test('AlignedArena.take: slots are first-fit, never overlap, are refused (take does not wait) when no run is free, and come back', () => {
  const arena = new AlignedArena(4 * 64 * 1024);
  const a = arena.take(100_000)!; // 2 units
  const b = arena.take(64 * 1024)!; // 1 unit
  assert.ok(a && b);
  assert.equal(arena.take(128 * 1024), undefined, 'one unit left, two asked for');
  a.bytes.fill(1);
  b.bytes.fill(2);
  assert.ok(a.bytes.every((x) => x === 1), 'filling one slot leaves the other alone');
  a.release();
  a.release(); // a second release is harmless
  const c = arena.take(128 * 1024)!;
  assert.ok(c, 'the freed run at the start serves the next request');
  assert.equal(c.bytes.byteOffset, 0);
  assert.equal(arena.unitsInUse, 3);
  b.release();
  c.release();
  assert.equal(arena.unitsInUse, 0);
});

test('AlignedArena.acquire: waits in order for room, is served as slots come back, refuses only what can never fit', async () => {
  const arena = new AlignedArena(2 * 64 * 1024);
  const first = (await arena.acquire(100_000))!; // both units
  const order: string[] = [];
  const second = arena.acquire(64 * 1024).then((s) => (order.push('second'), s!));
  const third = arena.acquire(64 * 1024).then((s) => (order.push('third'), s!));
  assert.equal(arena.take(1), undefined, 'nothing free while the first holds the arena');
  assert.equal(await arena.acquire(3 * 64 * 1024), undefined, 'larger than the arena: refused at once');
  first.release();
  const [a, b] = await Promise.all([second, third]);
  assert.deepEqual(order, ['second', 'third']);
  assert.notEqual(a.bytes.byteOffset, b.bytes.byteOffset);
  a.release();
  b.release();
  assert.equal(arena.unitsInUse, 0);
});

test('DirectWriter: files of awkward lengths written directly in uneven pieces read back byte for byte', async () => {
  await withTempDir(async (dir) => {
    const arena = new AlignedArena(256 * 1024);
    for (const [i, len] of [1, 4095, 4096, 3 * 4096, 130_001, 2 * 1024 * 1024 + 777].entries()) {
      const data = prngBytes(len, 50 + i);
      const file = path.join(dir, `f${i}`);
      const slot = arena.take(256 * 1024)!;
      const fd = await openFd(file, O_WRONLY | O_CREAT | O_EXCL | O_DIRECT!);
      try {
        const w = new DirectWriter(fd, slot);
        for await (const piece of source(data)) await w.write(piece as Buffer);
        const rest = await w.end();
        assert.equal(rest.at % 4096, 0, 'the direct part ends on a block boundary');
        assert.equal(rest.at + rest.tail.length, len);
        const tail = await openFd(file, O_WRONLY);
        await writeAll(tail, rest.tail, rest.at);
        fsSync.closeSync(tail);
      } finally {
        fsSync.closeSync(fd);
        slot.release();
      }
      assert.deepEqual(await fs.readFile(file), Buffer.from(data), `length ${len}`);
    }
    assert.equal(arena.unitsInUse, 0);
  });
});

test('writeSpanDirect: pieces at any offset, in any order, concurrently, through a direct and a plain descriptor, read back byte for byte', async () => {
  await withTempDir(async (dir) => {
    // Pieces of a file the way a push's chunks arrive: cut at content-defined, unaligned places, some shorter than a
    // block, one larger than the whole arena (written plainly), written two at a time and out of order.
    const arena = new AlignedArena(1024 * 1024);
    const data = prngBytes(5 * 1024 * 1024 + 1234, 77);
    const cuts = [0, 1, 4095, 4097, 8192, 8200, 100_003, 700_000, 1_500_000, 4_000_000, data.length];
    const spans = cuts.slice(1).map((end, i) => ({ offset: cuts[i]!, data: data.subarray(cuts[i]!, end) }));
    const order = [3, 0, 7, 1, 9, 2, 5, 4, 8, 6];
    const file = path.join(dir, 'f');
    const fd = await openFd(file, O_WRONLY | O_CREAT | O_EXCL);
    const direct = await openFd(file, O_WRONLY | O_DIRECT!);
    try {
      for (let i = 0; i < order.length; i += 2) {
        await Promise.all(order.slice(i, i + 2).map((k) => writeSpanDirect(fd, direct, arena, spans[k]!.data, spans[k]!.offset)));
      }
    } finally {
      fsSync.closeSync(fd);
      fsSync.closeSync(direct);
    }
    assert.ok(spans.some((s) => s.data.length > 1024 * 1024), 'one span is larger than the arena');
    assert.deepEqual(await fs.readFile(file), Buffer.from(data));
    assert.equal(arena.unitsInUse, 0, 'every slot came back');
  });
});

test('writeSpanDirect: a run of pieces that follow on from each other (cut at unaligned places, some within one block) is one span, byte for byte; a run larger than the arena goes plainly', async () => {
  await withTempDir(async (dir) => {
    const arena = new AlignedArena(1024 * 1024);
    const data = prngBytes(3 * 1024 * 1024 + 777, 78);
    const piecesOf = (from: number, cuts: number[]) => [from, ...cuts].map((c, i, all) => data.subarray(c, all[i + 1] ?? cuts.at(-1)!)).slice(0, -1);
    const file = path.join(dir, 'f');
    const fd = await openFd(file, O_WRONLY | O_CREAT | O_EXCL);
    const direct = await openFd(file, O_WRONLY | O_DIRECT!);
    try {
      // [10, 700_010): three pieces, the first two ends inside one block; then [700_010, end): larger than the arena
      await writeSpanDirect(fd, direct, arena, piecesOf(10, [100, 3000, 700_010]), 10);
      await writeSpanDirect(fd, direct, arena, piecesOf(700_010, [1_500_000, 2_900_000, data.length]), 700_010);
      await writeAll(fd, data.subarray(0, 10), 0);
    } finally {
      fsSync.closeSync(fd);
      fsSync.closeSync(direct);
    }
    assert.deepEqual(await fs.readFile(file), Buffer.from(data));
    assert.equal(arena.unitsInUse, 0, 'every slot came back');
  });
});

test('writeSpanDirect: a direct write that fails throws before anything of the span is written plainly (the caller falls back to a plain write of it all)', async () => {
  await withTempDir(async (dir) => {
    const arena = new AlignedArena(1024 * 1024);
    const file = path.join(dir, 'f');
    const fd = await openFd(file, O_WRONLY | O_CREAT | O_EXCL);
    // A direct descriptor's write from a misaligned offset is what such a file system answers with EINVAL; here a
    // descriptor opened read-only stands in for it (EBADF), and the span must fail without a partial plain write.
    const direct = await openFd(file, fsSync.constants.O_RDONLY);
    try {
      await assert.rejects(writeSpanDirect(fd, direct, arena, prngBytes(20_000, 5), 10), { code: 'EBADF' });
    } finally {
      fsSync.closeSync(fd);
      fsSync.closeSync(direct);
    }
    assert.equal((await fs.stat(file)).size, 0, 'nothing written');
    assert.equal(arena.unitsInUse, 0);
  });
});

test('chunk files: large chunks go through O_DIRECT, small ones do not; all read back verified, no temp file left', async () => {
  const direct = directOpener(O_WRONLY | O_CREAT | O_EXCL | O_DSYNC | O_DIRECT!);
  await withStore({ chunkIo: { openDirect: direct.open } }, async (store, dir) => {
    const large = [chunk(1024 * 1024 + 123, 1), chunk(300_000, 2), chunk(4 * 1024 * 1024, 3)];
    const small = [chunk(20_000, 4), chunk(256 * 1024, 5)];
    assert.deepEqual(await store.putChunks([...large, ...small]), ['stored', 'stored', 'stored', 'stored', 'stored']);
    assert.equal(direct.calls, 3, 'one direct open per large chunk, none for the small ones');
    const file = prngBytes(3 * 1024 * 1024 + 5, 6);
    await store.ingest('big.bin', source(file), { mtimeMs: 1 });
    assert.ok(direct.calls > 3, 'an ingest writes its large chunks directly too');
    for (const c of [...large, ...small]) assert.deepEqual(await store.getChunk(c.hash), Buffer.from(c.data));
    assert.deepEqual(await readAll((await store.openRead('big.bin')).stream), file);
    assert.deepEqual(await fs.readdir(path.join(dir, 'tmp')), []);
    assert.deepEqual((await store.fsck()).problems, []);
  });
});

test('chunk files of a store with a backing folder (the hub) go through the page cache: read back at once, then dropped', async () => {
  const direct = directOpener(O_WRONLY | O_CREAT | O_EXCL | O_DSYNC | O_DIRECT!);
  await withTempDir(async (root) => {
    const backing = path.join(root, 'folder');
    await fs.mkdir(backing);
    await withStore({ chunkIo: { openDirect: direct.open }, backingDir: backing }, async (store) => {
      const large = [chunk(1024 * 1024 + 123, 7), chunk(4 * 1024 * 1024, 8)];
      assert.deepEqual(await store.putChunks(large), ['stored', 'stored']);
      assert.equal(direct.calls, 0, 'no direct open');
      for (const c of large) assert.deepEqual(await store.getChunk(c.hash), Buffer.from(c.data));
      assert.deepEqual((await store.fsck()).problems, []);
    });
  });
});

test('chunk files: a file system that refuses O_DIRECT (EINVAL) gets ordinary writes, and is not asked again', async () => {
  const direct = directOpener(O_WRONLY | O_CREAT | O_EXCL | O_DSYNC | O_DIRECT!);
  direct.fail = einval;
  await withStore({ chunkIo: { openDirect: direct.open } }, async (store, dir) => {
    const first = chunk(1024 * 1024, 10);
    const second = chunk(2 * 1024 * 1024 + 1, 11);
    assert.deepEqual(await store.putChunks([first]), ['stored']);
    assert.deepEqual(await store.putChunks([second]), ['stored']);
    assert.equal(direct.calls, 1, 'refused once, then never tried again');
    assert.deepEqual(await store.getChunk(first.hash), Buffer.from(first.data));
    assert.deepEqual(await store.getChunk(second.hash), Buffer.from(second.data));
    assert.deepEqual(await fs.readdir(path.join(dir, 'tmp')), []);
  });
});

test('chunk files: a full disk during a direct write fails the batch as no_space, stores nothing, leaves no temp; the retry stores it', async () => {
  let full = true;
  // /dev/full answers every write with ENOSPC; O_DIRECT means nothing to a character device.
  const chunkIo: Partial<ChunkIo> = { openDirect: (p) => (full ? openFd('/dev/full', O_WRONLY) : openFd(p, O_WRONLY | O_CREAT | O_EXCL | O_DSYNC | O_DIRECT!)) };
  await withStore({ chunkIo }, async (store, dir) => {
    const big = chunk(1024 * 1024 + 99, 20);
    await assert.rejects(store.putChunks([big]), (err) => isStoreError(err, 'no_space'));
    assert.deepEqual(await store.hasChunks([big.hash]), [], 'nothing acknowledged');
    assert.deepEqual(await fs.readdir(path.join(dir, 'tmp')), []);
    full = false;
    assert.deepEqual(await store.putChunks([big]), ['stored']);
    assert.deepEqual(await store.getChunk(big.hash), Buffer.from(big.data));
    assert.deepEqual((await store.fsck()).problems, []);
  });
});

test('chunk files: more large chunks at once than the arena holds: the rest wait for a slot and are written directly too, all intact', async () => {
  const direct = directOpener(O_WRONLY | O_CREAT | O_EXCL | O_DSYNC | O_DIRECT!);
  await withStore({ chunkIo: { openDirect: direct.open } }, async (store) => {
    // The arena has 16 MiB; each 4 MiB chunk takes a quarter of it, and all six writes start at once.
    const batch = Array.from({ length: 6 }, (_, i) => chunk(4 * 1024 * 1024, 30 + i));
    assert.deepEqual(new Set(await store.putChunks(batch)), new Set(['stored']));
    assert.equal(direct.calls, 6);
    for (const c of batch) assert.deepEqual(await store.getChunk(c.hash), Buffer.from(c.data));
  });
});

test('root files: a large file is written directly (mode, mtime, bytes exact); a small one and a refused file system get ordinary writes', async () => {
  await withTempDir(async (dir) => {
    const direct = directOpener(O_WRONLY | O_DIRECT!);
    const writes = new DirectWrites(direct.open);
    const big = prngBytes(3 * 1024 * 1024 + 5, 40);
    const target = path.join(dir, 'sub', 'big.bin');
    const written = await writeAtomic(target, source(big), { mtimeMs: 1_700_000_000_000, mode: 0o640, size: big.length }, { direct: writes });
    assert.deepEqual(written, { size: big.length, mtimeMs: 1_700_000_000_000, mode: 0o640 }, 'what it wrote, as the file has it');
    assert.equal(direct.calls, 1);
    assert.deepEqual(await fs.readFile(target), Buffer.from(big));
    const st = await fs.stat(target);
    assert.equal(st.mode & 0o777, 0o640);
    assert.equal(st.mtimeMs, 1_700_000_000_000);

    const small = prngBytes(500_000, 41);
    await writeAtomic(path.join(dir, 'small.bin'), source(small), { mtimeMs: 1, mode: 0o644, size: small.length }, { direct: writes });
    assert.equal(direct.calls, 1, 'below 1 MiB: no direct write');
    assert.deepEqual(await fs.readFile(path.join(dir, 'small.bin')), Buffer.from(small));

    direct.fail = einval;
    const other = prngBytes(2 * 1024 * 1024, 42);
    await writeAtomic(path.join(dir, 'other.bin'), source(other), { mtimeMs: 1, mode: 0o644, size: other.length }, { direct: writes });
    assert.equal(writes.allowed, false);
    assert.deepEqual(await fs.readFile(path.join(dir, 'other.bin')), Buffer.from(other), 'written the ordinary way');
    await writeAtomic(path.join(dir, 'third.bin'), source(other), { mtimeMs: 1, mode: 0o644, size: other.length }, { direct: writes });
    assert.equal(direct.calls, 2, 'not asked again');
    assert.equal(writes.arena.unitsInUse, 0, 'every slot came back');
    assert.deepEqual((await fs.readdir(dir)).sort(), ['other.bin', 'small.bin', 'sub', 'third.bin']);
    assert.deepEqual(await fs.readdir(path.join(dir, 'sub')), ['big.bin'], 'no temp file left');
  });
});

test('root files: a source that breaks halfway through a direct write leaves no temp file and gives its slot back', async () => {
  await withTempDir(async (dir) => {
    const writes = new DirectWrites();
    const data = prngBytes(3 * 1024 * 1024, 43);
    const failing = new Readable({
      read() {
        this.push(Buffer.from(data.subarray(0, 2 * 1024 * 1024)));
        this.destroy(new Error('source broke'));
      },
    });
    await assert.rejects(writeAtomic(path.join(dir, 'f.bin'), failing, { mtimeMs: 1, mode: 0o644, size: data.length }, { direct: writes }), /source broke/);
    assert.deepEqual(await fs.readdir(dir), []);
    assert.equal(writes.arena.unitsInUse, 0);
    assert.equal(writes.allowed, true, 'a broken source says nothing about the file system');
  });
});

test('the default opener: a large chunk put into a store on the test disk reads back intact', async () => {
  await withTempDir(async (dir) => {
    const store = await openStore({ dir });
    try {
      const c = chunk(2 * 1024 * 1024 + 3, 60);
      assert.deepEqual(await store.putChunks([c]), ['stored']);
      assert.deepEqual(await store.getChunk(c.hash), Buffer.from(c.data));
    } finally {
      await store.close();
    }
  });
});
