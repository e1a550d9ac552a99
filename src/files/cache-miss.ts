// A download of a file whose bytes are on the NAS only. The hub's bytes are streamed through (and kept: see
// src/sync/remote-read.ts). If the hub does not answer, the NAS is probably asleep: ensureNasAvailable wakes it and
// the hub is asked again until BALUPI_WAKE_WAIT_S have passed; then, or at once when there is nothing to wake (no hub,
// no NAS MAC), the answer is 503 with Retry-After, on which BaluApp ends its sync run and tries later.

import type { Readable } from 'node:stream';
import type { FileRecord } from '../../store/index.ts';
import type { Logger } from '../log.ts';
import { isHubUnreachable } from '../sync/remote-read.ts';
import type { RemoteRange } from '../sync/remote-read.ts';
import { FilesError } from './errors.ts';

/** What a cache miss needs of the sync runtime (SyncRuntime satisfies it). */
export interface RemoteSource {
  readonly hasHub: boolean;
  openRemote(rec: FileRecord, range: RemoteRange, signal?: AbortSignal): Promise<Readable>;
}

/** What it needs of the NAS service (NasService satisfies it). */
export interface NasWaker {
  ensureNasAvailable(reason: string, opts?: { signal?: AbortSignal; by?: string }): Promise<{ woke: boolean }>;
}

export interface CacheMissOptions {
  remote: RemoteSource | null;
  nas: NasWaker | null;
  wakeWaitMs: number;
  log: Logger;
  /** Seconds in the Retry-After of a 503 (default: the wake wait, at least 30). */
  retryAfterS?: number;
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
  });

export class CacheMiss {
  private readonly o: CacheMissOptions;

  constructor(opts: CacheMissOptions) {
    this.o = opts;
  }

  private unavailable(why: string): FilesError {
    const retry = this.o.retryAfterS ?? Math.max(30, Math.ceil(this.o.wakeWaitMs / 1000));
    return new FilesError('hub_unavailable', `The file is on the NAS, which is not reachable now (${why}); try again later`, { 'Retry-After': String(retry) });
  }

  /** The bytes of `range` of a 'remote' file, once the hub answered; FilesError('hub_unavailable') if it never did. */
  async open(rec: FileRecord, range: RemoteRange, signal: AbortSignal): Promise<Readable> {
    const { remote, nas, log } = this.o;
    if (!remote?.hasHub) throw this.unavailable('no hub configured');
    const deadline = AbortSignal.any([signal, AbortSignal.timeout(this.o.wakeWaitMs)]);
    const waited = () => `no answer within ${Math.round(this.o.wakeWaitMs / 1000)} s`;
    let pause = 250;
    for (let attempt = 0; ; attempt++) {
      try {
        return await remote.openRemote(rec, range, signal);
      } catch (err) {
        if (signal.aborted || !isHubUnreachable(err)) throw err;
        if (!nas) throw this.unavailable('the hub does not answer');
        if (deadline.aborted) throw this.unavailable(waited());
        if (attempt === 0) log.info({ path: rec.path, err: (err as Error).message }, 'cache miss: the hub does not answer; making sure the NAS is up');
      }
      // Asked on every round: it returns at once while BaluHost answers, and wakes the NAS once the NAS service has
      // seen it go down (it may still count it as up for a few probes after it fell asleep).
      let woke = false;
      try {
        woke = (await nas.ensureNasAvailable(`download of ${rec.path}`, { signal: deadline, by: 'cache miss' })).woke;
      } catch (err) {
        if (signal.aborted) throw err;
        throw this.unavailable(deadline.aborted ? waited() : (err as Error).message);
      }
      if (!woke) {
        // BaluHost answers but the hub beside it does not (yet): ask again shortly.
        await sleep(pause, deadline);
        pause = Math.min(pause * 2, 2_000);
      }
    }
  }
}
