// The hub's root writer: follows the store's changes and writes each into the root folder (HubRoot's materialize,
// under the path's lock), many at once, while the saved cursor (rootCursor) only passes what is written and noted.
// Apart from hub-root.ts because keeping many writes in flight in order is its own concern, as commitNew's and
// adoptChunkFiles' are (new-files.ts, adopt-chunk-files.ts).

import type { Store } from '../../store/index.ts';
import type { Logger } from '../log.ts';
import type { SyncState } from './state.ts';
import type { PathLocks } from './locks.ts';
import { SMALL_FILE_BYTES } from './small-files.ts';

export interface FollowStoreDeps {
  store: Store;
  state: SyncState;
  log: Logger;
  locks: PathLocks;
  /** Versions commitNew put in place and recorded itself, by sequence: passed over (and dropped from the set). */
  placed: Set<number>;
  /** Writes the store's version of a path into the root; the caller holds the path's lock. */
  materializeLocked: (path: string) => Promise<void>;
  /** Resolves once the store knows about every file written so far. */
  notesWritten: () => Promise<void>;
}

/** The root writer's small files in flight hold up to this many bytes (their copies wait for the worker's batch). */
const SMALL_FILES_IN_FLIGHT = 16 * 1024 * 1024;

/**
 * Writes every store change into the folder, from the saved cursor on, until `signal` aborts. Several files are
 * written at once; the saved cursor only passes a change once every earlier one is written. Up to 256 at once, and
 * small files' bytes up to SMALL_FILES_IN_FLIGHT: the worker writes what waits as one batch with two flushes, and
 * with 64 at once its batches were small (a push's 3,000 small files trailed the commits by ~1 s). Large files take
 * one slot each, and their direct writes wait for one of DirectWrites' two buffers.
 */
export async function followStore(deps: FollowStoreDeps, signal: AbortSignal, concurrency = 256): Promise<void> {
  const { store, state, log, locks, placed, materializeLocked, notesWritten } = deps;
  const cursor = await state.getNumber('rootCursor');
  const order: number[] = [];
  const done = new Set<number>();
  let running = 0;
  let smallBytes = 0;
  // Woken whenever a file is done: Promise.race over up to 256 files in flight attached a reaction to each of them
  // per file started (~12 MB of garbage per 3,000 files).
  let wake: (() => void) | undefined;
  const slot = () => new Promise<void>((resolve) => (wake = resolve));
  // The cursor passes a file once the store knows it is written (else a crash could leave its chunk files). One save
  // at a time, of the latest position: a save per file queued thousands of store transactions behind a push's
  // chunk writes, and the cursor (what status reports as written) trailed the folder by seconds.
  let target: number | undefined;
  let saving: Promise<void> | null = null;
  const save = async (): Promise<void> => {
    while (target !== undefined) {
      const at = target;
      target = undefined;
      await notesWritten();
      await state.setNumber('rootCursor', at).catch(() => {});
    }
    saving = null;
  };
  const advance = (): void => {
    while (order.length > 0 && done.has(order[0]!)) {
      target = order.shift()!;
      done.delete(target);
    }
    if (target !== undefined) saving ??= save();
  };
  try {
    for await (const r of store.followChanges(cursor, { signal })) {
      order.push(r.seq);
      if (placed.delete(r.seq)) {
        done.add(r.seq);
        advance();
        continue;
      }
      const bytes = r.size <= SMALL_FILE_BYTES ? r.size : 0;
      smallBytes += bytes;
      running += 1;
      void locks.run(r.path, () => materializeLocked(r.path))
        .catch((err: unknown) => log.error({ path: r.path, err }, 'hub root: could not write a file'))
        .then(() => {
          running -= 1;
          smallBytes -= bytes;
          done.add(r.seq);
          advance();
          wake?.();
        });
      while (running >= concurrency || smallBytes > SMALL_FILES_IN_FLIGHT) await slot();
    }
  } finally {
    while (running > 0) await slot();
    await saving;
  }
}
