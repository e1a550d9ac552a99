// Assembles the sync layer for one process: the state, the SyncService every role serves, and per role either the
// Pi's peer loop (with BALUPI_HUB_URL) or the hub's root folder (with BALUPI_HUB_ROOT). The daemon starts it after
// it listens; the CLI builds the same thing without starting it, to answer status/pin/conflicts/sync --once when no
// daemon runs.

import { mkdir } from 'node:fs/promises';
import type { ClassicLevel } from 'classic-level';
import type { ServiceImpl } from '@connectrpc/connect';
import type { Readable } from 'node:stream';
import type { FileRecord, Store } from '../../store/index.ts';
import { StoreError } from '../../store/index.ts';
import type { Logger } from '../log.ts';
import type { SyncService } from '../gen/balupi/sync/v1/sync_pb.js';
import { SyncState, type ConflictRecord } from './state.ts';
import { PeerAcks } from './peer-acks.ts';
import { UploadQueue, type QueueCounts, type QueueItem } from './upload-queue.ts';
import { PathLocks } from './locks.ts';
import { SendRate } from './rate.ts';
import { syncService, type PeerSeen } from './service.ts';
import { SyncPeer, type OnceReport, type PeerStatus } from './peer.ts';
import { DiskIndex } from './disk-index.ts';
import { HubRoot } from './hub-root.ts';
import { RootFileWriter } from './root-file-writer.ts';
import { HubWatcher } from './hub-watcher.ts';
import type { SyncModel } from './model.ts';
import { SyncError } from './errors.ts';
import { createSyncClient, RPC_MAX_BYTES, type SyncClient } from './client.ts';
import { prepareRemoteRead, remoteReadStream, type RemoteRange } from './remote-read.ts';
import { downloadChunksHandler } from './chunk-stream.ts';
import { uploadChunksHandler } from './chunk-upload.ts';
import { commitBatchHandler } from './commit-batch-call.ts';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';

/** Failed uploads listed by status (the count has them all). */
const FAILED_SHOWN = 10;

export interface SyncSettings {
  role: 'pi' | 'hub';
  hubUrl: string | null;
  hubRoot: string | null;
  peerSecret: string;
  syncHotThreshold: number;
  syncRetryMinS: number;
  syncRetryMaxS: number;
  syncMaxSendRate: number | null;
  hubWatchDebounceMs: number;
  hubRescanS: number;
  /** Hub role: paths of the root left out of the sync (ignore.ts; unset: none). */
  hubIgnore?: readonly string[];
  /** Hub role: days a file a peer's change deletes or replaces is kept (versions.ts; unset or 0: not kept)... */
  hubKeepDays?: number;
  /** ...and the most bytes such versions hold (0: no bound; unset or null: a tenth of the root's file system). */
  hubKeepMaxBytes?: number | null;
}

export interface SyncStatus {
  role: 'pi' | 'hub';
  peerId: string;
  indexId: string;
  localSequence: number;
  hub: PeerStatus | null;
  /**
   * The hub's root folder; `awaitingBytes`: versions it cannot write until a peer sends bytes lost there again;
   * `awaitingPeers`: the known peers that have not acknowledged the feed past them yet (once none is left, nobody has
   * those bytes and the versions are dropped); `ignore`: the patterns of paths it leaves out (BALUPI_HUB_IGNORE);
   * `kept`: the versions of replaced files it keeps (BALUPI_HUB_KEEP_DAYS, versions.ts).
   */
  root: {
    path: string;
    scanned: boolean;
    writtenSequence: number;
    awaitingBytes: number;
    awaitingPeers: string[];
    ignore: readonly string[];
    kept: { days: number; maxBytes: number | null; bytes: number | null };
  } | null;
  peers: PeerSeen[];
  queue: QueueCounts;
  /** The first few failed uploads, with why and when they are tried again (null: not until the file changes). */
  failedUploads: { path: string; lastError: string | null; nextAttemptAt: number | null }[];
  /** Bytes of local chunks the hub has not acknowledged yet. */
  dirtyBytes: number;
  conflicts: number;
  wantedFiles: number;
  running: boolean;
}

export interface PinResult {
  path: string;
  pinned: boolean;
  files: number;
  wanted: number;
}

/** How often a hub collects its store's garbage and sweeps its root's abandoned staging files. */
const HUB_UPKEEP_MS = 6 * 3600 * 1000;

export class SyncRuntime {
  readonly service: ServiceImpl<typeof SyncService>;
  private readonly store: Store;
  private readonly state: SyncState;
  private readonly queue: UploadQueue;
  private readonly settings: SyncSettings;
  private readonly log: Logger;
  private readonly peer: SyncPeer | null;
  private readonly hubRoot: HubRoot | null;
  /** The hub root's writer thread for small files (root-file-writer.ts). */
  private readonly rootWriter: RootFileWriter | null;
  private readonly watcher: HubWatcher | null;
  private readonly disk: DiskIndex;
  private readonly peers = new Map<string, PeerSeen>();
  private readonly acks: PeerAcks;
  /** A connection of its own for cache misses (pi role), so a client's download never queues behind sync streams. */
  private missClient: SyncClient | null = null;
  private scanned = false;
  private running = false;
  private starting: Promise<unknown> | null = null;
  /** The hub's periodic upkeep (HubRoot.maintain). */
  private maintenance: NodeJS.Timeout | undefined;
  private readonly closing = new AbortController();
  private readonly rate: SendRate;

  private constructor(init: { store: Store; state: SyncState; queue: UploadQueue; acks: PeerAcks; db: ClassicLevel<string, string>; settings: SyncSettings; log: Logger }) {
    const { store, state, queue, settings, log } = init;
    this.store = store;
    this.state = state;
    this.queue = queue;
    this.settings = settings;
    this.log = log.child({ component: 'sync' });
    const locks = new PathLocks();
    const rate = new SendRate(settings.syncMaxSendRate);
    this.rate = rate;
    this.disk = new DiskIndex(init.db);
    this.acks = init.acks;
    const root = settings.role === 'hub' ? settings.hubRoot : null;
    this.rootWriter = root ? new RootFileWriter({ blake3: store.stats().hasher }) : null;
    const keep = { days: settings.hubKeepDays ?? 0, ...(settings.hubKeepMaxBytes != null ? { maxBytes: settings.hubKeepMaxBytes } : {}) };
    const hubOpts = { ignore: settings.hubIgnore ?? [], keep };
    this.hubRoot = root && this.rootWriter ? new HubRoot({ store, state, disk: this.disk, locks, root, log: this.log, smallFiles: this.rootWriter, ...hubOpts }) : null;
    this.watcher = this.hubRoot ? new HubWatcher({ hubRoot: this.hubRoot, disk: this.disk, log: this.log, debounceMs: settings.hubWatchDebounceMs, rescanMs: settings.hubRescanS * 1000 }) : null;
    const hubRoot = this.hubRoot;
    this.service = syncService({
      store,
      state,
      role: settings.role,
      log: this.log,
      rate,
      peers: this.peers,
      closing: this.closing.signal,
      ...(hubRoot ? { beforeCommit: (p: string) => hubRoot.refresh(p), commitNew: (items) => hubRoot.commitNew(items) } : {}),
      ...(hubRoot?.staging ? { staging: hubRoot.staging } : {}),
      ...(hubRoot ? { chunksStored: () => hubRoot.lost.complete() } : {}),
      ...(hubRoot ? { ignore: hubRoot.ignore } : {}),
      ...(hubRoot ? { acks: this.acks, acknowledged: () => this.dropUnreachable(hubRoot).then(() => {}) } : {}),
    });
    const model: SyncModel = { store, state, queue, locks, log: this.log, hotThreshold: settings.syncHotThreshold, rate };
    this.peer =
      settings.role === 'pi' && settings.hubUrl
        ? new SyncPeer(model, { hubUrl: settings.hubUrl, peerSecret: settings.peerSecret, retryMinMs: settings.syncRetryMinS * 1000, retryMaxMs: settings.syncRetryMaxS * 1000 })
        : null;
  }

  static async create(opts: { store: Store; db: ClassicLevel<string, string>; settings: SyncSettings; log: Logger }): Promise<SyncRuntime> {
    const state = await SyncState.open(opts.db);
    const queue = await UploadQueue.open(opts.db, { minMs: opts.settings.syncRetryMinS * 1000, maxMs: opts.settings.syncRetryMaxS * 1000 });
    const acks = await PeerAcks.open(opts.db);
    return new SyncRuntime({ ...opts, state, queue, acks });
  }

  /** Starts the background work of the role: the peer loop (pi) or the root scan, watcher and writer (hub). */
  start(): void {
    this.running = true;
    if (this.settings.role === 'hub' && !this.settings.hubRoot) this.log.warn('hub role without BALUPI_HUB_ROOT (--root DIR): serving the store only');
    if (this.settings.role === 'pi' && !this.settings.hubUrl) this.log.info('BALUPI_HUB_URL is not set: this Pi does not sync');
    this.peer?.start();
    if (this.watcher && this.hubRoot) {
      const root = this.hubRoot.root;
      const hubRoot = this.hubRoot;
      this.maintenance = setInterval(() => {
        hubRoot.maintain().catch((err: unknown) => this.log.warn({ err }, 'hub upkeep failed; tried again later'));
      }, HUB_UPKEEP_MS);
      this.maintenance.unref();
      this.rootWriter?.warm(); // before the first push needs it
      this.starting = mkdir(root, { recursive: true })
        .then(() => hubRoot.lost.start())
        .then(() => hubRoot.sweepStaging())
        .then(() => hubRoot.expireVersions())
        .then(() => this.watcher!.start())
        .then(() => (this.scanned = true))
        .catch((err) => this.log.error({ err, root }, 'hub root could not be read'));
    }
  }

  async close(): Promise<void> {
    this.running = false;
    clearInterval(this.maintenance);
    this.closing.abort();
    await this.peer?.close();
    await this.starting;
    await this.watcher?.close();
    this.hubRoot?.lost.stop();
    await this.hubRoot?.strays.stop();
    await this.hubRoot?.versions.idle();
    // Started with the hub (warm), its thread would keep the process from exiting.
    await this.rootWriter?.close();
  }

  async status(): Promise<SyncStatus> {
    const stats = this.store.stats();
    const queue = await this.queue.counts();
    return {
      role: this.settings.role,
      peerId: this.state.peerId,
      indexId: this.store.indexId,
      localSequence: stats.seq,
      hub: this.peer?.status() ?? null,
      root: this.hubRoot ? { path: this.hubRoot.root, scanned: this.scanned, writtenSequence: await this.state.getNumber('rootCursor'), awaitingBytes: this.hubRoot.lost.size, awaitingPeers: await this.awaitingPeers(this.hubRoot), ignore: this.hubRoot.ignore.patterns, kept: this.hubRoot.versions.summary } : null,
      peers: [...this.peers.values()],
      queue,
      failedUploads: queue.failed === 0 ? [] : (await this.queue.failedItems(FAILED_SHOWN)).map(({ path, lastError, nextAttemptAt }) => ({ path, lastError, nextAttemptAt })),
      dirtyBytes: stats.dirtyBytes,
      conflicts: await this.state.countConflicts(),
      wantedFiles: await this.state.countWanted(),
      running: this.running,
    };
  }

  private async awaitingPeers(hubRoot: HubRoot): Promise<string[]> {
    const lowest = await hubRoot.lost.lowestSeq();
    return lowest === undefined ? [] : this.acks.list(this.store.indexId).flatMap((p) => (p.acknowledged < lowest ? [p.peerId] : []));
  }

  /**
   * The HTTP/2 handler that serves gRPC DownloadChunks, UploadChunks and CommitBatch without the generic RPC layer's
   * copies (chunk-stream.ts, chunk-upload.ts, commit-batch-call.ts), tried before the generic gRPC handler; it answers
   * false for every other request. Same secret, limits and send rate as the SyncService.
   */
  ownCallsHandler(shutdown: AbortSignal): (req: Http2ServerRequest, res: Http2ServerResponse) => boolean {
    const download = downloadChunksHandler({ store: this.store, peerSecret: this.settings.peerSecret, rate: this.rate, shutdown });
    const own = { service: this.service, peerSecret: this.settings.peerSecret, maxMessageBytes: RPC_MAX_BYTES, shutdown };
    const upload = uploadChunksHandler(own);
    const commit = commitBatchHandler(own);
    return (req, res) => download(req, res) || upload(req, res) || commit(req, res);
  }

  conflicts(): Promise<ConflictRecord[]> {
    return this.state.listConflicts();
  }

  queueItems(): Promise<QueueItem[]> {
    return this.queue.list();
  }

  /** Pins (or unpins) a file or every file under a directory; pinned files' bytes are fetched and never evicted. */
  async pin(path: string, pinned: boolean): Promise<PinResult> {
    const name = path === '/' || path === '.' ? '' : path.replace(/\/+$/, '');
    const rec = name === '' ? undefined : await this.store.record(name);
    let files = 0;
    let wanted = 0;
    const one = async (r: FileRecord) => {
      await this.store.pin(r.path, pinned);
      files += 1;
      if (pinned && r.state === 'remote') {
        await this.state.wantBytes(r.path, r.size);
        wanted += 1;
      }
    };
    if (rec && !rec.deleted) {
      await one(rec);
    } else {
      for await (const r of this.store.filesUnder(name)) await one(r);
      if (files === 0 && name !== '') throw new StoreError('not_found', `no such file or directory: ${name}`, { details: { path: name } });
      await this.state.pinDir(name, pinned);
    }
    return { path: name, pinned, files, wanted };
  }

  /** The hub connection as the NAS presence module sees it (pi role with a hub; null otherwise). */
  hubLink(): { connected(): boolean; on(e: 'change', fn: (c: boolean) => void): unknown; off(e: 'change', fn: (c: boolean) => void): unknown } | null {
    const peer = this.peer;
    if (!peer) return null;
    return { connected: () => peer.connected(), on: (e, fn) => peer.link.on(e, fn), off: (e, fn) => peer.link.off(e, fn) };
  }

  /** What waits to go to the hub, for BaluHost's handshake status (files and bytes in the upload queue). */
  async inbox(): Promise<{ files: number; bytes: number }> {
    const c = await this.queue.counts();
    return { files: c.pending + c.uploading + c.failed, bytes: c.bytesPending };
  }

  /**
   * The NAS (and so the hub) is online: flush the upload queue now — reconnect without waiting out the backoff and
   * retry failed uploads at once. Returns how many failed rows were made due.
   */
  async flushNow(): Promise<number> {
    if (!this.peer) return 0;
    const n = await this.queue.retryFailedNow();
    this.peer.retryNow();
    return n;
  }

  /** Whether this peer can fetch bytes it lacks from a hub (pi role with BALUPI_HUB_URL). */
  get hasHub(): boolean {
    return this.settings.role === 'pi' && this.settings.hubUrl !== null;
  }

  /**
   * Reads (a range of) a file whose bytes are not all here from the hub, storing what arrives (remote-read.ts).
   * Resolves once the hub has answered, so a caller can still refuse before any byte is sent; rejects with a
   * ConnectError when the hub cannot be reached (isHubUnreachable), SyncError('unavailable') without a hub.
   */
  async openRemote(rec: FileRecord, range: RemoteRange, signal?: AbortSignal): Promise<Readable> {
    if (!this.hasHub) throw new SyncError('unavailable', 'this peer has no hub to fetch from (BALUPI_HUB_URL is not set)');
    this.missClient ??= createSyncClient({ baseUrl: this.settings.hubUrl!, peerSecret: this.settings.peerSecret });
    const fetch = await prepareRemoteRead(this.store, this.missClient, rec, range, signal);
    return remoteReadStream(this.store, this.missClient, rec, range, fetch, signal);
  }

  /**
   * A hub forgets a peer that will not come back (a pi retired for good): versions that waited only for it to be asked
   * for their lost bytes are dropped now. Returns whether it was known and how many versions went.
   */
  async forgetPeer(peerId: string): Promise<{ forgotten: boolean; dropped: number }> {
    if (!this.hubRoot) throw new SyncError('invalid_argument', 'forget-peer runs on a hub with a root folder (it keeps the peers)');
    const forgotten = await this.acks.forget(peerId);
    const dropped = forgotten ? await this.dropUnreachable(this.hubRoot) : 0;
    if (forgotten) this.log.info({ peer: peerId, dropped }, 'sync: peer forgotten');
    return { forgotten, dropped };
  }

  /** Drops the waiting versions every known peer has acknowledged past (LostVersions.dropUnreachable). */
  private dropUnreachable(hubRoot: HubRoot): Promise<number> {
    return hubRoot.lost.dropUnreachable(this.acks.floor(this.store.indexId));
  }

  /** One full exchange with the hub (pi role). */
  async once(): Promise<OnceReport> {
    if (!this.peer) throw new SyncError('unavailable', this.settings.role === 'pi' ? 'BALUPI_HUB_URL is not set' : 'sync --once runs on the pi role (the hub waits for its peers)');
    return this.peer.syncOnce();
  }
}
