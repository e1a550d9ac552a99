// balupi.sync.v1.SyncService: the protocol edge. Each method turns wire messages into calls on the store and the
// sync model (feed, transfer, commit) and back; it decides nothing itself. Both roles serve it.

import { create } from '@bufbuild/protobuf';
import type { ServiceImpl } from '@connectrpc/connect';
import type { Store } from '../../store/index.ts';
import type { Logger } from '../log.ts';
import {
  ChangesResponseSchema,
  CommitResponseSchema,
  CommitStatus,
  HelloResponseSchema,
  MissingChunksResponseSchema,
  Role,
  SyncService,
  UploadChunksResponseSchema,
} from '../gen/balupi/sync/v1/sync_pb.js';
import { changeFeed } from './feed.ts';
import { receiveChunks, sendChunks } from './transfer.ts';
import { applyCommit } from './commit.ts';
import type { SyncState } from './state.ts';
import type { SendRate } from './rate.ts';
import { SyncError } from './errors.ts';
import { fromFileInfo, hashesFrom, hashToBytes, PROTOCOL_VERSION, toFileInfo } from './wire.ts';
import { toConnectError } from '../rpc/errors.ts';
import { GroupFlush } from './group-flush.ts';

export const CAPABILITIES = ['changes.follow', 'commit.conflict'] as const;

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
  /** Peers that said Hello, by id (for status). */
  peers?: Map<string, PeerSeen>;
  /** Aborted when the daemon shuts down: followed feeds end then instead of holding the shutdown up. */
  closing?: AbortSignal;
}

export const roleToWire = (r: 'pi' | 'hub'): Role => (r === 'hub' ? Role.HUB : Role.PI);
export const roleFromWire = (r: Role): PeerSeen['role'] => (r === Role.HUB ? 'hub' : r === Role.PI ? 'pi' : 'unspecified');

export function syncService(deps: SyncServiceDeps): ServiceImpl<typeof SyncService> {
  const { store, state, log } = deps;
  // Uploads and commits write without waiting for the disk, then share fsyncs before they answer.
  const group = new GroupFlush(() => store.flush());
  return {
    async hello(req) {
      if (req.protocolVersion !== PROTOCOL_VERSION) {
        throw new SyncError('protocol_mismatch', `this peer speaks sync protocol ${PROTOCOL_VERSION}, not ${req.protocolVersion}`);
      }
      if (req.peerId) {
        deps.peers?.set(req.peerId, { peerId: req.peerId, role: roleFromWire(req.role), at: Date.now(), indexId: req.indexId, maxSequence: Number(req.maxSequence) });
        log.info({ peer: req.peerId, role: roleFromWire(req.role) }, 'sync peer said hello');
      }
      return create(HelloResponseSchema, {
        peerId: state.peerId,
        role: roleToWire(deps.role),
        protocolVersion: PROTOCOL_VERSION,
        capabilities: [...CAPABILITIES],
        indexId: store.indexId,
        maxSequence: BigInt(store.seq),
      });
    },

    async *changes(req, ctx) {
      const signal = deps.closing ? AbortSignal.any([ctx.signal, deps.closing]) : ctx.signal;
      try {
        for await (const b of changeFeed(store, { indexId: req.indexId, since: Number(req.sinceSequence), follow: req.follow, signal })) {
          yield create(ChangesResponseSchema, { indexId: b.indexId, files: b.files.map(toFileInfo), maxSequence: BigInt(b.maxSequence), caughtUp: b.caughtUp });
        }
      } catch (err) {
        throw toConnectError(err);
      }
    },

    async missingChunks(req) {
      const hashes = hashesFrom(req.hashes);
      const have = new Set(await store.hasChunks(hashes));
      const seen = new Set<string>();
      const missing = hashes.filter((h) => !have.has(h) && !seen.has(h) && seen.add(h));
      return create(MissingChunksResponseSchema, { missing: missing.map(hashToBytes) });
    },

    async uploadChunks(stream) {
      const r = await receiveChunks(
        store,
        stream,
        (rep) => log.info({ received: rep.received, stored: rep.stored, duplicates: rep.duplicates, rejected: rep.rejected.length, bytes: rep.bytes }, 'chunks received'),
        () => group.flush(),
      );
      return create(UploadChunksResponseSchema, { received: r.received, stored: r.stored, duplicates: r.duplicates, bytes: BigInt(r.bytes) });
    },

    async *downloadChunks(req, ctx) {
      const hashes = hashesFrom(req.hashes);
      const opts = deps.rate ? { rate: deps.rate, signal: ctx.signal } : { signal: ctx.signal };
      // Errors in the middle of a stream pass the interceptor by; map them here (e.g. a chunk we lack: NOT_FOUND).
      try {
        for await (const m of sendChunks(store, hashes, opts)) yield m;
      } catch (err) {
        throw toConnectError(err);
      }
    },

    async commit(req) {
      const incoming = fromFileInfo(req.file);
      await deps.beforeCommit?.(incoming.path);
      const outcome = await applyCommit(
        {
          store,
          localPeer: state.peerId,
          originOf: (p) => state.getOrigin(p),
          recordConflict: async (c) => {
            log.warn(c, 'sync conflict resolved');
            await state.recordConflict(c);
          },
        },
        incoming,
        Number(req.baseVersion),
        req.peerId || 'UNKNOWN',
        false,
      );
      await group.flush(); // the answer tells the peer its version is safe here
      if (outcome.status === 'ok' && outcome.file && req.peerId) await state.setOrigin(incoming.path, req.peerId);
      log.info({ path: incoming.path, status: outcome.status, peer: req.peerId, copy: outcome.copy?.path }, 'sync commit');
      const res = create(CommitResponseSchema, { status: outcome.status === 'ok' ? CommitStatus.OK : CommitStatus.CONFLICT });
      res.file = outcome.file ? toFileInfo(outcome.file) : toFileInfo({ path: incoming.path, size: 0, mtimeMs: 0, mode: 0, hash: '', sha256: null, chunks: [], version: 0, seq: 0, deleted: true });
      if (outcome.copy) res.conflictCopy = toFileInfo(outcome.copy);
      return res;
    },
  };
}

export { SyncService };
