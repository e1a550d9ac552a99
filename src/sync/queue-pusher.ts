// The Pi's upload queue pushed to the hub: what is due goes in lanes (a large file alone, small ones in batches:
// push-lanes.ts) through push.ts, and each push's outcome is recorded in the queue (synced rows leave it, failed ones
// are retried later, a lost connection ends the run). SyncPeer runs it within a session, after Hello said what the
// hub takes.

import { Code, ConnectError } from '@connectrpc/connect';
import type { SyncModel } from './model.ts';
import type { SyncClient } from './client.ts';
import { pushBatch, pushPath, type PushResult } from './push.ts';
import { INLINE_BATCH_BYTES } from './inline-data.ts';
import { pushInLanes, type LaneSource } from './push-lanes.ts';
import { errorMessage, ignoredPath, isConnectionError } from './errors.ts';
import { IgnoreRules } from './ignore.ts';
import { isStoreError } from '../../store/index.ts';
import { sameContent } from './wire.ts';
import { applyDeferred } from './pull.ts';

export type PushOutcome = PushResult | 'failed';
const isPushResult = (r: unknown): r is PushResult => r === 'synced' || r === 'conflict' || r === 'nothing';

export class QueuePusher {
  readonly #m: SyncModel;
  readonly #client: SyncClient;
  /** Whether the hub takes CommitBatch (Hello's `commit.batch`). */
  #batch = false;
  /** Whether it takes small files' bytes inside the commit (`commit.inline`). */
  #inline = false;
  /** What the hub leaves out of the sync (Hello's ignore_patterns): new versions of those paths are not sent. */
  #hubIgnores = new IgnoreRules([]);

  constructor(model: SyncModel, client: SyncClient) {
    this.#m = model;
    this.#client = client;
  }

  /** What the hub said it takes, in its Hello. */
  useCapabilities(capabilities: readonly string[]): void {
    this.#batch = capabilities.includes('commit.batch');
    this.#inline = capabilities.includes('commit.inline');
  }

  /** The paths the hub said it leaves out (checked by the caller: IgnoreRules throws for a pattern it cannot use). */
  useHubIgnores(rules: IgnoreRules): void {
    this.#hubIgnores = rules;
  }

  /** Pushes what `source` has due, large files and batches of small ones side by side; the first connection error ends it. */
  async pushAll(source: LaneSource, signal: AbortSignal): Promise<Map<string, PushOutcome>> {
    const results = new Map<string, PushOutcome>();
    const push = async (due: string[]): Promise<void> => {
      const group = await this.#leaveOut(due, results);
      if (group.length === 0) return;
      const r = group.length === 1 ? new Map([[group[0]!, await this.#pushOne(group[0]!, signal)]]) : await this.#pushGroup(group, signal);
      r.forEach((v, k) => results.set(k, v));
    };
    // Inline, a batch is cut where its small files' bytes fill one CommitBatch: beyond that they would upload first.
    await pushInLanes(source, push, { batch: this.#batch, ...(this.#inline ? { batchBytes: INLINE_BATCH_BYTES } : {}) });
    return results;
  }

  /**
   * New versions of paths the hub leaves out fail here for good, with the hub's own reason, without a round trip (or
   * a large file's first chunk); deletions still go (the hub takes them). Returns the paths to push.
   */
  async #leaveOut(paths: string[], results: Map<string, PushOutcome>): Promise<string[]> {
    if (this.#hubIgnores.empty) return paths;
    const { store, queue, log } = this.#m;
    const rest: string[] = [];
    const left: string[] = [];
    for (const path of paths) {
      const rec = this.#hubIgnores.ignores(path) ? await store.record(path) : undefined;
      if (!rec || rec.deleted) {
        rest.push(path);
        continue;
      }
      const gen = await queue.take(path);
      if (gen === undefined) continue;
      await queue.failed(path, gen, errorMessage(ignoredPath(path)), true);
      results.set(path, 'failed');
      left.push(path);
    }
    if (left.length > 0) log.info({ files: left.length, paths: left.slice(0, 10) }, 'sync: not pushed, the hub leaves these paths out of the sync');
    return rest;
  }

  async #pushOne(path: string, signal: AbortSignal): Promise<PushOutcome> {
    const seqs = new Map<string, number>();
    const gen = await this.#m.queue.take(path, seqs);
    if (gen === undefined) return 'nothing';
    try {
      return await this.#finish(path, gen, await pushPath(this.#m, this.#client, path, signal, seqs.get(path)), signal);
    } catch (err) {
      return this.#finish(path, gen, err, signal);
    }
  }

  /** One batch: one upload, one CommitBatch. A batch the hub refused as a whole is retried file by file. */
  async #pushGroup(paths: string[], signal: AbortSignal): Promise<Map<string, PushOutcome>> {
    const seqs = new Map<string, number>();
    const gens = await this.#m.queue.takeMany(paths, seqs);
    const out = new Map<string, PushOutcome>();
    let results: Map<string, PushResult | ConnectError>;
    try {
      results = await pushBatch(this.#m, this.#client, [...gens.keys()], signal, seqs, { inline: this.#inline });
    } catch (err) {
      if (signal.aborted || isConnectionError(err)) {
        for (const [path, gen] of gens) await this.#m.queue.failed(path, gen, errorMessage(err));
        throw err;
      }
      // Refused as a whole (e.g. one malformed name): one at a time, so that only the bad file stays behind.
      this.#m.log.warn({ files: gens.size, err: errorMessage(err) }, 'sync batch refused by the hub; pushing its files one by one');
      for (const path of gens.keys()) out.set(path, await this.#pushOne(path, signal));
      return out;
    }
    // Synced rows leave the queue in one write. An entry's own error is about that file (the connection evidently
    // works): never a reason to end the session.
    const done: { path: string; gen: number; r: PushResult }[] = [];
    for (const [path, gen] of gens) {
      const r = results.get(path) ?? 'nothing';
      if (isPushResult(r)) done.push({ path, gen, r });
      else out.set(path, await this.#finish(path, gen, r, signal, true));
    }
    await this.#settled(done);
    for (const { path, r } of done) out.set(path, r);
    return out;
  }

  /**
   * Pushes that reached the hub leave the queue (one write for all) and are logged: a batch in one line at info. A
   * path found with nothing to push may have a hub record left aside for the change that was undone (pull.ts).
   */
  async #settled(done: { path: string; gen: number; r: PushResult }[]): Promise<void> {
    await this.#m.queue.syncedMany(done.map(({ path, gen, r }) => ({ path, gen, counted: r !== 'nothing' })));
    for (const { path, r } of done) if (r === 'nothing') await applyDeferred(this.#m, path);
    const pushed = done.filter(({ r }) => r !== 'nothing');
    const each = pushed.length === 1 ? 'info' : 'debug';
    for (const { path, r } of pushed) this.#m.log[each]({ path, result: r }, 'sync pushed');
    if (pushed.length > 1) {
      const conflicts = pushed.filter(({ r }) => r === 'conflict').length;
      this.#m.log.info({ files: pushed.length, conflicts, first: pushed[0]!.path }, 'sync pushed a batch');
    }
  }

  /** Records a push's outcome in the queue (an error: retried later; a lost connection is rethrown). */
  async #finish(path: string, gen: number, r: PushResult | unknown, signal: AbortSignal, entryError = false): Promise<PushOutcome> {
    const { queue, log } = this.#m;
    if (isPushResult(r)) {
      await this.#settled([{ path, gen, r }]);
      return r;
    }
    const err = r;
    if (signal.aborted || (!entryError && isConnectionError(err))) {
      await queue.failed(path, gen, errorMessage(err));
      throw err;
    }
    if (isStoreError(err, 'not_found') && (await this.#dropLost(path, gen, errorMessage(err)))) return 'conflict';
    const permanent = err instanceof ConnectError && err.code === Code.InvalidArgument;
    const row = await queue.failed(path, gen, errorMessage(err), permanent);
    log.warn({ path, err: errorMessage(err), attempts: row?.attempts, retryAt: row?.nextAttemptAt }, 'sync upload failed');
    return 'failed';
  }

  /**
   * A version this Pi holds without its bytes (it moved or copied a file it had not fetched) that the hub lacks too:
   * the file was saved over on the NAS before the move reached the hub. Nobody has those bytes, and retrying cannot
   * change that (found by bench/soak-sync.ts: retried at every backoff for good; later failed for good, the name
   * left here for good without bytes, a file no client could read). The name goes here too, recorded as a conflict
   * that the NAS's edit won, so that every side agrees. False if the path changed meanwhile (pushed as usual), or
   * holds the hub's version by now (the feed brought one): never a deletion of what the hub has.
   */
  async #dropLost(path: string, gen: number, why: string): Promise<boolean> {
    const { store, state, queue, log, locks } = this.#m;
    const dropped = await locks.run(path, async () => {
      const rec = await store.record(path);
      if (!rec || rec.deleted || rec.state !== 'remote' || sameContent(rec, await state.getBase(path))) return false;
      await store.delete(path, { baseVersion: rec.version });
      return true;
    });
    if (!dropped) return false;
    const hubPeer = this.#m.hubPeer ?? 'hub';
    await state.recordConflict({ at: Date.now(), path, copy: null, loserPeer: state.peerId, winnerPeer: hubPeer, reason: 'modified_vs_deleted' });
    await queue.synced(path, gen, false);
    log.warn({ path, err: why }, 'sync: neither this Pi nor the hub has the bytes of this version (its file was saved over on the NAS before the move or copy reached the hub); the name is removed here and listed in conflicts');
    return true;
  }
}
