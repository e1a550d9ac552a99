// Pushing one local change to the hub: upload the chunks the hub lacks (have/want first, so chunks it already
// acknowledged are never sent again, even after a crash), then commit against the hub version the change was based
// on. The hub answers OK or CONFLICT with the outcome, which is applied here so that both sides end up the same.

import type { FileRecord } from '../../store/index.ts';
import { isStoreError } from '../../store/index.ts';
import type { SyncClient } from './client.ts';
import type { SyncModel } from './model.ts';
import { CommitStatus } from '../gen/balupi/sync/v1/sync_pb.js';
import { fromFileInfo, sameContent, toFileInfo, type RemoteFile } from './wire.ts';
import { uploadMissing } from './transfer.ts';

export type PushResult = 'synced' | 'conflict' | 'nothing';

export async function pushPath(m: SyncModel, client: SyncClient, path: string, signal?: AbortSignal): Promise<PushResult> {
  return m.locks.run(path, async () => {
    const { store, state } = m;
    const local = await store.record(path);
    const base = await state.getBase(path);
    if (!local || sameContent(local, base) || (local.deleted && (base === undefined || base.deleted))) return 'nothing';
    if (!local.deleted) {
      const opts = m.rate ? { rate: m.rate, ...(signal ? { signal } : {}) } : signal ? { signal } : {};
      await uploadMissing(client, store, local.chunks, opts);
    }
    const res = await client.commit({ peerId: state.peerId, file: toFileInfo(local), baseVersion: BigInt(base?.version ?? 0) }, { signal });
    const now = fromFileInfo(res.file);
    // Not synced: if a crash loses it, the chunks count as dirty again and the next push finds them on the hub.
    if (!local.deleted) await store.markClean(local.chunks.map((c) => c.hash), { sync: false });
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
  });
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
        // The copy of our own losing version has our bytes; the hub's winning version may need fetching.
        await store.commitFile(r.path, { size: r.size, mtimeMs: r.mtimeMs, mode: r.mode, chunks: r.chunks, hash: r.hash, sha256: r.sha256 }, { allowRemote: true, baseVersion: cur?.version ?? 0 });
        const rec = await store.record(r.path);
        if (rec && !rec.deleted && rec.state === 'remote' && (pushed.pinned || rec.pinned)) await state.wantBytes(r.path);
      }
    } catch (err) {
      if (!isStoreError(err, 'conflict')) throw err;
      return; // changed locally again meanwhile: that newer change is pushed next, against the base set below
    }
  }
  await state.setBase(r.path, r);
}
