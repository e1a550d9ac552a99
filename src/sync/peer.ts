// The Pi's side of the sync: a loop that keeps one session with the hub alive. A session says Hello (pairing secret,
// index id), pulls the hub's change feed from the saved cursor (metadata only) while fetching the bytes of pinned and
// hot files, and once it has caught up follows the feed live and pushes the upload queue (queue-pusher.ts). When the
// hub goes away (the NAS sleeps) the session ends, and the loop reconnects with exponential backoff; meanwhile the Pi
// keeps working and queues its own changes, which a local follower picks up from the store's change feed.

import { EventEmitter } from 'node:events';
import { Code, ConnectError } from '@connectrpc/connect';
import type { SyncModel } from './model.ts';
import type { SyncClient } from './client.ts';
import { createSyncClient } from './client.ts';
import { backoffDelay } from './backoff.ts';
import { applyNewRemotes, applyRemote, fetchWanted } from './pull.ts';
import { fromFileInfo, PROTOCOL_VERSION, sameContent, type RemoteFile } from './wire.ts';
import { CAPABILITIES, roleToWire } from './service.ts';
import { Wakeup } from './wakeup.ts';
import { QueuePusher } from './queue-pusher.ts';
import { acknowledgeFeed, resendLost } from './resend.ts';
import { errorMessage, isConnectionError, isSyncError } from './errors.ts';
import { isStoreError } from '../../store/index.ts';
import { LARGE_FILE_BYTES, laneOf } from './push-lanes.ts';
import { IgnoreRules } from './ignore.ts';

export interface PeerOptions {
  hubUrl: string;
  peerSecret: string;
  retryMinMs: number;
  retryMaxMs: number;
  /** Injected in tests; default: a gRPC client for hubUrl. */
  client?: SyncClient;
}

export type Connection = 'connecting' | 'connected' | 'disconnected' | 'refused' | 'stopped';

export interface PeerStatus {
  hubUrl: string;
  connection: Connection;
  lastError: string | null;
  connectedAt: number | null;
  disconnectedAt: number | null;
  nextAttemptAt: number | null;
  hub: { peerId: string; indexId: string; maxSequence: number } | null;
  /** Last hub sequence applied here. */
  cursor: number;
  caughtUp: boolean;
  /** Why wanted bytes could not be stored here (a cache budget full of pinned files, a full disk), or null. */
  fetchError: string | null;
  /** When fetching is tried again after fetchError (sooner if a new file is wanted). */
  fetchRetryAt: number | null;
}

export interface OnceReport {
  pulled: number;
  pushed: number;
  conflicts: number;
  failed: number;
  fetchedFiles: number;
  fetchedBytes: number;
  cursor: number;
}

/**
 * Hub records of one feed page applied at once: each is a few index reads and one small transaction, and overlapping
 * them keeps the store's write lock busy instead of waiting on each record in turn. Records of the same path still
 * apply in feed order (the path locks queue them in call order).
 */
const APPLY_CONCURRENCY = 32;
/** Local changes between saves of the local follower's cursor. */
const CURSOR_EVERY = 256;
/** The longest wait before fetching again files that changed on the hub while they were fetched (fetchLoop). */
const CHANGED_RETRY_MAX_MS = 30_000;

export class SyncPeer {
  private readonly m: SyncModel;
  private readonly opts: PeerOptions;
  private readonly client: SyncClient;
  private readonly pushWake = new Wakeup();
  /** Wanted bytes may have been added (a feed page applied, a pin): the fetch loop and fetchWanted's idle lanes wake. */
  private readonly fetchWake = new Wakeup();
  /** Cuts a reconnect backoff short (the NAS came online). */
  private readonly retryWake = new Wakeup();
  private readonly stop = new AbortController();
  /** 'change' with true when a session with the hub is established, false when it ends (the NAS presence input). */
  readonly link = new EventEmitter<{ change: [boolean] }>();
  private st: PeerStatus;
  private tasks: Promise<unknown>[] = [];
  private readonly pusher: QueuePusher;
  /** The hub takes acknowledgements of its feed ("changes.acknowledge"). */
  private acknowledges = false;

  constructor(model: SyncModel, opts: PeerOptions) {
    this.m = model;
    this.opts = opts;
    this.client = opts.client ?? createSyncClient({ baseUrl: opts.hubUrl, peerSecret: opts.peerSecret });
    this.pusher = new QueuePusher(model, this.client);
    this.st = { hubUrl: opts.hubUrl, connection: 'disconnected', lastError: null, connectedAt: null, disconnectedAt: null, nextAttemptAt: null, hub: null, cursor: 0, caughtUp: false, fetchError: null, fetchRetryAt: null };
    model.queue.events.on('enqueued', () => this.pushWake.notify());
    model.state.events.on('wanted', () => this.fetchWake.notify());
  }

  connected(): boolean {
    return this.st.connection === 'connected';
  }

  /**
   * The hub is known to be back (BaluHost said so, or its health answered): reconnect now instead of waiting out the
   * backoff, and retry failed uploads at once.
   */
  retryNow(): void {
    this.retryWake.notify();
    this.pushWake.notify();
  }

  /** Every change of `connection` goes through here, so that link listeners see each connect and disconnect once. */
  private setStatus(next: PeerStatus): void {
    const was = this.connected();
    this.st = next;
    if (this.connected() !== was) this.link.emit('change', !was);
  }

  status(): PeerStatus {
    return { ...this.st, hub: this.st.hub && { ...this.st.hub } };
  }

  /** Starts the local follower and the session loop (background; errors are logged, never thrown). */
  start(): void {
    const signal = this.stop.signal;
    this.tasks.push(this.followLocal(signal).catch((err) => signal.aborted || this.m.log.error({ err }, 'local change follower stopped')));
    this.tasks.push(this.loop(signal));
  }

  async close(): Promise<void> {
    this.stop.abort(new Error('sync stopped'));
    this.setStatus({ ...this.st, connection: 'stopped' });
    await Promise.allSettled(this.tasks);
  }

  /** Queues every local change since the saved cursor, then (follow) every later one, for upload. */
  private async followLocal(signal: AbortSignal, follow = true): Promise<void> {
    const { store, state, queue } = this.m;
    const cursor = await state.getNumber('localCursor');
    const changes = follow ? store.followChanges(cursor, { signal }) : store.changesSince(cursor);
    // The cursor is saved every CURSOR_EVERY changes and at the end, not per change (a pull of thousands of files
    // makes as many local changes): after a crash the few changes since the last save are looked at again, which is
    // harmless (enqueueing is idempotent).
    let seen = 0;
    let last = cursor;
    try {
      for await (const r of changes) {
        const base = await state.getBase(r.path);
        if (!sameContent(r, base) && !(r.deleted && base === undefined)) await queue.enqueue(r.path, r.size, r.seq, r.deleted);
        last = r.seq;
        if (++seen % CURSOR_EVERY === 0) await state.setNumber('localCursor', last);
      }
    } finally {
      if (last !== cursor) await state.setNumber('localCursor', last).catch(() => {});
    }
  }

  private async loop(signal: AbortSignal): Promise<void> {
    let failures = 0;
    while (!signal.aborted) {
      this.setStatus({ ...this.st, connection: 'connecting' });
      try {
        await this.session(signal, true, () => (failures = 0));
      } catch (err) {
        if (signal.aborted) break;
        failures += 1;
        const refused = err instanceof ConnectError && err.code === Code.Unauthenticated;
        const wait = backoffDelay(failures, { minMs: this.opts.retryMinMs, maxMs: this.opts.retryMaxMs });
        this.setStatus({ ...this.st, connection: refused ? 'refused' : 'disconnected', lastError: errorMessage(err), disconnectedAt: Date.now(), nextAttemptAt: Date.now() + wait, caughtUp: false });
        if (refused) this.m.log.error({ hub: this.opts.hubUrl, err: errorMessage(err), retryInMs: wait }, 'sync pairing refused by the hub: check BALUPI_PEER_SECRET');
        else if (isConnectionError(err)) this.m.log.warn({ hub: this.opts.hubUrl, err: errorMessage(err), retryInMs: wait }, 'sync hub unreachable; will retry');
        // e.g. a hub that sent wrong bytes for a chunk, or an error of this Pi's store: starting over reads the feed
        // from the cursor again (a chunk the hub no longer has does not end a session: see fetchLoop)
        else this.m.log.warn({ hub: this.opts.hubUrl, err: errorMessage(err), retryInMs: wait }, 'sync session ended by an error; will start over');
        await this.retryWake.wait(signal, wait);
      }
    }
  }

  private async hello(signal: AbortSignal): Promise<void> {
    const { store, state } = this.m;
    const res = await this.client.hello(
      { peerId: state.peerId, role: roleToWire('pi'), protocolVersion: PROTOCOL_VERSION, capabilities: [...CAPABILITIES], indexId: store.indexId, maxSequence: BigInt(store.seq) },
      { signal, timeoutMs: 15_000 },
    );
    this.m.hubPeer = res.peerId;
    this.pusher.useCapabilities(res.capabilities);
    this.acknowledges = res.capabilities.includes('changes.acknowledge');
    await this.useHubIgnores(res.ignorePatterns);
    if ((await state.getHubIndexId()) !== res.indexId) await this.resetHub(res.indexId);
    this.setStatus({
      ...this.st,
      connection: 'connected',
      lastError: null,
      connectedAt: Date.now(),
      nextAttemptAt: null,
      hub: { peerId: res.peerId, indexId: res.indexId, maxSequence: Number(res.maxSequence) },
      cursor: await state.getNumber('hubCursor'),
    });
    this.m.log.info({ hub: this.opts.hubUrl, hubPeer: res.peerId, hubIndex: res.indexId, hubSequence: Number(res.maxSequence), cursor: this.st.cursor }, 'sync connected to the hub');
  }

  /**
   * The paths the hub leaves out (HelloResponse.ignore_patterns): not pushed. When they changed since the last
   * session, uploads the hub refused for good (an ignored path among them) are tried again where the new patterns
   * allow: removing a pattern on the hub is enough for the pis' files under it to arrive.
   */
  private async useHubIgnores(patterns: readonly string[]): Promise<void> {
    const { state, queue, log } = this.m;
    let rules: IgnoreRules;
    try {
      rules = new IgnoreRules(patterns);
    } catch (err) {
      log.warn({ patterns, err: errorMessage(err) }, 'sync: the hub named ignore patterns this Pi cannot use; pushing everything (the hub refuses what it leaves out)');
      rules = new IgnoreRules([]);
    }
    this.pusher.useHubIgnores(rules);
    if ((await state.getNumber('hubIgnoreSeen')) === rules.fingerprint) return;
    const retried = await queue.retryPermanent((p) => !rules.ignores(p));
    await state.setNumber('hubIgnoreSeen', rules.fingerprint);
    if (retried > 0) log.info({ retried, patterns }, 'sync: the hub leaves out other paths now; uploads it refused for good are tried again');
  }

  /** A new hub index (first pairing, or the hub's store was recreated): start over and re-examine every local file. */
  private async resetHub(indexId: string): Promise<void> {
    const { store, state, queue } = this.m;
    await state.resetHub(indexId);
    await queue.enqueueAll((async function* () {
      for await (const r of store.filesUnder('')) yield { path: r.path, bytes: r.size, seq: r.seq, deleted: r.deleted };
    })());
    this.m.log.info({ hubIndex: indexId }, 'sync: new hub index, reading it from the start');
  }

  /** One session: hello, pull until caught up, then (follow) pull live + push + fetch until something fails. */
  private async session(outer: AbortSignal, follow: boolean, onConnected: () => void): Promise<void> {
    const ac = new AbortController();
    const abort = () => ac.abort(outer.reason);
    outer.addEventListener('abort', abort, { once: true });
    const signal = ac.signal;
    try {
      await this.hello(signal);
      onConnected();
      let caughtUp!: () => void;
      const reached = new Promise<void>((resolve) => (caughtUp = resolve));
      // Bytes are fetched while the rest of the feed is still being applied (each page wakes the fetcher): on a first
      // pull, metadata is main-thread work and fetching is mostly the kernel's, so the two overlap. Pushing waits
      // until the Pi has seen the whole hub index, so that it pushes against the hub's latest versions.
      const pulling = this.pull(follow, signal, caughtUp);
      const fetching = this.fetchLoop(signal);
      const tasks = [pulling, fetching];
      try {
        const ended = () => Promise.race(tasks.map((t) => t.then(() => { throw new ConnectError('the hub closed the change feed', Code.Unavailable); })));
        await Promise.race([reached, ended()]);
        tasks.push(this.pushLoop(signal));
        await ended();
      } finally {
        ac.abort(new Error('session ended'));
        await Promise.allSettled(tasks);
      }
    } finally {
      outer.removeEventListener('abort', abort);
    }
  }

  /** Reads the feed from the cursor; resolves when the stream ends (only without follow). Returns records applied. */
  private async pull(follow: boolean, signal: AbortSignal, onCaughtUp: () => void): Promise<number> {
    const { state, log } = this.m;
    let indexId = (await state.getHubIndexId()) ?? '';
    let cursor = await state.getNumber('hubCursor');
    let applied = 0;
    // Once per session: an acknowledgement the last session could not send (the hub went away right after a page).
    if (this.acknowledges && indexId && cursor > 0) await acknowledgeFeed(this.m, this.client, indexId, cursor, signal);
    for await (const msg of this.client.changes({ indexId, sinceSequence: BigInt(cursor), follow }, { signal })) {
      if (msg.indexId !== indexId) {
        await this.resetHub(msg.indexId);
        indexId = msg.indexId;
      }
      const remotes: RemoteFile[] = [];
      const lost: RemoteFile[] = [];
      for (const f of msg.files) {
        try {
          remotes.push(fromFileInfo(f));
          if (f.incomplete) lost.push(remotes.at(-1)!);
        } catch (err) {
          log.warn({ path: f.path, err: errorMessage(err) }, 'sync: ignored an invalid record from the hub');
        }
      }
      const fresh = await applyNewRemotes(this.m, remotes);
      applied += fresh.applied;
      const running = new Set<Promise<unknown>>();
      for (const remote of fresh.rest) {
        const p = applyRemote(this.m, remote).then((r) => { if (r === 'applied') applied += 1; });
        running.add(p);
        void p.finally(() => running.delete(p)).catch(() => {});
        if (running.size >= APPLY_CONCURRENCY) await Promise.race(running);
      }
      await Promise.all(running);
      // Before the cursor moves past them: a session that ends first reads these records again.
      if (lost.length > 0) await resendLost(this.m, this.client, lost, signal);
      const last = msg.files.at(-1);
      if (last) {
        await this.m.store.flush();
        cursor = Number(last.sequence);
        await state.setNumber('hubCursor', cursor);
        if (lost.length > 0 && this.acknowledges) await acknowledgeFeed(this.m, this.client, indexId, cursor, signal);
      }
      this.st.cursor = cursor;
      if (this.st.hub) this.st.hub.maxSequence = Number(msg.maxSequence);
      if (last) this.fetchWake.notify();
      if (msg.caughtUp) {
        if (!this.st.caughtUp) log.info({ cursor }, 'sync caught up with the hub');
        this.st.caughtUp = true;
        onCaughtUp();
      }
    }
    return applied;
  }

  /** Pushes due queue rows; returns when `signal` aborts, throws when the hub is gone. */
  private async pushLoop(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      if ((await this.m.queue.due(1)).length === 0) {
        const next = await this.m.queue.nextRetryAt();
        await this.pushWake.wait(signal, next === null ? null : Math.max(0, next - Date.now()));
        continue;
      }
      // Only changes queued before this run: one queued meanwhile waits for the run to end, as a rename's deletion
      // must not reach the hub before the new name (whose chunks the hub still has from the old one) is committed.
      const until = this.m.queue.now();
      const bytes = { large: { min: LARGE_FILE_BYTES }, small: { below: LARGE_FILE_BYTES } };
      await this.pusher.pushAll((lane, limit, skip) => this.m.queue.due(limit, { bytes: bytes[lane], skip, until }), signal);
    }
  }

  /**
   * Fetches wanted bytes whenever something is wanted. A store that cannot take them (its budget full of pinned files,
   * a full disk) is this Pi's condition, not the hub's: the session stays up, the error shows in the status, and the
   * fetch is tried again after a backoff or as soon as another file is wanted. Ending the session for it made the Pi
   * reconnect in a loop, and the hub answered the downloads it kept cancelling with ENHANCE_YOUR_CALM. Nor does a file
   * that changed on the hub while it was fetched (the rest of its round is fetched; it is when its new record comes).
   */
  private async fetchLoop(signal: AbortSignal): Promise<void> {
    let failures = 0;
    while (!signal.aborted) {
      let wait: number | null = null;
      try {
        const got = await fetchWanted(this.m, this.client, signal, this.fetchWake);
        if (got.files > 0) this.m.log.info(got, 'sync fetched pinned/hot files');
        failures = 0;
        if (this.st.fetchError !== null) this.setStatus({ ...this.st, fetchError: null, fetchRetryAt: null });
      } catch (err) {
        const changed = isSyncError(err, 'chunk_gone');
        if (signal.aborted || !(changed || isStoreError(err, 'cache_full') || isStoreError(err, 'no_space'))) throw err;
        // A file that changed on the hub is fetched when its new record comes (which wakes this loop), else after a
        // wait of at most 30 s: a hub whose copy is damaged answers the same each time, but a file written to all the
        // time must not stay stale for minutes should its last record come while a round runs.
        failures += 1;
        const maxMs = changed ? Math.min(this.opts.retryMaxMs, CHANGED_RETRY_MAX_MS) : this.opts.retryMaxMs;
        wait = backoffDelay(failures, { minMs: this.opts.retryMinMs, maxMs });
        this.setStatus({ ...this.st, fetchError: errorMessage(err), fetchRetryAt: Date.now() + wait });
        this.m.log.warn({ err: errorMessage(err), retryInMs: wait }, changed ? 'sync: wanted files changed on the hub while being fetched; will fetch the new version' : 'sync cannot store the wanted files here; will retry');
      }
      await this.fetchWake.wait(signal, wait);
    }
  }

  /** `balupi sync --once`: hello, pull the feed to its end, push every queued change (failed ones too), fetch. */
  async syncOnce(): Promise<OnceReport> {
    const signal = this.stop.signal;
    await this.followLocal(signal, false);
    await this.hello(signal);
    const pulled = await this.pull(false, signal, () => {});
    const report: OnceReport = { pulled, pushed: 0, conflicts: 0, failed: 0, fetchedFiles: 0, fetchedBytes: 0, cursor: this.st.cursor };
    for (let round = 0; round < 3; round++) {
      // Every due row (failed ones too) once per round: a file that fails is tried again in the next round only.
      const items = await this.m.queue.due(Infinity, { all: true });
      if (items.length === 0) break;
      const byLane = { large: items.filter((it) => laneOf(it.bytes) === 'large'), small: items.filter((it) => laneOf(it.bytes) === 'small') };
      for (const r of (await this.pusher.pushAll(async (lane, limit) => byLane[lane].splice(0, limit), signal)).values()) {
        if (r === 'synced') report.pushed += 1;
        else if (r === 'conflict') report.conflicts += 1;
        else if (r === 'failed') report.failed += 1;
      }
    }
    const got = await fetchWanted(this.m, this.client, signal);
    report.fetchedFiles = got.files;
    report.fetchedBytes = got.bytes;
    return report;
  }
}
