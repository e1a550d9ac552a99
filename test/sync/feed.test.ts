// The change feed: records after a cursor in sequence order and batches, "caught up" at the end of the backlog, live
// changes while following, only the latest record of a path, and a restart at 0 for a foreign index id.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { changeFeed, type FeedBatch } from '../../src/sync/feed.ts';
import type { FileRecord } from '../../store/index.ts';
import { bytes, node } from './in-process.ts';

test('backlog in sequence order and batches, the last one caught up; superseded versions are not sent', async () => {
  const n = await node();
  try {
    for (let i = 0; i < 7; i++) await n.store.ingest(`f${i}.txt`, bytes(`v1 ${i}`));
    await n.store.ingest('f0.txt', bytes('v2')); // supersedes seq 1
    await n.store.delete('f1.txt');
    const batches: FeedBatch[] = [];
    for await (const b of changeFeed(n.store, { indexId: n.store.indexId, since: 0, follow: false, batch: 3 })) batches.push(b);
    assert.deepEqual(batches.map((b) => b.files.map((f) => f.path)), [['f2.txt', 'f3.txt', 'f4.txt'], ['f5.txt', 'f6.txt', 'f0.txt'], ['f1.txt']]);
    assert.deepEqual(batches.map((b) => b.caughtUp), [false, false, true]);
    assert.equal(batches[2]!.files[0]!.deleted, true, 'deletions travel as tombstones');
    const seqs = batches.flatMap((b) => b.files.map((f) => f.seq));
    assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b));

    const from: string[] = [];
    for await (const b of changeFeed(n.store, { indexId: n.store.indexId, since: 8, follow: false })) from.push(...b.files.map((f) => f.path));
    assert.deepEqual(from, ['f1.txt'], 'a cursor skips what was seen');
    const foreign: unknown[] = [];
    for await (const b of changeFeed(n.store, { indexId: 'someotherindex00', since: 8, follow: false })) foreign.push(...b.files);
    assert.equal(foreign.length, 7, 'a cursor of another index id is ignored: the whole index again');
  } finally {
    await n.close();
  }
});

test('following: an empty caught-up message first, then live changes, until aborted', async () => {
  const n = await node();
  try {
    const ac = new AbortController();
    const it = changeFeed(n.store, { indexId: n.store.indexId, since: 0, follow: true, signal: ac.signal })[Symbol.asyncIterator]();
    const first = await it.next();
    assert.equal(first.value?.caughtUp, true);
    assert.equal(first.value?.files.length, 0);
    const next = it.next();
    await n.store.ingest('live.txt', bytes('live'));
    const live = await next;
    assert.deepEqual(live.value?.files.map((f: FileRecord) => f.path), ['live.txt']);
    const ending = it.next();
    ac.abort();
    assert.equal((await ending).done, true);
  } finally {
    await n.close();
  }
});
