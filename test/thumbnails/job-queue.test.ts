// The thumbnail job queue: bounded concurrency, requests before background work, a bounded request FIFO that refuses,
// and a bounded background FIFO that drops. Jobs are promises the test resolves, so every ordering is deterministic.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { JobQueue, QueueFullError } from '../../src/thumbnails/job-queue.ts';

function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((res) => (open = res));
  return { wait, open };
}

test('at most `concurrency` jobs run; a waiting request starts when one finishes', async () => {
  const q = new JobQueue({ concurrency: 2, maxWaiting: 10, maxBackground: 10, backgroundConcurrency: 1 });
  const gates = [gate(), gate(), gate()];
  const started: number[] = [];
  const runs = gates.map((g, i) => q.run(async () => {
    started.push(i);
    await g.wait;
    return i;
  }));
  assert.deepEqual(started, [0, 1]);
  assert.equal(q.running, 2);
  assert.equal(q.waiting, 1);
  gates[0]!.open();
  assert.equal(await runs[0], 0);
  assert.deepEqual(started, [0, 1, 2]);
  gates[1]!.open();
  gates[2]!.open();
  assert.deepEqual(await Promise.all(runs), [0, 1, 2]);
  assert.equal(q.running, 0);
});

test('a full request queue refuses the next request; nothing queued is lost', async () => {
  const q = new JobQueue({ concurrency: 1, maxWaiting: 2, maxBackground: 1, backgroundConcurrency: 1 });
  const g = gate();
  const ran: string[] = [];
  const first = q.run(async () => { await g.wait; ran.push('a'); });
  const queued = [q.run(async () => { ran.push('b'); }), q.run(async () => { ran.push('c'); })];
  await assert.rejects(q.run(async () => { ran.push('refused'); }), QueueFullError);
  g.open();
  await Promise.all([first, ...queued]);
  assert.deepEqual(ran, ['a', 'b', 'c']);
});

test('background work waits behind requests, runs one at a time, and is dropped (not queued) when its lane is full', async () => {
  const q = new JobQueue({ concurrency: 2, maxWaiting: 10, maxBackground: 2, backgroundConcurrency: 1 });
  const order: string[] = [];
  const g = gate();
  const bg1Done = gate();
  // bg1 takes one slot; bg2 and bg3 wait (the background lane runs one at a time); bg4 is dropped.
  assert.equal(q.offer(async () => { order.push('bg1'); await g.wait; bg1Done.open(); }), true);
  assert.equal(q.offer(async () => { order.push('bg2'); }), true);
  assert.equal(q.offer(async () => { order.push('bg3'); }), true);
  assert.equal(q.offer(async () => { order.push('bg4'); }), false);
  // A request uses the free slot at once although background work waits.
  const req = q.run(async () => { order.push('req'); });
  await req;
  assert.deepEqual(order, ['bg1', 'req']);
  g.open();
  await bg1Done.wait;
  // Drain: the queued background jobs run in order once bg1 is done.
  while (q.running > 0 || q.waiting > 0) await new Promise<void>((res) => setImmediate(res));
  assert.deepEqual(order, ['bg1', 'req', 'bg2', 'bg3']);
});
