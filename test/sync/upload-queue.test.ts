// The persistent upload queue: pending -> uploading -> synced | failed with retry count, last error and exponential
// backoff with jitter; a crash while uploading leaves the row pending; a change during an upload is not lost.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { ClassicLevel } from 'classic-level';
import { UploadQueue } from '../../src/sync/upload-queue.ts';
import { backoffDelay } from '../../src/sync/backoff.ts';
import { tempDir } from './peers.ts';

async function withDb<T>(fn: (open: () => Promise<ClassicLevel<string, string>>) => Promise<T>): Promise<T> {
  const dir = await tempDir('balupi-queue-');
  try {
    return await fn(async () => {
      const db = new ClassicLevel<string, string>(path.join(dir.path, 'db'), { valueEncoding: 'utf8' });
      await db.open();
      return db;
    });
  } finally {
    await dir.remove();
  }
}

test('backoff doubles per failure up to the cap, with half of it random', () => {
  const opts = { minMs: 1000, maxMs: 60_000 };
  assert.equal(backoffDelay(1, { ...opts, random: () => 0 }), 500);
  assert.equal(backoffDelay(1, { ...opts, random: () => 1 }), 1000);
  assert.equal(backoffDelay(4, { ...opts, random: () => 1 }), 8000);
  assert.equal(backoffDelay(30, { ...opts, random: () => 1 }), 60_000, 'capped');
  assert.equal(backoffDelay(30, { ...opts, random: () => 0 }), 30_000, 'jitter never goes below half the cap');
});

test('rows move pending -> uploading -> synced, and failures back off, count and keep the last error', async () => {
  await withDb(async (open) => {
    const db = await open();
    let now = 1_000_000;
    const q = await UploadQueue.open(db, { minMs: 1000, maxMs: 8000, now: () => now, random: () => 1 });
    await q.enqueue('a.txt', 10);
    await q.enqueue('b.txt', 20);
    assert.deepEqual((await q.due(10)).map((i) => i.path), ['a.txt', 'b.txt']);
    assert.deepEqual(await q.counts(), { pending: 2, uploading: 0, failed: 0, synced: 0, bytesPending: 30 });

    const ga = (await q.take('a.txt'))!;
    assert.equal((await q.get('a.txt'))?.state, 'uploading');
    await q.synced('a.txt', ga);
    assert.equal(await q.get('a.txt'), undefined);

    const gb = (await q.take('b.txt'))!;
    const f1 = await q.failed('b.txt', gb, 'hub said no');
    assert.equal(f1?.state, 'failed');
    assert.equal(f1?.attempts, 1);
    assert.equal(f1?.lastError, 'hub said no');
    assert.equal(f1?.nextAttemptAt, now + 1000);
    assert.deepEqual(await q.due(10), [], 'not due before its retry time');
    assert.equal(await q.nextRetryAt(), now + 1000);
    now += 1000;
    assert.deepEqual((await q.due(10)).map((i) => i.path), ['b.txt']);
    const f2 = await q.failed('b.txt', (await q.take('b.txt'))!, 'again');
    assert.equal(f2?.attempts, 2);
    assert.equal(f2?.nextAttemptAt, now + 2000, 'doubled');
    assert.equal((await q.due(10, { all: true })).length, 1, '--once takes failed rows regardless of their retry time');
    const f3 = await q.failed('b.txt', (await q.take('b.txt'))!, 'bad path', true);
    assert.equal(f3?.nextAttemptAt, null, 'permanent errors are not retried automatically');
    now += 10 ** 9;
    assert.deepEqual(await q.due(10), []);
    assert.deepEqual(await q.counts(), { pending: 0, uploading: 0, failed: 1, synced: 1, bytesPending: 20 });
    await db.close();
  });
});

test('a change during an upload is not lost, and a crash while uploading leaves the row pending', async () => {
  await withDb(async (open) => {
    let db = await open();
    let q = await UploadQueue.open(db, { minMs: 1000, maxMs: 8000 });
    await q.enqueue('doc.txt', 5);
    const gen = (await q.take('doc.txt'))!;
    await q.enqueue('doc.txt', 6); // edited again while the old version uploads
    await q.synced('doc.txt', gen);
    assert.equal((await q.get('doc.txt'))?.state, 'pending', 'the newer change still has to go');
    assert.equal((await q.counts()).synced, 0, 'the row is not done yet');
    await q.synced('doc.txt', (await q.take('doc.txt'))!);
    assert.equal((await q.counts()).synced, 1);

    await q.enqueue('doc.txt', 6);
    await q.take('doc.txt');
    await db.close(); // "crash" while uploading
    db = await open();
    q = await UploadQueue.open(db, { minMs: 1000, maxMs: 8000 });
    const row = await q.get('doc.txt');
    assert.equal(row?.state, 'pending');
    assert.equal(row?.bytes, 6);
    assert.equal((await q.counts()).synced, 1, 'the count survives a restart');
    await db.close();
  });
});

test('retryFailedNow makes rows waiting for their backoff due at once, but not permanent failures', async () => {
  await withDb(async (open) => {
    const db = await open();
    let now = 5_000_000;
    const q = await UploadQueue.open(db, { minMs: 60_000, maxMs: 600_000, now: () => now, random: () => 1 });
    for (const p of ['wait.txt', 'bad.txt', 'new.txt']) await q.enqueue(p, 1);
    await q.failed('wait.txt', (await q.take('wait.txt'))!, 'hub unreachable');
    await q.failed('bad.txt', (await q.take('bad.txt'))!, 'invalid name', true);
    assert.deepEqual((await q.due(10)).map((i) => i.path), ['new.txt'], 'before: only the pending row is due');
    assert.equal(await q.retryFailedNow(), 1);
    assert.deepEqual((await q.due(10)).map((i) => i.path).sort(), ['new.txt', 'wait.txt']);
    const row = await q.get('wait.txt');
    assert.deepEqual([row?.state, row?.attempts, row?.lastError], ['failed', 1, 'hub unreachable'], 'the history of the row is kept');
    assert.equal((await q.get('bad.txt'))?.nextAttemptAt, null, 'a permanent failure still waits to be asked for');
    now += 1;
    await db.close();
  });
});

test('a batch is taken and finished in one write each; uploads finishing at the same time are all counted', async () => {
  await withDb(async (open) => {
    const db = await open();
    const q = await UploadQueue.open(db, { minMs: 1000, maxMs: 8000 });
    const paths = Array.from({ length: 40 }, (_, i) => `f${String(i).padStart(2, '0')}`);
    for (const p of paths) await q.enqueue(p, 100);
    const first = await q.takeMany([...paths.slice(0, 20), 'never-queued']);
    const second = await q.takeMany(paths.slice(20));
    assert.equal(first.size, 20, 'a path without a row is left out');
    assert.equal((await q.counts()).uploading, 40);
    await q.enqueue('f05', 100); // changed while its upload runs
    // Two batches finish concurrently: each must add to the count, not overwrite the other's total.
    await Promise.all([
      q.syncedMany([...first].map(([path, gen]) => ({ path, gen, counted: path !== 'f01' }))),
      q.syncedMany([...second].map(([path, gen]) => ({ path, gen, counted: true }))),
    ]);
    const c = await q.counts();
    assert.deepEqual([c.pending, c.uploading, c.synced], [1, 0, 38], 'f05 is pending again, f01 was in step already (not counted)');
    assert.equal((await q.get('f05'))?.state, 'pending');
    await db.close();
    const reopened = await UploadQueue.open(await open(), { minMs: 1000, maxMs: 8000 });
    assert.equal((await reopened.counts()).synced, 38, 'the count survives a restart');
  });
});

test('due() can ask for a size range, skip rows already being worked on, and leave out rows changed after a time', async () => {
  await withDb(async (open) => {
    let now = 1_000;
    const q = await UploadQueue.open(await open(), { minMs: 1000, maxMs: 8000, now: () => now });
    await q.enqueue('a-small', 10);
    await q.enqueue('b-large', 50_000_000);
    await q.enqueue('c-small', 20);
    await q.enqueue('d-edge', 8 * 1024 * 1024);
    now = 2_000;
    await q.enqueue('e-later', 30);
    assert.deepEqual((await q.due(10, { until: 1_000 })).map((i) => i.path), ['a-small', 'b-large', 'c-small', 'd-edge'], 'a change queued after the run began waits for the next run');
    await q.takeMany(['e-later']);
    const names = async (opts: Parameters<UploadQueue['due']>[1]) => (await q.due(10, opts)).map((i) => i.path);
    assert.deepEqual(await names({ bytes: { below: 8 * 1024 * 1024 } }), ['a-small', 'c-small']);
    assert.deepEqual(await names({ bytes: { min: 8 * 1024 * 1024 } }), ['b-large', 'd-edge']);
    assert.deepEqual(await names({ bytes: { below: 8 * 1024 * 1024 }, skip: new Set(['a-small']) }), ['c-small']);
    assert.deepEqual((await q.due(1, { skip: new Set(['a-small']) })).map((i) => i.path), ['b-large'], 'skipped rows do not count against the limit');
  });
});

test('enqueueMany queues many paths in one write: each pending with its size, a path queued again gets a new generation', async () => {
  await withDb(async (open) => {
    const db = await open();
    const q = await UploadQueue.open(db, { minMs: 1000, maxMs: 8000 });
    const seen: string[] = [];
    q.events.on('enqueued', (p: string) => seen.push(p));
    await q.enqueue('b.txt', 1);
    await q.take('b.txt');
    await q.enqueueMany([
      { path: 'a.txt', bytes: 10 },
      { path: 'b.txt', bytes: 20 },
    ]);
    assert.deepEqual(seen, ['b.txt', 'a.txt', 'b.txt']);
    const due = await q.due(10);
    assert.deepEqual(due.map((i) => [i.path, i.state, i.bytes, i.gen]), [['a.txt', 'pending', 10, 1], ['b.txt', 'pending', 20, 2]]);
    await q.enqueueMany([]);
    assert.equal((await q.counts()).pending, 2);
  });
});

test('a deletion is marked on its row (through take, failure and a reopen); a newer change that is not one clears the mark', async () => {
  await withDb(async (open) => {
    let db = await open();
    let q = await UploadQueue.open(db, { minMs: 1000, maxMs: 8000 });
    await q.enqueue('old.txt', 0, 5, true);
    await q.enqueueMany([{ path: 'new.txt', bytes: 10, seq: 4 }, { path: 'gone.txt', bytes: 0, seq: 6, deleted: true }]);
    const gen = (await q.take('gone.txt'))!;
    await q.failed('gone.txt', gen, 'hub gone');
    await db.close();
    db = await open();
    q = await UploadQueue.open(db, { minMs: 1000, maxMs: 8000 });
    const rows = await q.due(10, { all: true });
    assert.deepEqual(rows.map((r) => [r.path, r.deleted ?? false]), [['gone.txt', true], ['new.txt', false], ['old.txt', true]]);
    await q.enqueue('old.txt', 12, 9); // the path was written again
    assert.equal((await q.get('old.txt'))!.deleted, undefined);
    await db.close();
  });
});

test('a row still pending for the same record is not written again; a newer record, or one being uploaded, is', async () => {
  await withDb(async (open) => {
    const db = await open();
    let now = 1_000;
    const q = await UploadQueue.open(db, { minMs: 1000, maxMs: 8000, now: () => now });
    await q.enqueue('a.txt', 10, 7);
    now = 2_000;
    await q.enqueueMany([{ path: 'a.txt', bytes: 10, seq: 7 }]);
    assert.deepEqual((await q.due(10, { until: 1_500 })).map((i) => [i.path, i.gen, i.updatedAt]), [['a.txt', 1, 1_000]], 'still dated when first queued');
    await q.enqueue('a.txt', 11, 8);
    assert.deepEqual((await q.get('a.txt')) && [(await q.get('a.txt'))!.gen, (await q.get('a.txt'))!.updatedAt], [2, 2_000], 'a newer record is a new change');
    await q.take('a.txt');
    await q.enqueue('a.txt', 11, 8);
    assert.equal((await q.get('a.txt'))!.gen, 3, 'the same record queued during its upload still counts: the upload may have read an older one');
  });
});

test('enqueueAll queues everything an iterable yields, in writes of 1,024 rows', async () => {
  await withDb(async (open) => {
    const db = await open();
    const q = await UploadQueue.open(db, { minMs: 1000, maxMs: 8000 });
    const items = Array.from({ length: 2500 }, (_, i) => ({ path: `f${String(i).padStart(4, '0')}`, bytes: i, seq: i + 1 }));
    await q.enqueueAll((async function* () { yield* items; })());
    assert.equal((await q.counts()).pending, 2500);
    const due = await q.due(3000);
    assert.deepEqual(due.map((i) => [i.path, i.bytes, i.seq]), items.map((i) => [i.path, i.bytes, i.seq]));
  });
});

test('counts() follows every write exactly, also with writes racing each other, and a reopened queue counts the same', async () => {
  await withDb(async (open) => {
    const db = await open();
    let now = 1_000_000;
    const q = await UploadQueue.open(db, { minMs: 1000, maxMs: 8000, now: () => now, random: () => 1 });
    /** The counts as a full scan of the rows finds them. */
    const scanned = async () => {
      const c = { pending: 0, uploading: 0, failed: 0, bytesPending: 0 };
      for (const item of await q.list(100_000)) {
        c[item.state] += 1;
        c.bytesPending += item.bytes;
      }
      return c;
    };
    const live = async () => {
      const { synced: _, ...c } = await q.counts();
      return c;
    };
    // Input tried: every kind of write, many of them started at once on the same paths without waiting (the pusher,
    // the local feed and the hub link do that), then each kind again one by one.
    const paths = Array.from({ length: 60 }, (_, i) => `f${i % 20}.bin`);
    let step = 0;
    await Promise.all(
      paths.map(async (p, i) => {
        await q.enqueue(p, 100 + i);
        const gen = await q.take(p);
        if (gen === undefined) return;
        if (i % 3 === 0) await q.synced(p, gen);
        else if (i % 3 === 1) await q.failed(p, gen, 'hub away', i % 2 === 0);
        else await q.enqueue(p, 7);
        step += 1;
      }),
    );
    assert.equal(step, 60);
    assert.deepEqual(await live(), await scanned());
    await q.enqueueMany(Array.from({ length: 30 }, (_, i) => ({ path: `g${i}.bin`, bytes: i })));
    await q.takeMany(['g1.bin', 'g2.bin', 'g3.bin', 'missing.bin']);
    await q.syncedMany([{ path: 'g1.bin', gen: 1, counted: true }, { path: 'g2.bin', gen: 99, counted: true }]);
    now += 60_000;
    await q.retryFailedNow();
    await q.drop('g4.bin');
    await q.drop('never-queued.bin');
    assert.deepEqual(await live(), await scanned());
    const before = await q.counts();
    await db.close();
    const db2 = await open();
    const q2 = await UploadQueue.open(db2, { minMs: 1000, maxMs: 8000, now: () => now });
    const after = await q2.counts();
    // A crash while uploading leaves rows pending: the reopened queue counts them so.
    assert.deepEqual(after, { ...before, pending: before.pending + before.uploading, uploading: 0 });
    await db2.close();
  });
});
