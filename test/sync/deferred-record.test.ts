// A hub record the pi left aside for a local change it had not pushed yet, and that change undone before its push:
// the record must still be applied. Found by bench/soak-sync.ts (seed 838, and likely 3013): the pi had deleted
// d1/d.bin, the NAS then wrote a new d1/d.bin, and the pi wrote and deleted d1/d.bin again in between. The feed's new
// record came while the pi's write was unpushed (left for the push to meet in a commit), the write was then deleted,
// the deletion was in step with the pi's base (the earlier deletion), so nothing was pushed, and the NAS's file never
// reached the pi. Pi model, queue and pusher against a hub in this process, so that each step comes in this order.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyRemote } from '../../src/sync/pull.ts';
import { QueuePusher } from '../../src/sync/queue-pusher.ts';
import { UploadQueue } from '../../src/sync/upload-queue.ts';
import { PathLocks } from '../../src/sync/locks.ts';
import { CAPABILITIES } from '../../src/sync/service.ts';
import { laneOf } from '../../src/sync/push-lanes.ts';
import type { SyncModel } from '../../src/sync/model.ts';
import { fromFileInfo, toFileInfo } from '../../src/sync/wire.ts';
import { bytes, node, type Node } from './in-process.ts';
import { silent } from './in-process.ts';

/** The hub's current record of `path`, as the feed would bring it. */
async function fromHub(hub: Node, path: string) {
  return fromFileInfo(toFileInfo((await hub.store.record(path))!));
}

/** One push run of every due row, as `balupi sync --once` does it. */
async function pushDue(queue: UploadQueue, pusher: QueuePusher) {
  const items = await queue.due(Infinity, { all: true });
  const byLane = { large: items.filter((it) => laneOf(it.bytes) === 'large'), small: items.filter((it) => laneOf(it.bytes) === 'small') };
  return pusher.pushAll(async (lane, limit) => byLane[lane].splice(0, limit), new AbortController().signal);
}

test('a hub record left aside for an unpushed local change is applied once that change is undone before its push', async () => {
  const [pi, hub] = [await node('pi'), await node('hub')];
  try {
    const queue = await UploadQueue.open(pi.db, { minMs: 100, maxMs: 1000 });
    const m: SyncModel = { store: pi.store, state: pi.state, queue, locks: new PathLocks(), log: silent, hotThreshold: 1e9 };
    const pusher = new QueuePusher(m, hub.client);
    pusher.useCapabilities([...CAPABILITIES]);
    const pushQueued = async (path: string) => {
      const r = await pi.store.record(path);
      await queue.enqueue(path, r?.size ?? 0, r?.seq, r?.deleted ?? true);
      return pushDue(queue, pusher);
    };
    // The NAS's first g.bin reaches the pi; the pi deletes it, and the hub follows: the pi's base is that deletion.
    await hub.store.ingest('g.bin', bytes('first, from the NAS'));
    assert.equal(await applyRemote(m, await fromHub(hub, 'g.bin')), 'applied');
    await pi.store.delete('g.bin');
    assert.equal((await pushQueued('g.bin')).get('g.bin'), 'synced');
    const deletion = (await hub.store.record('g.bin'))!;
    assert.equal(deletion.deleted, true);
    // The pi writes a g.bin of its own; before it is pushed, the NAS's new g.bin comes in the feed: left aside.
    await pi.store.ingest('g.bin', bytes('the pi, not pushed yet'));
    const nas = (await hub.store.ingest('g.bin', bytes('second, written on the NAS'), {}, { baseVersion: deletion.version })).file;
    assert.equal(await applyRemote(m, await fromHub(hub, 'g.bin')), 'deferred');
    // The pi's write is undone: deleted again, as its base says. Its push finds nothing to push...
    await pi.store.delete('g.bin');
    assert.equal((await pushQueued('g.bin')).get('g.bin'), 'nothing');
    // ...and the record left aside is applied: the NAS's g.bin is on the pi (listed; its bytes fetched when wanted).
    const now = await pi.store.record('g.bin');
    assert.equal(now?.deleted, false, 'the NAS file is not lost on the pi');
    assert.equal(now?.hash, nas.hash);
    assert.equal((await pi.state.getBase('g.bin'))?.version, nas.version);
    assert.equal(await pi.state.getDeferred('g.bin'), undefined, 'nothing left aside any more');
    assert.equal((await hub.store.record('g.bin'))?.hash, nas.hash, 'the hub keeps it');
  } finally {
    await pi.close();
    await hub.close();
  }
});

test('a record left aside is dropped once a push or a newer record settles the path', async () => {
  const [pi, hub] = [await node('pi'), await node('hub')];
  try {
    const queue = await UploadQueue.open(pi.db, { minMs: 100, maxMs: 1000 });
    const m: SyncModel = { store: pi.store, state: pi.state, queue, locks: new PathLocks(), log: silent, hotThreshold: 1e9 };
    await hub.store.ingest('h.txt', bytes('hub one'));
    assert.equal(await applyRemote(m, await fromHub(hub, 'h.txt')), 'applied');
    const one = (await pi.store.record('h.txt'))!;
    await pi.store.ingest('h.txt', bytes('pi edit'), {}, { baseVersion: one.version });
    await hub.store.ingest('h.txt', bytes('hub two'), {}, { baseVersion: 1 });
    assert.equal(await applyRemote(m, await fromHub(hub, 'h.txt')), 'deferred');
    assert.ok(await pi.state.getDeferred('h.txt'));
    // The push meets the hub's version in a commit (a conflict); the answer sets the base and settles the record.
    const pusher = new QueuePusher(m, hub.client);
    pusher.useCapabilities([...CAPABILITIES]);
    assert.equal((await pushDue(queue, pusher)).get('h.txt'), 'conflict');
    assert.equal(await pi.state.getDeferred('h.txt'), undefined);
  } finally {
    await pi.close();
    await hub.close();
  }
});
