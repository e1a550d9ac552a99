// The push scheduler: large files in a lane of their own start at once beside the batches of small files, neither
// lane runs more uploads than its limit, a path is never handed out twice, and a lost connection stops new starts
// but lets the running uploads finish before it is rethrown.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { groupsOf, laneOf, LARGE_FILE_BYTES, pushInLanes, type Lane, type LaneSource, type PushItem } from '../../src/sync/push-lanes.ts';

const MiB = 1024 * 1024;

/** A queue in memory: rows in key order, handed out like UploadQueue.due with a size range and a skip set. */
function queueOf(items: PushItem[]): { source: LaneSource; remove: (path: string) => void } {
  const rows = [...items];
  return {
    source: async (lane, limit, skip) => rows.filter((it) => laneOf(it.bytes) === lane && !skip.has(it.path)).slice(0, limit),
    remove: (path) => void rows.splice(rows.findIndex((r) => r.path === path), 1),
  };
}

/** A push that waits until released, so the test decides when each upload ends. */
function controlledPush(remove: (path: string) => void) {
  const started: string[][] = [];
  const waiting = new Map<string, { resolve: () => void; reject: (err: Error) => void }>();
  let running = { large: 0, small: 0 };
  const peak = { large: 0, small: 0 };
  const changed: (() => void)[] = [];
  const push = (group: string[]): Promise<void> => {
    const lane: Lane = group.length === 1 && group[0]!.startsWith('video/') ? 'large' : 'small';
    started.push(group);
    running = { ...running, [lane]: running[lane] + 1 };
    peak[lane] = Math.max(peak[lane], running[lane]);
    for (const f of changed.splice(0)) f();
    return new Promise<void>((resolve, reject) => {
      const done = () => {
        running = { ...running, [lane]: running[lane] - 1 };
        for (const p of group) remove(p);
      };
      waiting.set(group[0]!, { resolve: () => (done(), resolve()), reject: (err) => (done(), reject(err)) });
    });
  };
  /** Resolves once `n` groups have started. */
  const startedCount = (n: number): Promise<void> =>
    started.length >= n ? Promise.resolve() : new Promise((resolve) => changed.push(() => void startedCount(n).then(resolve)));
  return { push, started, waiting, peak, startedCount };
}

test('groupsOf batches small files by count and bytes, and leaves large files (and everything without batching) alone', () => {
  const small = Array.from({ length: 600 }, (_, i) => ({ path: `p/${i}`, bytes: 1000 }));
  assert.deepEqual(groupsOf(small, true).map((g) => g.length), [256, 256, 88], 'at most 256 files per batch');
  const heavy = Array.from({ length: 10 }, (_, i) => ({ path: `h/${i}`, bytes: 7 * MiB }));
  assert.deepEqual(groupsOf(heavy, true).map((g) => g.length), [4, 4, 2], 'at most 32 MiB per batch');
  const photos = Array.from({ length: 300 }, (_, i) => ({ path: `i/${i}`, bytes: 48 * 1024 }));
  assert.deepEqual(groupsOf(photos, true, 8 * MiB).map((g) => g.length), [170, 130], 'a lower bound (a hub taking files inline): at most 8 MiB');
  assert.deepEqual(groupsOf([{ path: 'v', bytes: LARGE_FILE_BYTES }, { path: 'a', bytes: 1 }], true), [['v'], ['a']]);
  assert.deepEqual(groupsOf(small.slice(0, 3), false), [['p/0'], ['p/1'], ['p/2']], 'a hub without commit.batch gets one file per push');
});

test('a large file named after thousands of small ones starts at once, and neither lane exceeds its limit', async () => {
  // Key order puts the videos last, as a queue sorted by path does for "video/" after "docs/".
  const items = [...Array.from({ length: 3000 }, (_, i) => ({ path: `docs/${String(i).padStart(4, '0')}`, bytes: 32 * 1024 })), { path: 'video/a.mp4', bytes: 200 * MiB }, { path: 'video/b.mp4', bytes: 200 * MiB }, { path: 'video/c.mp4', bytes: 200 * MiB }];
  const q = queueOf(items);
  const c = controlledPush(q.remove);
  const run = pushInLanes(q.source, c.push, { batch: true, limits: { large: 2, small: 3 } });
  await c.startedCount(5);
  assert.deepEqual(c.started.filter((g) => g[0]!.startsWith('video/')), [['video/a.mp4'], ['video/b.mp4']], 'two videos run before any batch has finished');
  assert.equal(c.started.filter((g) => g.length > 1).length, 3, 'and three batches beside them');
  // Finish uploads one at a time, in the order they started, until the scheduler has nothing left.
  let finished = false;
  const done = run.finally(() => (finished = true));
  while (!finished) {
    const next = c.waiting.entries().next().value;
    if (next) {
      c.waiting.delete(next[0]);
      next[1].resolve();
      continue;
    }
    await Promise.race([done, c.startedCount(c.started.length + 1)]);
  }
  await run;
  const seen = new Set<string>();
  for (const g of c.started) for (const p of g) {
    assert.ok(!seen.has(p), `${p} was handed out twice`);
    seen.add(p);
  }
  assert.equal(seen.size, items.length, 'every queued file was pushed');
  assert.deepEqual(c.peak, { large: 2, small: 3 });
});

test('a lost connection stops new starts; the running uploads finish first, then the error is thrown', async () => {
  const items = [...Array.from({ length: 2000 }, (_, i) => ({ path: `d/${String(i).padStart(4, '0')}`, bytes: 1000 })), { path: 'video/x', bytes: 100 * MiB }];
  const q = queueOf(items);
  const c = controlledPush(q.remove);
  const run = pushInLanes(q.source, c.push, { batch: true, limits: { large: 1, small: 3 } });
  let settled = false;
  void run.catch(() => {}).finally(() => (settled = true));
  await c.startedCount(4);
  const startedBefore = c.started.length;
  const [firstBatch, ...others] = [...c.waiting.keys()].filter((k) => !k.startsWith('video/'));
  c.waiting.get(firstBatch!)!.reject(new Error('hub gone'));
  c.waiting.delete(firstBatch!);
  await new Promise<void>((resolve) => setImmediate(resolve));
  assert.equal(c.started.length, startedBefore, 'no new upload starts after the failure');
  assert.equal(settled, false, 'the call waits for the uploads still running');
  for (const k of [...others, 'video/x']) {
    c.waiting.get(k)!.resolve();
    c.waiting.delete(k);
  }
  await assert.rejects(run, /hub gone/);
});

test('deletions wait until every other push of the run has finished: a rename\'s new name commits before the old name goes', async () => {
  // Two renames queued before the run (e.g. while the hub slept): each is a new name plus a deletion of the old one.
  const items: PushItem[] = [
    { path: 'docs/a', bytes: 1000 },
    { path: 'docs/new-name', bytes: 1000 },
    { path: 'docs/old-name', bytes: 0, deleted: true },
    { path: 'video/new.mp4', bytes: 200 * MiB },
    { path: 'video/old.mp4', bytes: 0, deleted: true },
  ];
  const q = queueOf(items);
  const c = controlledPush(q.remove);
  const run = pushInLanes(q.source, c.push, { batch: true });
  await c.startedCount(2);
  assert.deepEqual(c.started, [['video/new.mp4'], ['docs/a', 'docs/new-name']], 'the new names go first; neither deletion is in a batch');
  const release = (key: string) => {
    c.waiting.get(key)!.resolve();
    c.waiting.delete(key);
  };
  release('docs/a');
  await new Promise<void>((resolve) => setImmediate(resolve));
  assert.equal(c.started.length, 2, 'the deletions also wait for the other lane (the video is still uploading)');
  release('video/new.mp4');
  await c.startedCount(3);
  assert.deepEqual(c.started[2], ['docs/old-name', 'video/old.mp4'], 'then both deletions, in one batch');
  release('docs/old-name');
  await run;

  // A run that fails pushes no deletion: it stays queued for the next run, behind its new name again.
  const q2 = queueOf([{ path: 'a/new', bytes: 1000 }, { path: 'a/old', bytes: 0, deleted: true }]);
  const c2 = controlledPush(q2.remove);
  const run2 = pushInLanes(q2.source, c2.push, { batch: true });
  await c2.startedCount(1);
  c2.waiting.get('a/new')!.reject(new Error('hub gone'));
  await assert.rejects(run2, /hub gone/);
  assert.deepEqual(c2.started, [['a/new']]);
});
