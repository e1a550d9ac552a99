// The hub's disk index writes what is set in one turn of the event loop as one batch. Reads must see entries set or
// deleted but not written yet, every caller must learn when its entry is written (or that the write failed), and
// listing paths must include what was set before. A file the hub is putting in place is known by its size and mtime
// until its writer releases it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { ClassicLevel } from 'classic-level';
import { DiskIndex } from '../../src/sync/disk-index.ts';
import { tempDir } from './peers.ts';

async function withIndex(fn: (disk: DiskIndex, db: ClassicLevel<string, string>) => Promise<void>): Promise<void> {
  const dir = await tempDir('balupi-disk-index-');
  const db = new ClassicLevel<string, string>(path.join(dir.path, 'db'), { valueEncoding: 'utf8' });
  await db.open();
  try {
    await fn(new DiskIndex(db), db);
  } finally {
    if (db.status === 'open') await db.close();
    await dir.remove();
  }
}

test('entries set in one turn are written together; reads see them before and after; a later delete wins', async () => {
  await withIndex(async (disk, db) => {
    let batches = 0;
    const batch = db.batch.bind(db);
    (db as unknown as { batch: unknown }).batch = (...args: unknown[]) => {
      batches += 1;
      return (batch as (...a: unknown[]) => unknown)(...args);
    };
    const writes = Array.from({ length: 100 }, (_, i) => disk.set(`d/f${i}`, { size: i, mtimeMs: 1000 + i + 0.7 }, i + 1));
    assert.deepEqual(disk.getNow('d/f7'), { s: 7, m: 1007, v: 8 }, 'seen before it is written');
    const gone = disk.del('d/f9');
    assert.equal(disk.getNow('d/f9'), undefined, 'a queued delete hides the queued set');
    await Promise.all([...writes, gone]);
    assert.equal(batches, 1, 'one batch for the turn');
    assert.deepEqual(await disk.get('d/f7'), { s: 7, m: 1007, v: 8 });
    assert.equal(await disk.get('d/f9'), undefined);
    // Set again while nothing is written yet, then listed: the listing waits for it.
    void disk.set('e/new', { size: 1, mtimeMs: 1 }, 1);
    const listed = [];
    for await (const p of disk.paths('e')) listed.push(p);
    assert.deepEqual(listed, ['e/new']);
    const all = [];
    for await (const p of disk.paths()) all.push(p);
    assert.equal(all.length, 100, '99 of d/ and e/new');
  });
});

test('a batch that cannot be written (the database closed under it) fails every caller of it', async () => {
  await withIndex(async (disk, db) => {
    const a = disk.set('a', { size: 1, mtimeMs: 1 }, 1);
    const b = disk.del('b');
    await db.close();
    await assert.rejects(a);
    await assert.rejects(b);
  });
});

test('a file being put in place is known by its size and mtime until released; a later writer of the path keeps its mark', async () => {
  await withIndex(async (disk) => {
    const st = { size: 5, mtimeMs: 1_700_000_000_123, mode: 0o644 };
    assert.equal(disk.isPlacing('a/b', st), false);
    const release = disk.placing('a/b', st);
    assert.equal(disk.isPlacing('a/b', { ...st, mode: 0o600 }), true, 'the mode is not compared, as for entries');
    assert.equal(disk.isPlacing('a/b', { ...st, size: 6 }), false, 'another size is someone else\'s file');
    assert.equal(disk.isPlacing('a/b', { ...st, mtimeMs: st.mtimeMs + 1 }), false, 'another mtime too');
    assert.equal(disk.isPlacing('a/c', st), false, 'another path');
    const listed = [];
    for await (const p of disk.paths()) listed.push(p);
    assert.deepEqual(listed, [], 'not an entry: nothing is written for it');
    release();
    assert.equal(disk.isPlacing('a/b', st), false, 'released');
    const first = disk.placing('a/b', st);
    const second = disk.placing('a/b', { ...st, size: 9 });
    first();
    assert.equal(disk.isPlacing('a/b', { ...st, size: 9 }), true, 'the first writer\'s release leaves the second one\'s mark');
    second();
    assert.equal(disk.isPlacing('a/b', { ...st, size: 9 }), false);
  });
});
