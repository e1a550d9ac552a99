// balupi.sync.v1.SyncService: the protocol edge. Each method turns wire messages into calls on the store and the
// sync model (feed, transfer, commit) and back; it decides nothing itself. Both roles serve it.

import { create } from '@bufbuild/protobuf';
import type { ServiceImpl } from '@connectrpc/connect';
import { isStoreError, mapLimit, type FileRecord, type Store } from '../../store/index.ts';
import type { Logger } from '../log.ts';
import { Code, type ConnectError } from '@connectrpc/connect';
import {
  ChangesResponseSchema,
  CommitBatchResponseSchema,
  CommitBatchResultSchema,
  CommitResponseSchema,
  type CommitResponse,
  CommitStatus,
  HelloResponseSchema,
  AcknowledgeResponseSchema,
  MissingChunksResponseSchema,
  Role,
  SyncService,
  UploadChunksResponseSchema,
} from '../gen/balupi/sync/v1/sync_pb.js';
import { changeFeed } from './feed.ts';
import { receiveChunks, sendChunks } from './transfer.ts';
import { applyCommit, unheldChunks, type CommitContext, type CommitOutcome } from './commit.ts';
import type { SyncState } from './state.ts';
import type { SendRate } from './rate.ts';
import { ignoredPath, SyncError } from './errors.ts';
import type { IgnoreRules } from './ignore.ts';
import { fromFileInfo, hashesFrom, hashToBytes, metaOf, PROTOCOL_VERSION, toFileInfo, type RemoteFile } from './wire.ts';
import { toConnectError } from '../rpc/errors.ts';
import { GroupFlush } from './group-flush.ts';
import type { Staging } from './staging.ts';
import { checkInlineShape, inlineChunks, inlineMatches } from './inline-data.ts';
import type { NewFile } from './new-files.ts';
import type { PeerAcks } from './peer-acks.ts';

export const CAPABILITIES = ['changes.follow', 'commit.conflict', 'commit.batch', 'commit.inline', 'changes.acknowledge'] as const;

/** Entries per CommitBatch call (the proto's limit). */
export const MAX_BATCH_COMMITS = 1000;
/** Entries of one batch committed at once: the hub's root refresh and the chunk re-reads of different paths overlap. */
const BATCH_COMMIT_CONCURRENCY = 8;

export interface PeerSeen {
  peerId: string;
  role: 'pi' | 'hub' | 'unspecified';
  at: number;
  indexId: string;
  maxSequence: number;
}

export interface SyncServiceDeps {
  store: Store;
  state: SyncState;
  role: 'pi' | 'hub';
  log: Logger;
  rate?: SendRate;
  /** Runs before a peer's commit of `path` (the hub reads the path from its root folder first). */
  beforeCommit?: (path: string) => Promise<void>;
  /** Writes new files sent with their bytes straight into place (HubRoot.commitNew); undefined per file not taken. */
  commitNew?: (items: NewFile[]) => Promise<(FileRecord | undefined)[]>;
  /** Where chunks uploaded with a place are written (the hub with a root folder; see staging.ts). */
  staging?: Staging;
  /** Peers that said Hello, by id (for status). */
  peers?: Map<string, PeerSeen>;
  /** Aborted when the daemon shuts down: followed feeds end then instead of holding the shutdown up. */
  closing?: AbortSignal;
  /** Told after an upload stored chunks: versions waiting for lost bytes may be complete now (lost-versions.ts). */
  chunksStored?: () => Promise<void>;
  /** The peers a hub knows and how far each acknowledged its feed (peer-acks.ts). */
  acks?: PeerAcks;
  /** Told after a peer acknowledged: versions nobody has the bytes of any more can go (lost-versions.ts). */
  acknowledged?: () => Promise<void>;
  /** Paths this hub leaves out of the sync (ignore.ts): a new version of one is refused, a deletion taken; Hello names them. */
  ignore?: IgnoreRules;
}

export const roleToWire = (r: 'pi' | 'hub'): Role => (r === 'hub' ? Role.HUB : Role.PI);
export const roleFromWire = (r: Role): PeerSeen['role'] => (r === Role.HUB ? 'hub' : r === Role.PI ? 'pi' : 'unspecified');

export function syncService(deps: SyncServiceDeps): ServiceImpl<typeof SyncService> {
  const { store, state, log } = deps;
  const hub = deps.role === 'hub';
  // Uploads and commits write without waiting for the disk, then share fsyncs before they answer.
  const group = new GroupFlush(() => store.flush());
  const commitCtx: CommitContext = {
    store,
    localPeer: state.peerId,
    originOf: (p) => state.getOrigin(p),
    noteOrigin: (p, peer) => state.noteOrigin(p, peer),
    ...(deps.beforeCommit ? { reread: deps.beforeCommit } : {}),
    recordConflict: async (c) => {
      log.warn(c, 'sync conflict resolved');
      await state.recordConflict(c);
    },
    ...(deps.staging ? { vouched: (f: RemoteFile) => deps.staging!.vouches(f) } : {}),
  };
  /** Versions waiting for lost bytes may be complete now (not waited for: the caller's answer does not depend on it). */
  const chunksArrived = (): void =>
    void deps.chunksStored?.().catch((err: unknown) => log.warn({ err }, 'hub: completing versions with lost bytes failed; tried again at the next upload'));
  /** Why a new version of an ignored path is refused for good (the pi keeps its file); a deletion of one goes through. */
  const ignored = (f: RemoteFile): SyncError | undefined => (!f.deleted && deps.ignore?.ignores(f.path) ? ignoredPath(f.path) : undefined);
  const commitOne = async (incoming: RemoteFile, baseVersion: number, peerId: string): Promise<CommitOutcome> => {
    const refused = ignored(incoming);
    if (refused) throw refused;
    await deps.beforeCommit?.(incoming.path);
    return applyCommit(commitCtx, incoming, baseVersion, peerId || 'UNKNOWN', false);
  };
  /**
   * After the flush and writeOrigins: log, and build Commit's answer. An entry of a batch is logged at debug level (the
   * batch gets one line at info: a push of thousands of small files otherwise logged as many lines).
   */
  const finishCommit = (path: string, outcome: CommitOutcome, peerId: string, inBatch = false): CommitResponse => {
    log[inBatch ? 'debug' : 'info']({ path, status: outcome.status, peer: peerId, copy: outcome.copy?.path }, 'sync commit');
    const res = create(CommitResponseSchema, { status: outcome.status === 'ok' ? CommitStatus.OK : CommitStatus.CONFLICT });
    res.file = outcome.file ? toFileInfo(outcome.file) : toFileInfo({ path, size: 0, mtimeMs: 0, mode: 0, hash: '', sha256: null, chunks: [], version: 0, seq: 0, deleted: true });
    if (outcome.copy) res.conflictCopy = toFileInfo(outcome.copy);
    return res;
  };
  return {
    async hello(req) {
      if (req.protocolVersion !== PROTOCOL_VERSION) {
        throw new SyncError('protocol_mismatch', `this peer speaks sync protocol ${PROTOCOL_VERSION}, not ${req.protocolVersion}`);
      }
      if (req.peerId) {
        deps.peers?.set(req.peerId, { peerId: req.peerId, role: roleFromWire(req.role), at: Date.now(), indexId: req.indexId, maxSequence: Number(req.maxSequence) });
        await deps.acks?.seen(req.peerId);
        log.info({ peer: req.peerId, role: roleFromWire(req.role) }, 'sync peer said hello');
      }
      return create(HelloResponseSchema, {
        peerId: state.peerId,
        role: roleToWire(deps.role),
        protocolVersion: PROTOCOL_VERSION,
        capabilities: [...CAPABILITIES],
        indexId: store.indexId,
        maxSequence: BigInt(store.seq),
        ignorePatterns: [...(deps.ignore?.patterns ?? [])],
      });
    },

    async *changes(req, ctx) {
      const signal = deps.closing ? AbortSignal.any([ctx.signal, deps.closing]) : ctx.signal;
      try {
        for await (const b of changeFeed(store, { indexId: req.indexId, since: Number(req.sinceSequence), follow: req.follow, signal })) {
          yield create(ChangesResponseSchema, { indexId: b.indexId, files: b.files.map((f) => toFileInfo(f, hub)), maxSequence: BigInt(b.maxSequence), caughtUp: b.caughtUp });
        }
      } catch (err) {
        throw toConnectError(err);
      }
    },

    async acknowledge(req) {
      if (!req.peerId) throw new SyncError('invalid_argument', 'Acknowledge needs the caller\'s peer id');
      // Another index's sequence says nothing about this one: the caller reads this index from the start.
      if (deps.acks && req.indexId === store.indexId) {
        await deps.acks.acknowledge(req.peerId, req.indexId, Number(req.sequence));
        await deps.acknowledged?.();
      }
      return create(AcknowledgeResponseSchema, {});
    },

    async missingChunks(req) {
      const hashes = hashesFrom(req.hashes);
      const have = new Set(await store.hasChunks(hashes));
      const seen = new Set<string>();
      const missing = hashes.filter((h) => !have.has(h) && !seen.has(h) && seen.add(h));
      return create(MissingChunksResponseSchema, { missing: missing.map(hashToBytes) });
    },

    async uploadChunks(stream) {
      const r = await receiveChunks(store, stream, {
        onReport: (rep) => log.info({ received: rep.received, stored: rep.stored, duplicates: rep.duplicates, rejected: rep.rejected.length, bytes: rep.bytes }, 'chunks received'),
        durable: () => group.flush(),
        ...(deps.staging ? { staging: deps.staging } : {}),
      });
      if (r.stored > 0) chunksArrived();
      return create(UploadChunksResponseSchema, { received: r.received, stored: r.stored, duplicates: r.duplicates, bytes: BigInt(r.bytes) });
    },

    async *downloadChunks(req, ctx) {
      const hashes = hashesFrom(req.hashes);
      const opts = deps.rate ? { rate: deps.rate, signal: ctx.signal } : { signal: ctx.signal };
      // Errors in the middle of a stream pass the interceptor by; map them here (e.g. a chunk we lack: NOT_FOUND).
      try {
        for await (const m of sendChunks(store, hashes.map((hash) => ({ hash })), opts)) yield { hash: m.hash, data: m.data };
      } catch (err) {
        throw toConnectError(err);
      }
    },

    async commit(req) {
      const incoming = fromFileInfo(req.file);
      const outcome = await commitOne(incoming, Number(req.baseVersion), req.peerId);
      await group.flush(); // the answer tells the peer its version is safe here
      await state.writeOrigins();
      return finishCommit(incoming.path, outcome, req.peerId);
    },

    async commitBatch(req) {
      const peer = req.peerId || 'UNKNOWN';
      // Validate everything first: a malformed entry fails the whole call before anything is committed.
      if (req.entries.length === 0 || req.entries.length > MAX_BATCH_COMMITS) {
        throw new SyncError('invalid_argument', `a commit batch has 1 to ${MAX_BATCH_COMMITS} entries, got ${req.entries.length}`);
      }
      const paths = new Set<string>();
      const entries = req.entries.map((e) => {
        const incoming = fromFileInfo(e.file);
        if (paths.has(incoming.path)) throw new SyncError('invalid_argument', `${incoming.path} appears twice in one commit batch`, { details: { path: incoming.path } });
        paths.add(incoming.path);
        if (e.data.length === 0) return { incoming, base: Number(e.baseVersion) };
        checkInlineShape(incoming, e.data);
        return { incoming, base: Number(e.baseVersion), data: e.data, chunks: inlineChunks(incoming, e.data) };
      });
      const outcomes: ({ ok: CommitOutcome; err?: undefined } | { ok?: undefined; err: ConnectError })[] = new Array(entries.length);
      const fail = (i: number, err: unknown) => (outcomes[i] = { err: toConnectError(err) });
      entries.forEach(({ incoming }, i) => {
        const refused = ignored(incoming);
        if (refused) fail(i, refused);
      });
      // Entries with their bytes: checked (a wrong one fails alone, storing nothing); new files then go straight into
      // the hub's root, and the others are stored as if uploaded and committed below.
      const withData = entries.flatMap((e, i) => (e.data && !outcomes[i] ? [i] : []));
      const good = await mapLimit(withData, BATCH_COMMIT_CONCURRENCY, (i) => inlineMatches(store, entries[i]!.incoming, entries[i]!.data!, entries[i]!.chunks!));
      withData.forEach((i, k) => good[k] || fail(i, new SyncError('data_loss', `${entries[i]!.incoming.path}: the data sent does not match its hashes`)));
      const ready = withData.filter((i) => !outcomes[i]);
      const placed = (await deps.commitNew?.(ready.map((i) => ({ file: entries[i]!.incoming, base: entries[i]!.base, data: entries[i]!.data! })))) ?? [];
      ready.forEach((i, k) => {
        if (!placed[k]) return;
        outcomes[i] = { ok: { status: 'ok', file: placed[k] } };
        state.noteOrigin(entries[i]!.incoming.path, peer);
      });
      const rest = ready.filter((i) => !outcomes[i]);
      if (rest.length > 0) await store.putChunks(rest.flatMap((i) => entries[i]!.chunks!), { clean: true, sync: false });
      if (ready.length > 0) chunksArrived(); // inline bytes count as arrived chunks too
      // The hub reads each path from its root folder first (a disk edit not read yet then meets the commit as a conflict).
      await mapLimit(entries, BATCH_COMMIT_CONCURRENCY, async ({ incoming }, i) => (outcomes[i] ? undefined : deps.beforeCommit?.(incoming.path).catch((err: unknown) => void fail(i, err))));
      // New versions in one index transaction; deletions and conflicts go through applyCommit one by one.
      const live = entries.flatMap(({ incoming }, i) => (!outcomes[i] && !incoming.deleted ? [i] : []));
      const recs = await store.commitFiles(live.map((i) => ({ path: entries[i]!.incoming.path, meta: metaOf(entries[i]!.incoming), baseVersion: entries[i]!.base })), { sync: false });
      await mapLimit(live, BATCH_COMMIT_CONCURRENCY, async (i, k) => {
        const r = recs[k]!;
        if (!(r instanceof Error)) {
          outcomes[i] = { ok: { status: 'ok', file: r } };
          state.noteOrigin(entries[i]!.incoming.path, peer);
        } else if (!isStoreError(r, 'conflict')) fail(i, await unheldChunks(store, entries[i]!.incoming, r));
      });
      await mapLimit(entries, BATCH_COMMIT_CONCURRENCY, async ({ incoming, base }, i) => {
        if (outcomes[i]) return;
        try {
          outcomes[i] = { ok: await applyCommit(commitCtx, incoming, base, peer, false) };
        } catch (err) {
          fail(i, err);
        }
      });
      await group.flush(); // one flush makes every entry's index writes durable before the answer acknowledges them
      await state.writeOrigins();
      const results = [];
      const count = { ok: 0, conflict: 0, refused: 0 };
      for (let i = 0; i < entries.length; i++) {
        const o = outcomes[i]!;
        const path = entries[i]!.incoming.path;
        if (o.ok) {
          count[o.ok.status === 'ok' ? 'ok' : 'conflict'] += 1;
          results.push(create(CommitBatchResultSchema, { outcome: { case: 'committed', value: finishCommit(path, o.ok, req.peerId, true) } }));
        } else {
          count.refused += 1;
          log.warn({ path, peer: req.peerId, code: Code[o.err!.code], err: o.err!.rawMessage }, 'sync commit refused');
          results.push(create(CommitBatchResultSchema, { outcome: { case: 'error', value: { code: o.err!.code, message: o.err!.rawMessage } } }));
        }
      }
      log.info({ peer: req.peerId, files: entries.length, ...count, first: entries[0]!.incoming.path }, 'sync commit batch');
      return create(CommitBatchResponseSchema, { results });
    },
  };
}

export { SyncService };
