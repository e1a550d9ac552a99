// Applying the hub's records on the Pi: metadata always (a file the Pi has no bytes for is a 'remote' record), bytes
// only for files that are pinned or hot. A path with a local change the hub has not acknowledged yet is left alone:
// the upload of that change meets the hub's version in a Commit, and the hub resolves the conflict for both sides.
// Index writes here are not synced one by one: the caller flushes the store once per feed batch, before it saves the
// cursor, so a crash can only make it pull (idempotently) again what it had not made durable.

import { isStoreError, StoreError, type ChunkRef, type FileRecord } from '../../store/index.ts';
import type { SyncModel } from './model.ts';
import { metaOf, sameContent, type RemoteFile } from './wire.ts';
import { downloadInto, type ChunkClient } from './transfer.ts';
import type { Lane } from './push-lanes.ts';
import type { Wanted } from './state.ts';
import type { Wakeup } from './wakeup.ts';
import { isSyncError, SyncError } from './errors.ts';

export type PullResult = 'applied' | 'same' | 'deferred';

export async function applyRemote(m: SyncModel, r: RemoteFile): Promise<PullResult> {
  return m.locks.run(r.path, async () => {
    const { store, state } = m;
    const base = await state.getBase(r.path);
    // Older than the hub version this Pi knows already: read from the feed before a push of this path was answered,
    // applied after it. Applied, it brought back the version the push had just replaced (this Pi's own bytes were
    // dropped, and fetched again when the feed's newer record came), or made it the base of the next push, which then
    // met the hub's newer version as a conflict. The feed brings the newer record next.
    if (base && r.version < base.version) return 'same';
    const local = await store.record(r.path);
    if (sameContent(local, r)) {
      await state.setBase(r.path, r);
      if (local && !local.deleted) await wantIfPinned(m, local, 0);
      return 'same';
    }
    const unpushed = local !== undefined && !sameContent(local, base) && !(local.deleted && base === undefined);
    if (unpushed) {
      await m.queue.enqueue(r.path, local.size, local.seq, local.deleted); // normally queued already; make sure the push happens
      await state.setDeferred(r);
      return 'deferred';
    }
    try {
      if (r.deleted) {
        if (local && !local.deleted) await store.delete(r.path, { baseVersion: local.version, sync: false });
      } else {
        const heat = local && !local.deleted ? await store.heat(r.path) : 0;
        // A file under a pinned directory is pinned in the same transaction as its new version.
        const pin = !(local && !local.deleted && local.pinned) && (await state.underPinnedDir(r.path));
        const rec = await store.commitFile(r.path, metaOf(r), { allowRemote: true, baseVersion: local?.version ?? 0, sync: false, pin });
        if (fetches(m, rec.state === 'remote', rec.pinned, heat)) await state.wantBytes(r.path, rec.size);
      }
    } catch (err) {
      // A local write landed between reading the record and committing: it is a local change now and gets pushed.
      if (isStoreError(err, 'conflict')) return 'deferred';
      throw err;
    }
    await state.setBase(r.path, r);
    return 'applied';
  });
}

/**
 * The records of a feed page that are new to this Pi (no record here, not even a deleted one, and no base): all in one
 * store transaction, their bases and wants in one write. A first pull of a large hub index is almost nothing but such
 * records, and one transaction each cost ~0.7 ms a record on the dev VM. Returns how many were applied and the
 * records left for applyRemote: all the others, and any new one the batch refused (a local file that appeared at that
 * path meanwhile is a conflict there, which applyRemote resolves as usual).
 */
export async function applyNewRemotes(m: SyncModel, remotes: RemoteFile[]): Promise<{ applied: number; rest: RemoteFile[] }> {
  const { store, state } = m;
  const fresh: RemoteFile[] = [];
  const rest: RemoteFile[] = [];
  for (const r of remotes) {
    const isNew = !r.deleted && (await store.record(r.path)) === undefined && (await state.getBase(r.path)) === undefined;
    (isNew ? fresh : rest).push(r);
  }
  if (fresh.length === 0) return { applied: 0, rest };
  const items = [];
  for (const r of fresh) items.push({ path: r.path, meta: metaOf(r), baseVersion: 0, pin: await state.underPinnedDir(r.path) });
  const results = await store.commitFiles(items, { allowRemote: true, sync: false });
  const bases: RemoteFile[] = [];
  const wants: Wanted[] = [];
  results.forEach((rec, i) => {
    if (rec instanceof StoreError) {
      rest.push(fresh[i]!);
      return;
    }
    bases.push(fresh[i]!);
    if (fetches(m, rec.state === 'remote', rec.pinned, 0)) wants.push({ path: rec.path, size: rec.size }); // a new file has no heat yet
  });
  await state.setBasesAndWants(bases, wants);
  return { applied: bases.length, rest };
}

/**
 * After a push found `path` in step with the hub's base after all (a local change undone before it was pushed): the
 * hub's record left aside meanwhile (setDeferred), if any, is applied now; no push would have met it.
 */
export async function applyDeferred(m: SyncModel, path: string): Promise<PullResult | undefined> {
  const r = await m.state.getDeferred(path);
  if (!r) return undefined;
  const result = await applyRemote(m, r);
  if (result === 'applied') await m.store.flush(); // applyRemote leaves that to its caller (see the top)
  return result;
}

export async function wantIfPinned(m: SyncModel, rec: FileRecord, heat: number): Promise<void> {
  let pin = rec.pinned;
  if (!pin && (await m.state.underPinnedDir(rec.path))) {
    await m.store.pin(rec.path, true, { sync: false });
    pin = true;
  }
  if (fetches(m, rec.state === 'remote', pin, heat)) await m.state.wantBytes(rec.path, rec.size);
}

/** Whether the Pi fetches the bytes of a 'remote' file at once: pinned, or at least as hot as the threshold. */
function fetches(m: SyncModel, remote: boolean, pinned: boolean, heat: number): boolean {
  return remote && (pinned || heat >= m.hotThreshold);
}

/** A round of one lane fetches the files it takes until their missing chunks reach this many bytes. */
const ROUND_BYTES = 256 * 1024 * 1024;
/** ...or this many files. */
const ROUND_FILES = 1024;

/**
 * Fetches the bytes of every wanted file from the hub; returns how many files became local. Two lanes, as for pushes
 * (push-lanes.ts): large files beside rounds of small ones, so that a pinned video does not wait behind thousands of
 * photos, and the kernel's copying for the one overlaps the index work per file for the other. Within a round the
 * missing chunks of many files go in one download (bounded in bytes per call), so thousands of small files do not
 * cost a round trip each. A lane that finds nothing looks again when `wantsAdded` is notified (the feed applied a page,
 * a file was pinned) or the other lane finishes a round: waiting for that round alone held a pinned video back until
 * a round of small files was done (on a Pi, seconds), although the lanes exist so that it need not wait. The first
 * failure stops both lanes from starting rounds and is thrown once both stop.
 */
export async function fetchWanted(m: SyncModel, client: ChunkClient, signal?: AbortSignal, wantsAdded?: Wakeup): Promise<{ files: number; bytes: number }> {
  const total = { files: 0, bytes: 0 };
  // A lane is 'idle' while it waits for new wants or for the other one to end a round, 'done' once it has returned.
  const lanes: Record<Lane, 'fetching' | 'idle' | 'done'> = { large: 'fetching', small: 'fetching' };
  let failure: { err: unknown } | undefined;
  let progress = Promise.withResolvers<void>();
  const roundEnded = () => {
    progress.resolve();
    progress = Promise.withResolvers<void>();
  };
  const lane = async (which: Lane, other: Lane): Promise<void> => {
    try {
      while (failure === undefined) {
        const wanted = await m.state.wantedBytes(which, ROUND_FILES);
        if (wanted.length === 0) {
          if (lanes[other] !== 'fetching') return; // neither lane has anything left
          lanes[which] = 'idle';
          const woken = new AbortController();
          await Promise.race(wantsAdded ? [progress.promise, wantsAdded.wait(woken.signal)] : [progress.promise]);
          woken.abort(); // the other lane's round came first: stop waiting on wantsAdded
          lanes[which] = 'fetching';
          continue;
        }
        const got = await fetchRound(m, client, wanted, signal);
        total.files += got.files;
        total.bytes += got.bytes;
        roundEnded();
      }
    } catch (err) {
      failure ??= { err };
    } finally {
      lanes[which] = 'done';
      roundEnded(); // the other lane, waiting for a round of this one, looks again (and stops if nothing is left)
    }
  };
  await Promise.all([lane('large', 'small'), lane('small', 'large')]);
  if (failure) throw failure.err;
  return total;
}

/**
 * One round: the missing chunks of `wanted` (in order, until ROUND_BYTES) in one download, then the files whose chunks
 * all arrived become local and leave the wanted list.
 */
async function fetchRound(m: SyncModel, client: ChunkClient, wanted: string[], signal?: AbortSignal): Promise<{ files: number; bytes: number }> {
  const todo: string[] = [];
  /** The version of each file the round fetches (a newer one the feed brings meanwhile stays wanted). */
  const versions: number[] = [];
  const refs = new Map<string, ChunkRef>();
  let pending = 0;
  for (const path of wanted) {
    const rec = await m.store.record(path);
    if (!rec || rec.deleted || rec.state !== 'remote') {
      await m.state.gotBytes([path]);
      continue;
    }
    todo.push(path);
    versions.push(rec.version);
    for (const c of await m.store.missingChunks(path)) {
      if (!refs.has(c.hash)) pending += c.size;
      refs.set(c.hash, c);
    }
    if (pending >= ROUND_BYTES) break; // fetch this much, mark the files done, then look again
  }
  signal?.throwIfAborted();
  let bytes = 0;
  let failure: { err: unknown } | undefined;
  // Files that need a chunk the hub no longer has (their file changed there since their record came) wait for their
  // next record, and the rest of the round is fetched without them: one file being written on the NAS all the time
  // otherwise failed every round it was in, and ended the session each time.
  const skipped = new Set<string>();
  let left = [...refs.values()];
  for (let attempt = 1; left.length > 0; attempt++) {
    try {
      bytes += (await downloadInto(client, m.store, left, signal ? { signal } : {})).bytes;
      break;
    } catch (err) {
      const gone = isSyncError(err, 'chunk_gone') ? err.details?.hash : undefined;
      if (typeof gone !== 'string' || attempt >= GONE_ATTEMPTS) {
        failure = { err };
        break;
      }
      left = await chunksStillMissing(m, todo, skipped, gone);
    }
  }
  // One transaction and one flush for the round; the flush must come before the wants are dropped, or a crash could
  // forget a want whose file is still 'remote'. A download that stopped partway (a full budget, a lost hub) still
  // makes local the files whose chunks all arrived: a full budget otherwise left every file of the round remote, and
  // each retry failed the same way.
  let promoted: (FileRecord | undefined)[];
  try {
    promoted = await m.store.promoteAllComplete(todo, { sync: false });
    await m.store.flush();
  } catch (err) {
    throw failure ? failure.err : err;
  }
  const done = todo.filter((_, i) => promoted[i]?.state === 'local');
  // A file whose newer version the feed applied during the round is still remote and wanted again: its want stays.
  const renewed = (i: number) => promoted[i]?.state === 'remote' && promoted[i]!.version !== versions[i];
  await m.state.gotBytes(failure ? done : todo.filter((p, i) => !skipped.has(p) && !renewed(i)));
  if (failure) throw failure.err;
  if (skipped.size > 0) {
    const paths = [...skipped];
    throw new SyncError('chunk_gone', `${paths.length} file(s) changed on the hub while they were fetched (${paths[0]}${paths.length > 1 ? ', …' : ''}); fetched again once the hub lists the new version`, { details: { paths } });
  }
  return { files: done.length, bytes };
}

/**
 * Downloads per round that may end in a chunk the hub no longer has: files keep changing there while a round runs
 * (their new records come in meanwhile), so a round gives up after this many and is tried again (fetchLoop).
 */
const GONE_ATTEMPTS = 8;

/**
 * Leaves out (into `skipped`) the files of `todo` that need chunk `gone`; returns the chunks the others still lack. A
 * file whose new record came in meanwhile may no longer need it: then it is fetched as that record says.
 */
async function chunksStillMissing(m: SyncModel, todo: string[], skipped: Set<string>, gone: string): Promise<ChunkRef[]> {
  const refs = new Map<string, ChunkRef>();
  for (const path of todo) {
    if (skipped.has(path)) continue;
    const rec = await m.store.record(path);
    if (!rec || rec.deleted || rec.state !== 'remote') continue;
    if (rec.chunks.some((c) => c.hash === gone)) {
      skipped.add(path);
      continue;
    }
    for (const c of await m.store.missingChunks(path)) refs.set(c.hash, c);
  }
  return [...refs.values()];
}
