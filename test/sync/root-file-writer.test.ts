// Small root files written in batches by a worker thread (src/sync/root-file-writer.ts), on the test machine's disk:
// what writeAtomic promises must hold for each file (bytes, permissions, mtime, the returned stat, no temp file left,
// new directories made), and a file that cannot be written fails alone, with the file system's error code, while the
// rest of its batch lands.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import fsSync from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { RootFileWriter } from '../../src/sync/root-file-writer.ts';
import { blake3 } from '../../store/index.ts';
import { removeFile, RootChanged, TEMP_PREFIX, walk, walkTemps, writeAtomic } from '../../src/sync/root-files.ts';
import { Readable } from 'node:stream';
import { tempDir } from '../helpers/daemon-process.ts';

async function withRoot(fn: (root: string, w: RootFileWriter) => Promise<void>): Promise<void> {
  const dir = await tempDir('balupi-root-writer-');
  const w = new RootFileWriter();
  try {
    await fn(dir.path, w);
  } finally {
    await w.close();
    await dir.remove();
  }
}

test('a burst of small files (more than one batch, new directories, files in several parts) lands byte for byte with mode and mtime', async () => {
  await withRoot(async (root, w) => {
    const files = Array.from({ length: 600 }, (_, i) => ({
      rel: `d${i % 7}/sub${i % 3}/f${i}.bin`,
      parts: i % 5 === 0 ? [randomBytes(1000), randomBytes(i * 10)] : [randomBytes(i * 37)],
      mode: i % 2 === 0 ? 0o640 : 0o600,
      mtimeMs: 1_600_000_000_000 + i * 1000,
    }));
    const stats = await Promise.all(files.map((f) => w.write(path.join(root, ...f.rel.split('/')), f.parts, { mtimeMs: f.mtimeMs, mode: f.mode })));
    for (const [i, f] of files.entries()) {
      const abs = path.join(root, ...f.rel.split('/'));
      const st = await fs.stat(abs);
      assert.ok((await fs.readFile(abs)).equals(Buffer.concat(f.parts)), f.rel);
      assert.equal(st.mode & 0o777, f.mode);
      assert.equal(st.mtimeMs, f.mtimeMs);
      assert.deepEqual(stats[i], { size: st.size, mtimeMs: f.mtimeMs, mode: f.mode }, 'the stat returned is the written file');
    }
    const temps = [];
    for await (const t of walkTemps(root)) temps.push(t.rel);
    assert.deepEqual(temps, [], 'no temp file left');
  });
});

test('writes asked for in one synchronous run go to the worker as one batch (each batch costs two flushes)', async () => {
  await withRoot(async (root, w) => {
    const meta = { mtimeMs: 1_600_000_000_000, mode: 0o644 };
    const files = Array.from({ length: 40 }, (_, i) => ({ abs: path.join(root, `g${i}.bin`), bytes: randomBytes(100 + i) }));
    assert.equal(w.batches, 0);
    // The first write used to leave alone, while the other 39 queued behind it for a second batch.
    await Promise.all(files.map((f) => w.write(f.abs, [f.bytes], meta)));
    assert.equal(w.batches, 1, 'one batch for the 40 files');
    for (const f of files) assert.ok((await fs.readFile(f.abs)).equals(f.bytes), path.basename(f.abs));
    // Writes asked for while a batch is in the worker wait and go together in the next one.
    const first = w.write(path.join(root, 'h0.bin'), [Buffer.from('h0')], meta);
    await Promise.resolve(); // the first batch is on its way
    const more = Array.from({ length: 30 }, (_, i) => w.write(path.join(root, `h${i + 1}.bin`), [Buffer.from(`h${i + 1}`)], meta));
    await Promise.all([first, ...more]);
    assert.equal(w.batches, 3, 'h0 alone, then the 30 asked for meanwhile together');
    for (let i = 0; i <= 30; i++) assert.equal(await fs.readFile(path.join(root, `h${i}.bin`), 'utf8'), `h${i}`);
  });
});

test('the parts are copied before write() returns (the caller may reuse them at once), except a stable single part, which is still written whole', async () => {
  await withRoot(async (root, w) => {
    // Many files at once, so that most wait in the queue while the worker writes the first batch.
    const files = Array.from({ length: 400 }, (_, i) => ({ abs: path.join(root, `f${i}.bin`), bytes: randomBytes(2000 + i), stable: i % 2 === 0 }));
    const want = files.map((f) => Buffer.from(f.bytes));
    const writes = files.map((f) => w.write(f.abs, [f.bytes], { mtimeMs: 1_600_000_000_000, mode: 0o644 }, { stable: f.stable }));
    // A buffer reused by a caller that did not promise to leave it alone:
    for (const f of files) if (!f.stable) f.bytes.fill(0x55);
    await Promise.all(writes);
    for (const [i, f] of files.entries()) assert.ok((await fs.readFile(f.abs)).equals(want[i]!), `${path.basename(f.abs)} (${f.stable ? 'stable' : 'reused after the call'})`);
  });
});

test('a file that cannot be written fails alone with its error code; the others of its batch land, no temp file is left', async () => {
  await withRoot(async (root, w) => {
    await fs.writeFile(path.join(root, 'blocker'), 'a file where a directory is needed');
    await fs.mkdir(path.join(root, 'adir', 'inside'), { recursive: true });
    const meta = { mtimeMs: 1_700_000_000_000, mode: 0o644 };
    const results = await Promise.allSettled([
      w.write(path.join(root, 'ok1.txt'), [Buffer.from('one')], meta),
      w.write(path.join(root, 'blocker', 'x.txt'), [Buffer.from('under a file')], meta),
      w.write(path.join(root, 'adir'), [Buffer.from('over a directory that is not empty')], meta),
      w.write(path.join(root, 'ok2.txt'), [Buffer.from('two')], meta),
    ]);
    assert.equal(results[0]!.status, 'fulfilled');
    assert.equal(results[3]!.status, 'fulfilled');
    assert.equal((results[1] as PromiseRejectedResult).reason.code, 'ENOTDIR');
    assert.ok(['EISDIR', 'ENOTEMPTY', 'EEXIST'].includes((results[2] as PromiseRejectedResult).reason.code), String((results[2] as PromiseRejectedResult).reason));
    assert.equal(await fs.readFile(path.join(root, 'ok1.txt'), 'utf8'), 'one');
    assert.equal(await fs.readFile(path.join(root, 'ok2.txt'), 'utf8'), 'two');
    assert.equal(await fs.readFile(path.join(root, 'blocker'), 'utf8'), 'a file where a directory is needed', 'what was in the way is untouched');
    assert.deepEqual(await fs.readdir(path.join(root, 'adir')), ['inside']);
    const names = [];
    for await (const t of walkTemps(root)) names.push(t.rel);
    for await (const f of walk(root)) names.push(f.rel);
    assert.deepEqual(names.filter((n) => path.basename(n).startsWith(TEMP_PREFIX)), [], 'no temp file left');
  });
});

test('a closed writer is not available (the hub then writes files itself) and refuses new files', async () => {
  await withRoot(async (root, w) => {
    await w.write(path.join(root, 'a.txt'), [Buffer.from('a')], { mtimeMs: 1_700_000_000_000, mode: 0o644 });
    await w.close();
    assert.equal(w.available, false);
    await assert.rejects(w.write(path.join(root, 'b.txt'), [Buffer.from('b')], { mtimeMs: 1_700_000_000_000, mode: 0o644 }));
    await assert.rejects(fs.access(path.join(root, 'b.txt')));
  });
});

/** Runs `fn` with a writer whose worker starts with PATH set to `bin` alone (the worker copies the environment). */
async function withPath(bin: string, fn: (root: string, w: RootFileWriter) => Promise<void>): Promise<void> {
  const saved = process.env.PATH;
  process.env.PATH = bin;
  try {
    await withRoot(async (root, w) => {
      const first = w.write(path.join(root, 'first.txt'), [Buffer.from('first')], { mtimeMs: 1_700_000_000_000, mode: 0o644 });
      await Promise.resolve(); // the writer starts its worker in a microtask queued by write(), before this one
      process.env.PATH = saved; // the worker has started with its copy
      await first.catch(() => {});
      await fn(root, w);
    });
  } finally {
    process.env.PATH = saved;
  }
}

test('without a `sync` program the files are flushed one by one instead, and land the same', async () => {
  const empty = await tempDir('balupi-no-sync-');
  try {
    await withPath(empty.path, async (root, w) => {
      const files = Array.from({ length: 40 }, (_, i) => ({ rel: `d${i % 3}/f${i}`, body: randomBytes(100 + i) }));
      const stats = await Promise.all(files.map((f) => w.write(path.join(root, ...f.rel.split('/')), [f.body], { mtimeMs: 1_650_000_000_000, mode: 0o640 })));
      for (const [i, f] of files.entries()) {
        assert.ok((await fs.readFile(path.join(root, ...f.rel.split('/')))).equals(f.body), f.rel);
        assert.equal(stats[i]!.size, f.body.length);
      }
      assert.equal(await fs.readFile(path.join(root, 'first.txt'), 'utf8'), 'first');
    });
  } finally {
    await empty.remove();
  }
});

test('a flush that fails (a full disk: `sync -f` answers ENOSPC) fails every file of its batch; none is put in place, no temp file is left', async () => {
  const bin = await tempDir('balupi-full-sync-');
  try {
    // A `sync` that fails the way coreutils' does on a full disk (the files themselves were written: the page cache
    // took them; the flush is what fails).
    await fs.writeFile(path.join(bin.path, 'sync'), '#!/bin/sh\necho "sync: error syncing \'$2\': No space left on device" >&2\nexit 1\n', { mode: 0o755 });
    await withPath(`${bin.path}:/usr/bin:/bin`, async (root, w) => {
      await fs.writeFile(path.join(root, 'kept.txt'), 'an older version that must survive');
      const results = await Promise.allSettled(
        ['kept.txt', 'new/a.txt', 'b.txt'].map((rel) => w.write(path.join(root, ...rel.split('/')), [Buffer.from(`new ${rel}`)], { mtimeMs: 1_700_000_000_000, mode: 0o644 })),
      );
      for (const r of results) assert.equal((r as PromiseRejectedResult).reason?.code, 'ENOSPC', String((r as PromiseRejectedResult).reason));
      assert.equal(await fs.readFile(path.join(root, 'kept.txt'), 'utf8'), 'an older version that must survive');
      await assert.rejects(fs.access(path.join(root, 'b.txt')));
      await assert.rejects(fs.access(path.join(root, 'new', 'a.txt')));
      const temps = [];
      for await (const t of walkTemps(root)) temps.push(t.rel);
      assert.deepEqual(temps, [], 'no temp file left');
    });
  } finally {
    await bin.remove();
  }
});

/** A chunk file as the store keeps one: `data` under its BLAKE3 name in `dir`. */
async function chunkFile(dir: string, data: Buffer): Promise<{ file: string; hash: string; size: number }> {
  const hash = blake3().hash(data).toString('hex');
  const file = path.join(dir, hash);
  await fs.writeFile(file, data);
  return { file, hash, size: data.length };
}

test('link: a chunk file becomes the root file as a second name (same inode), with mode and mtime, for one path only; it outlives the chunk file', async () => {
  await withRoot(async (root, w) => {
    const store = await fs.mkdtemp(path.join(root, '..', 'chunks-'));
    try {
      const data = randomBytes(50_000);
      const src = await chunkFile(store, data);
      const abs = path.join(root, 'new dir', 'photo.jpg');
      const stat = await w.link(abs, src, { mtimeMs: 1_650_000_000_000, mode: 0o640 });
      const st = await fs.stat(abs);
      assert.equal(st.ino, (await fs.stat(src.file)).ino, 'linked, not copied');
      assert.deepEqual(stat, { size: data.length, mtimeMs: 1_650_000_000_000, mode: 0o640 });
      assert.equal(st.mode & 0o777, 0o640);
      // A second path of the same content is not linked to the same inode (an edit of one would change the other).
      await assert.rejects(w.link(path.join(root, 'copy.jpg'), src, { mtimeMs: 1_650_000_000_000, mode: 0o640 }), (err: NodeJS.ErrnoException) => err.code === 'ESHARED');
      assert.equal(w.linkable, true);
      await assert.rejects(fs.access(path.join(root, 'copy.jpg')));
      await fs.rm(src.file); // the store drops its chunk file once it knows the root holds the bytes
      assert.ok((await fs.readFile(abs)).equals(data));
      const temps = [];
      for await (const t of walkTemps(root)) temps.push(t.rel);
      assert.deepEqual(temps, []);
    } finally {
      await fs.rm(store, { recursive: true, force: true });
    }
  });
});

test('link: a chunk file that does not hold its chunk (rotted: right size, wrong bytes) is refused; nothing is put in place, an older file survives', async () => {
  await withRoot(async (root, w) => {
    const store = await fs.mkdtemp(path.join(root, '..', 'chunks-'));
    try {
      const src = await chunkFile(store, randomBytes(20_000));
      await fs.writeFile(src.file, randomBytes(20_000));
      const abs = path.join(root, 'kept.txt');
      await fs.writeFile(abs, 'the older version');
      await assert.rejects(w.link(abs, src, { mtimeMs: 1_650_000_000_000, mode: 0o644 }), (err: NodeJS.ErrnoException) => err.code === 'ECORRUPT');
      assert.equal(await fs.readFile(abs, 'utf8'), 'the older version');
      assert.equal(w.linkable, true, 'a bad chunk file says nothing about links');
      const temps = [];
      for await (const t of walkTemps(root)) temps.push(t.rel);
      assert.deepEqual(temps, []);
    } finally {
      await fs.rm(store, { recursive: true, force: true });
    }
  });
});

test('link: a chunk file on another file system (EXDEV) is refused, and the writer stops offering links', async (t) => {
  const other = ['/dev/shm', os.tmpdir()].find((d) => fsSync.existsSync(d));
  await withRoot(async (root, w) => {
    if (!other || fsSync.statSync(other).dev === fsSync.statSync(root).dev) return t.skip('no second file system here (/dev/shm) to link across');
    const store = await fs.mkdtemp(path.join(other, 'balupi-chunks-'));
    try {
      const src = await chunkFile(store, randomBytes(1000));
      await assert.rejects(w.link(path.join(root, 'a.bin'), src, { mtimeMs: 1_650_000_000_000, mode: 0o644 }), (err: NodeJS.ErrnoException) => err.code === 'EXDEV');
      assert.equal(w.linkable, false);
      assert.equal(await fs.stat(path.join(root, 'a.bin')).catch(() => null), null);
    } finally {
      await fs.rm(store, { recursive: true, force: true });
    }
  });
});

test("a file is put in place only if its path still holds what the writer was told (nothing, or the file it saw): anyone else's file stays, the rest of the batch lands", async () => {
  await withRoot(async (root, w) => {
    const meta = { mtimeMs: 1_600_000_000_000, mode: 0o644 };
    // Someone created this path after the caller saw nothing there.
    const created = path.join(root, 'created.txt');
    await fs.writeFile(created, 'theirs');
    // Someone edited this one after the caller saw its old version.
    const edited = path.join(root, 'edited.txt');
    await fs.writeFile(edited, 'old');
    const seen = { size: 3, mtimeMs: Math.floor((await fs.stat(edited)).mtimeMs) };
    await fs.writeFile(edited, 'their edit');
    // And the unchanged ones: nothing there, and exactly the file the caller saw.
    const fresh = path.join(root, 'fresh.txt');
    const same = path.join(root, 'same.txt');
    await fs.writeFile(same, 'old');
    const sameSeen = { size: 3, mtimeMs: Math.floor((await fs.stat(same)).mtimeMs) };
    const results = await Promise.allSettled([
      w.write(created, [Buffer.from('peer')], meta, { expect: null }),
      w.write(edited, [Buffer.from('peer')], meta, { expect: seen }),
      w.write(fresh, [Buffer.from('peer')], meta, { expect: null }),
      w.write(same, [Buffer.from('peer')], meta, { expect: sameSeen }),
    ]);
    assert.deepEqual(results.map((r) => (r.status === 'rejected' ? (r.reason as { code?: string }).code : 'ok')), ['ECHANGED', 'ECHANGED', 'ok', 'ok']);
    assert.ok(results[0]!.status === 'rejected' && results[0].reason instanceof RootChanged);
    assert.equal(await fs.readFile(created, 'utf8'), 'theirs');
    assert.equal(await fs.readFile(edited, 'utf8'), 'their edit');
    assert.equal(await fs.readFile(fresh, 'utf8'), 'peer');
    assert.equal(await fs.readFile(same, 'utf8'), 'peer');
    const temps = [];
    for await (const t of walkTemps(root)) temps.push(t.rel);
    assert.deepEqual(temps, [], 'no temp file left');
  });
});

test('a chunk file linked into place with nothing expected there does not replace a file that appeared; the chunk file keeps one name', async () => {
  await withRoot(async (root, w) => {
    const data = randomBytes(5000);
    const chunkFile = path.join(root, '..', `chunk-${path.basename(root)}`);
    await fs.writeFile(chunkFile, data);
    try {
      const target = path.join(root, 'linked.bin');
      await fs.writeFile(target, 'theirs');
      await assert.rejects(w.link(target, { file: chunkFile, hash: blake3().hash(data).toString('hex'), size: data.length }, { mtimeMs: 1_600_000_000_000, mode: 0o644 }, null), RootChanged);
      assert.equal(await fs.readFile(target, 'utf8'), 'theirs');
      assert.equal((await fs.stat(chunkFile)).nlink, 1, 'no second name left behind');
    } finally {
      await fs.rm(chunkFile, { force: true });
    }
  });
});

test('writeAtomic: someone creating or editing the path while the bytes stream in makes it fail with RootChanged and replace nothing', async () => {
  await withRoot(async (root) => {
    const meta = { mtimeMs: 1_600_000_000_000, mode: 0o644 };
    // The source writes "their" file at the target after its first piece, as a user on the NAS would mid-write.
    const source = (target: string, theirs: string) =>
      Readable.from((async function* () {
        yield randomBytes(300_000);
        fsSync.writeFileSync(target, theirs);
        yield randomBytes(300_000);
      })());
    const created = path.join(root, 'created.bin');
    await assert.rejects(writeAtomic(created, source(created, 'created meanwhile'), { ...meta, size: 600_000 }, { expect: null }), RootChanged);
    assert.equal(await fs.readFile(created, 'utf8'), 'created meanwhile');
    const edited = path.join(root, 'edited.bin');
    await fs.writeFile(edited, 'old');
    const seen = { size: 3, mtimeMs: Math.floor((await fs.stat(edited)).mtimeMs) };
    await assert.rejects(writeAtomic(edited, source(edited, 'edited meanwhile'), { ...meta, size: 600_000 }, { expect: seen }), RootChanged);
    assert.equal(await fs.readFile(edited, 'utf8'), 'edited meanwhile');
    // removeFile likewise leaves a file that changed since the caller looked.
    await assert.rejects(removeFile(root, edited, seen), RootChanged);
    assert.equal(await fs.readFile(edited, 'utf8'), 'edited meanwhile');
    const temps = [];
    for await (const t of walkTemps(root)) temps.push(t.rel);
    assert.deepEqual(temps, [], 'no temp file left');
  });
});
