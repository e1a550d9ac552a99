// Pushing local changes to the hub: upload the chunks the hub lacks (have/want first, so chunks it already
// acknowledged are never sent again, even after a crash), then commit against the hub version each change was based
// on — one path at a time (Commit), or many small files with one upload and one CommitBatch. The hub answers OK or CONFLICT with the outcome, which is applied here so that both sides end up the same.

import type { FileRecord } from '../../store/index.ts';
import { isStoreError } from '../../store/index.ts';
import type { SyncClient } from './client.ts';
import type { SyncModel } from './model.ts';
import { Code, ConnectError } from '@connectrpc/connect';
import { CommitStatus, type CommitBatchResponse, type CommitResponse } from '../gen/balupi/sync/v1/sync_pb.js';
import { fromFileInfo, metaOf, sameContent, toFileInfo, type RemoteFile } from './wire.ts';
import { uploadMissing } from './transfer.ts';
import { LARGE_FILE_BYTES } from './push-lanes.ts';
import { chooseInline, readInline } from './inline-data.ts';
import { wantIfPinned } from './pull.ts';
import { layoutCommitBatch, requestOf, type CommitBatchFrame } from './commit-batch-call.ts';

export type PushResult = 'synced' | 'conflict' | 'nothing';

/** A local change about to be pushed, read under the path's lock. */
interface Pending {
  path: string;
  local: FileRecord;
  base: { version: number; hash: string; deleted: boolean } | undefined;
}

/**
 * The change to push at `path`, or undefined when the path is in step with the hub already. With `queuedSeq` (the
 * record the queue row was for): also undefined when the path has changed since. That newer change is queued on its
 * own, and a push run takes only changes queued before it began: pushed now, a rename's deletion queued during the
 * run could reach the hub before the new name, and the hub would drop the chunks the new name needs.
 */
async function pending(m: SyncModel, path: string, queuedSeq?: number, inStep?: string[]): Promise<Pending | undefined> {
  const local = await m.store.record(path);
  if (queuedSeq !== undefined && local !== undefined && local.seq !== queuedSeq) return undefined;
  const base = await m.state.getBase(path);
  if (local && !local.deleted && sameContent(local, base)) inStep?.push(...local.chunks.map((c) => c.hash));
  if (!local || sameContent(local, base) || (local.deleted && (base === undefined || base.deleted))) return undefined;
  return { path, local, base };
}

/**
 * Chunks of files found in step with the hub are on the hub. They are still dirty when the hub committed a push whose
 * answer was lost (the connection broke) and the pull then brought that version back: clean them, or they could never
 * be evicted.
 */
async function cleanInStep(m: SyncModel, hashes: string[]): Promise<void> {
  if (hashes.length > 0) await m.store.markClean(hashes, { sync: false });
}

const uploadOpts = (m: SyncModel, signal?: AbortSignal) => (m.rate ? { rate: m.rate, ...(signal ? { signal } : {}) } : signal ? { signal } : {});
const commitEntry = (p: Pending) => ({ file: toFileInfo(p.local), baseVersion: BigInt(p.base?.version ?? 0) });

/** A laid-out CommitBatch through a client that only takes messages: it encodes a copy, so the frame goes back after. */
async function sendDecoded(client: SyncClient, req: CommitBatchFrame, signal?: AbortSignal): Promise<CommitBatchResponse> {
  try {
    return await client.commitBatch(requestOf(req), { signal });
  } finally {
    req.done();
  }
}

export async function pushPath(m: SyncModel, client: SyncClient, path: string, signal?: AbortSignal, queuedSeq?: number): Promise<PushResult> {
  return m.locks.run(path, async () => {
    const inStep: string[] = [];
    const p = await pending(m, path, queuedSeq, inStep);
    await cleanInStep(m, inStep);
    if (!p) return 'nothing';
    // A large file's chunks say where they belong: a hub writes them straight into place (staging.ts).
    const file = p.local.size >= LARGE_FILE_BYTES ? { file: { path, size: p.local.size, hash: p.local.hash } } : {};
    if (!p.local.deleted) await uploadMissing(client, m.store, p.local.chunks, { ...uploadOpts(m, signal), ...file });
    const res = await client.commit({ peerId: m.state.peerId, ...commitEntry(p) }, { signal });
    // Not synced: if a crash loses it, the chunks count as dirty again and the next push finds them on the hub.
    if (!p.local.deleted) await m.store.markClean(p.local.chunks.map((c) => c.hash), { sync: false });
    return settle(m, p, res);
  });
}

/**
 * Pushes several paths with one upload and one CommitBatch (the hub must list "commit.batch"): the chunks of all of
 * them go in the same UploadChunks calls, their versions in one commit; with `inline`, new small files' bytes go in
 * the commit itself (inline-data.ts). Returns each path's result, or the error its entry failed with (the others are
 * unaffected). Throws when the batch as a whole failed (connection lost, or a malformed entry the hub refused before
 * committing anything).
 */
export async function pushBatch(
  m: SyncModel,
  client: SyncClient,
  paths: string[],
  signal?: AbortSignal,
  queuedSeqs?: ReadonlyMap<string, number>,
  opts: { inline?: boolean } = {},
): Promise<Map<string, PushResult | ConnectError>> {
  return m.locks.runAll(paths, async () => {
    const out = new Map<string, PushResult | ConnectError>();
    const todo: Pending[] = [];
    const inStep: string[] = [];
    for (const path of paths) {
      const p = await pending(m, path, queuedSeqs?.get(path), inStep);
      if (p) todo.push(p);
      else out.set(path, 'nothing');
    }
    await cleanInStep(m, inStep);
    if (todo.length === 0) return out;
    // New small files carry their bytes in the commit (the hub must list "commit.inline"); the others upload first.
    const inline = opts.inline ? await chooseInline(m.store, todo.map((p) => p.local)) : new Set<FileRecord>();
    const refs = todo.flatMap((p) => (p.local.deleted || inline.has(p.local) ? [] : p.local.chunks));
    if (refs.length > 0) await uploadMissing(client, m.store, refs, uploadOpts(m, signal));
    const req = layoutCommitBatch(m.state.peerId, todo.map(commitEntry), todo.map((p) => (inline.has(p.local) ? p.local.size : 0)));
    await readInline(m.store, todo.flatMap((p, i) => (inline.has(p.local) ? [{ file: p.local, at: req.dataAt[i]! }] : [])), req.frame);
    const res = client.commitBatchFrame ? await client.commitBatchFrame(req, signal) : await sendDecoded(client, req, signal);
    if (res.results.length !== todo.length) throw new ConnectError(`the hub answered ${res.results.length} of ${todo.length} commits`, Code.Internal);
    const committed = todo.filter((_, i) => res.results[i]!.outcome.case === 'committed');
    const clean = committed.flatMap((p) => (p.local.deleted ? [] : p.local.chunks.map((c) => c.hash)));
    if (clean.length > 0) await m.store.markClean(clean, { sync: false });
    // Accepted versions become the bases in one write; conflicts are adopted one by one.
    const bases: { path: string; version: number; hash: string; deleted: boolean }[] = [];
    for (let i = 0; i < todo.length; i++) {
      const p = todo[i]!;
      const o = res.results[i]!.outcome;
      if (o.case !== 'committed') out.set(p.path, new ConnectError(o.value?.message ?? 'no outcome', (o.value?.code ?? Code.Internal) as Code));
      else if (o.value.status === CommitStatus.OK) {
        bases.push({ ...fromFileInfo(o.value.file), path: p.path });
        out.set(p.path, 'synced');
      } else out.set(p.path, await settle(m, p, o.value));
    }
    await m.state.setBasesAndWants(bases, []);
    return out;
  });
}

/** Applies the hub's answer to a commit: OK sets the base; CONFLICT adopts the hub's outcome and records it. */
async function settle(m: SyncModel, p: Pending, res: CommitResponse): Promise<PushResult> {
  const { state } = m;
  const { path, local } = p;
  const now = fromFileInfo(res.file);
  if (res.status === CommitStatus.OK) {
    await state.setBase(path, now);
    return 'synced';
  }
  const copy = res.conflictCopy ? fromFileInfo(res.conflictCopy) : undefined;
  if (copy) await adopt(m, copy, local);
  await adopt(m, now, local);
  const hubPeer = m.hubPeer ?? 'hub';
  await state.recordConflict({
    at: Date.now(),
    path,
    copy: copy?.path ?? null,
    loserPeer: sameContent(now, local) ? hubPeer : state.peerId,
    winnerPeer: sameContent(now, local) ? state.peerId : hubPeer,
    reason: local.deleted || now.deleted ? 'modified_vs_deleted' : 'both_modified',
  });
  m.log.warn({ path, copy: copy?.path, kept: sameContent(now, local) ? 'local' : 'hub' }, 'sync conflict resolved by the hub');
  return 'conflict';
}

/** Makes the local store hold the hub's record `r` (the caller holds the lock of r.path if it is the pushed path). */
async function adopt(m: SyncModel, r: RemoteFile, pushed: FileRecord): Promise<void> {
  const { store, state } = m;
  const cur = await store.record(r.path);
  if (!sameContent(cur, r)) {
    try {
      if (r.deleted) {
        if (cur && !cur.deleted) await store.delete(r.path, { baseVersion: cur.version });
      } else {
        // The copy of our own losing version has our bytes; the hub's winning version may need fetching, as a file the
        // feed brings does: pinned (or under a pinned directory), or hot here. Only pinned ones were, so under `pin /`
        // the winner of a conflict with this Pi stayed remote.
        const heat = cur && !cur.deleted ? await store.heat(r.path) : 0;
        await store.commitFile(r.path, metaOf(r), { allowRemote: true, baseVersion: cur?.version ?? 0, ...(pushed.pinned ? { pin: true } : {}) });
        const rec = await store.record(r.path);
        if (rec && !rec.deleted) await wantIfPinned(m, rec, heat);
      }
    } catch (err) {
      if (!isStoreError(err, 'conflict')) throw err;
      return; // changed locally again meanwhile: that newer change is pushed next, against the base set below
    }
  }
  await state.setBase(r.path, r);
}
