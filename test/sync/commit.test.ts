// Commits against a base version: OK when the base is current, and when it is not, both versions survive under the
// rules of conflict.ts, identical content is no conflict, a conflict copy never overwrites anything.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyCommit, type CommitContext } from '../../src/sync/commit.ts';
import { SyncState, type ConflictRecord } from '../../src/sync/state.ts';
import { bytes, node, type Node } from './in-process.ts';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileSource } from '../../store/index.ts';
import { setup as withHubRoot } from './hub-root-fixtures.ts';
import { readAll } from '../store/temp-store.ts';
import { Code } from '@connectrpc/connect';
import { isSyncError } from '../../src/sync/errors.ts';
import { toConnectError } from '../../src/rpc/errors.ts';

const at = new Date(2024, 0, 2, 3, 4, 5);

async function setup(fn: (n: Node, ctx: CommitContext, conflicts: ConflictRecord[]) => Promise<void>) {
  const n = await node();
  const conflicts: ConflictRecord[] = [];
  try {
    await fn(n, { store: n.store, localPeer: 'HUBPEER', recordConflict: async (c) => void conflicts.push(c), now: () => at }, conflicts);
  } finally {
    await n.close();
  }
}

/** A version of `path` with the given content whose chunks are in the store (as after an upload). */
async function version(n: Node, content: string, mtimeMs: number) {
  const staged = await n.store.ingest('.staging', bytes(content), { mtimeMs });
  const f = staged.file;
  return { path: '', size: f.size, mtimeMs, mode: 0o644, hash: f.hash, sha256: f.sha256, chunks: f.chunks, version: 0, seq: 0, deleted: false };
}

test('a commit on the current version is OK; on an old one with identical content too', async () => {
  await setup(async (n, ctx, conflicts) => {
    const v1 = await version(n, 'one', 1000);
    const r1 = await applyCommit(ctx, { ...v1, path: 'doc.txt' }, 0, 'PIPEERX');
    assert.equal(r1.status, 'ok');
    assert.equal(r1.file?.version, 1);
    const r2 = await applyCommit(ctx, { ...v1, path: 'doc.txt' }, 0, 'PIPEERX');
    assert.equal(r2.status, 'ok', 'same content on a stale base is not a conflict');
    assert.equal(r2.file?.version, 1, 'and writes nothing');
    assert.equal(conflicts.length, 0);
  });
});

test('a newer incoming version wins: the current one is kept under the conflict name of its peer', async () => {
  await setup(async (n, ctx, conflicts) => {
    await n.store.ingest('doc.txt', bytes('hub version'), { mtimeMs: 1000 });
    await n.store.ingest('doc.txt', bytes('hub version 2'), { mtimeMs: 2000 });
    const mine = await version(n, 'pi version', 3000);
    const r = await applyCommit(ctx, { ...mine, path: 'doc.txt' }, 1, 'PIPEERX');
    assert.equal(r.status, 'conflict');
    assert.equal(r.file?.hash, mine.hash, 'the newer version took the path');
    assert.equal(r.copy?.path, 'doc.sync-conflict-20240102-030405-HUBPEER.txt');
    assert.equal((await n.store.stat(r.copy!.path)).size, 'hub version 2'.length);
    assert.deepEqual(conflicts.map((c) => [c.path, c.loserPeer, c.winnerPeer, c.reason]), [['doc.txt', 'HUBPEER', 'PIPEERX', 'both_modified']]);
  });
});

test('an older incoming version loses: it is kept under its own peer\'s conflict name; a second one gets a fresh name', async () => {
  await setup(async (n, ctx) => {
    await n.store.ingest('doc.txt', bytes('v1'), { mtimeMs: 1000 });
    await n.store.ingest('doc.txt', bytes('hub newer'), { mtimeMs: 5000 });
    const old = await version(n, 'pi older', 2000);
    const r = await applyCommit(ctx, { ...old, path: 'doc.txt' }, 1, 'PIPEERX');
    assert.equal(r.status, 'conflict');
    assert.equal(r.file?.mtimeMs, 5000, 'the path keeps the newer version');
    assert.equal(r.copy?.path, 'doc.sync-conflict-20240102-030405-PIPEERX.txt');
    const older = await version(n, 'pi even older', 1500);
    const again = await applyCommit(ctx, { ...older, path: 'doc.txt' }, 1, 'PIPEERX');
    assert.equal(again.copy?.path, 'doc.sync-conflict-20240102-030405-PIPEERX-2.txt', 'never overwrites an existing copy');
    assert.equal((await n.store.stat(r.copy!.path)).size, 'pi older'.length, 'the first copy is intact');
  });
});

test('modify beats delete, both ways, without a copy', async () => {
  await setup(async (n, ctx, conflicts) => {
    await n.store.ingest('kept.txt', bytes('v1'), { mtimeMs: 1000 });
    await n.store.ingest('kept.txt', bytes('hub edit'), { mtimeMs: 2000 });
    const del = { path: 'kept.txt', size: 0, mtimeMs: 9000, mode: 0o644, hash: '', sha256: null, chunks: [], version: 0, seq: 0, deleted: true };
    const r = await applyCommit(ctx, del, 1, 'PIPEERX');
    assert.equal(r.status, 'conflict');
    assert.equal(r.file?.deleted, false, 'the modification stays');
    assert.equal(r.copy, undefined);

    await n.store.ingest('gone.txt', bytes('v1'), { mtimeMs: 1000 });
    await n.store.delete('gone.txt');
    const edit = await version(n, 'pi edit of a deleted file', 500);
    const r2 = await applyCommit(ctx, { ...edit, path: 'gone.txt' }, 1, 'PIPEERX');
    assert.equal(r2.status, 'conflict');
    assert.equal(r2.file?.hash, edit.hash, 'the modification is resurrected');
    assert.deepEqual(conflicts.map((c) => c.reason), ['modified_vs_deleted', 'modified_vs_deleted']);
  });
});

test('each version a commit makes is noted with its peer at once, so a commit racing it names the right peer; written down later', async () => {
  await setup(async (n, base) => {
    // The hub writes origins after its flush; here nothing is written until the end, as if every commit raced.
    const ctx: CommitContext = { ...base, originOf: (p) => n.state.getOrigin(p), noteOrigin: (p, peer) => n.state.noteOrigin(p, peer) };
    const first = await version(n, 'first pi', 1000);
    assert.equal((await applyCommit(ctx, { ...first, path: 'doc.txt' }, 0, 'PIFIRST')).status, 'ok');
    assert.equal(await n.state.getOrigin('doc.txt'), 'PIFIRST');
    // A second pi's newer edit, based on no version: it wins, and the first pi's version is kept under ITS name.
    const second = await version(n, 'second pi, newer', 3000);
    const r = await applyCommit(ctx, { ...second, path: 'doc.txt' }, 0, 'PISECOND');
    assert.equal(r.copy?.path, 'doc.sync-conflict-20240102-030405-PIFIRST.txt', 'not after the hub, which has written nothing down yet');
    assert.equal(await n.state.getOrigin('doc.txt'), 'PISECOND', 'the winner made the current version');
    assert.equal(await n.state.getOrigin(r.copy!.path), 'PIFIRST');
    // An older edit from a third pi loses: its copy is its own; the path stays the second pi's.
    const third = await version(n, 'third pi, older', 2000);
    const lost = await applyCommit(ctx, { ...third, path: 'doc.txt' }, 1, 'PITHIRD');
    assert.equal(await n.state.getOrigin(lost.copy!.path), 'PITHIRD');
    assert.equal(await n.state.getOrigin('doc.txt'), 'PISECOND');

    await n.state.writeOrigins();
    const reopened = await SyncState.open(n.db);
    assert.deepEqual(
      await Promise.all(['doc.txt', r.copy!.path, lost.copy!.path].map((p) => reopened.getOrigin(p))),
      ['PISECOND', 'PIFIRST', 'PITHIRD'],
      'written down, as noted',
    );
  });
});

test('a conflict copy of a hub version whose root file was just edited in place is not made from bytes that are gone: the edit is read first, then decided anew', async () => {
  await withHubRoot(async (n, _hub, root) => {
    const file = path.join(root, 'doc.txt');
    const readIn = async (baseVersion: number) => (await n.store.ingest('doc.txt', fileSource(file), { mtimeMs: 1000 }, { located: true, baseVersion })).file;
    await fs.writeFile(file, 'the hub version, in its root file');
    const cur = await readIn(0);
    // Someone edits the file in place; the hub has not read that yet when a pi's newer version arrives.
    await fs.writeFile(file, 'edited on the NAS just now');
    const rereads: string[] = [];
    const ctx: CommitContext = {
      store: n.store, localPeer: 'HUBPEER', now: () => at, recordConflict: async () => {},
      reread: async (p) => {
        rereads.push(p);
        await readIn(cur.version);
      },
    };
    const mine = await version(n, 'the pi version, newer', 5000);
    const r = await applyCommit(ctx, { ...mine, path: 'doc.txt' }, 0, 'PIPEERX');
    assert.deepEqual(rereads, ['doc.txt'], 'the edit was read first');
    assert.equal(r.status, 'conflict');
    assert.equal((await n.store.read(r.copy!.path).then(readAll)).toString(), 'edited on the NAS just now', 'the copy holds what the file holds now');
    assert.equal(r.file?.hash, mine.hash);
  });
});

test("a hub version whose bytes are gone everywhere (its root file deleted, unseen) cannot be kept as a copy: a newer incoming version takes the path, recorded as modify beating delete", async () => {
  // Found by bench/soak-sync.ts (seed 39): keeping such a version failed every time, so every push of the path failed
  // (and, answered ABORTED, ended the pi's session each time: thousands of reconnects).
  await withHubRoot(async (n, _hub, root) => {
    const file = path.join(root, 'b.bin');
    await fs.writeFile(file, 'the hub version, in its root file');
    const cur = (await n.store.ingest('b.bin', fileSource(file), { mtimeMs: 1000 }, { located: true })).file;
    await fs.rm(file);
    const rereads: string[] = [];
    const conflicts: ConflictRecord[] = [];
    const ctx: CommitContext = {
      store: n.store, localPeer: 'HUBPEER', now: () => at, recordConflict: async (c) => void conflicts.push(c),
      reread: async (p) => void rereads.push(p), // the hub reads the path and finds nothing it knew there: no change
    };
    const mine = await version(n, 'the pi version, newer', 5000);
    const r = await applyCommit(ctx, { ...mine, path: 'b.bin' }, 0, 'PIPEERX');
    assert.deepEqual(rereads, ['b.bin'], 'read once');
    assert.equal(r.file?.hash, mine.hash, 'the incoming version took the path');
    assert.equal(r.file?.version, cur.version + 1);
    assert.equal(r.copy, undefined, 'no copy stands for bytes nobody has');
    assert.deepEqual(conflicts.map((c) => [c.path, c.copy, c.loserPeer, c.winnerPeer, c.reason]), [['b.bin', null, 'HUBPEER', 'PIPEERX', 'modified_vs_deleted']]);
    assert.deepEqual((await n.store.list('')).map((f) => f.path).sort(), ['.staging', 'b.bin'], 'no copy either');
  });
});

test('a path that keeps changing while a commit is decided fails that commit with path_busy (FAILED_PRECONDITION), never ABORTED, which peers take for a lost connection', async () => {
  await setup(async (n, ctx) => {
    await n.store.ingest('busy.txt', bytes('first'), { mtimeMs: 1000 });
    let edits = 0;
    // Each time the commit looks at who made the current version, someone saves the path again.
    const restless: CommitContext = {
      ...ctx,
      originOf: async (p) => {
        await n.store.ingest(p, bytes(`edit ${++edits}`), { mtimeMs: 2000 + edits });
        return 'HUBPEER';
      },
    };
    const mine = await version(n, 'the pi version, newest', 9000);
    await assert.rejects(applyCommit(restless, { ...mine, path: 'busy.txt' }, 0, 'PIPEERX'), (err: unknown) => {
      assert.equal(isSyncError(err, 'path_busy'), true, String(err));
      assert.equal(toConnectError(err).code, Code.FailedPrecondition);
      return true;
    });
    assert.ok(edits >= 3, 'it decided anew a few times first');
  });
});
