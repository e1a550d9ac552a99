// The change feed a peer reads: the store's records changed after a cursor, in sequence order and in batches, then
// (with `follow`) every later change as it is committed. Each batch says whether it reached the store's highest
// sequence ("caught up"), so a reader knows when it has seen the whole index.

import type { FileRecord, Store } from '../../store/index.ts';

export const FEED_BATCH = 512;

export interface FeedBatch {
  indexId: string;
  files: FileRecord[];
  maxSequence: number;
  caughtUp: boolean;
}

export interface FeedOptions {
  /** The index id the cursor belongs to; a different one (or none) restarts the feed at 0. */
  indexId: string;
  since: number;
  follow: boolean;
  signal?: AbortSignal;
  batch?: number;
}

export async function* changeFeed(store: Store, opts: FeedOptions): AsyncGenerator<FeedBatch> {
  const size = opts.batch ?? FEED_BATCH;
  let since = opts.indexId === store.indexId ? opts.since : 0;
  let first = true;
  while (!opts.signal?.aborted) {
    // Listen before reading, so that a change committed while this pass runs still wakes the next one.
    let changed = false;
    let wake: () => void = () => {};
    const onChange = (): void => {
      changed = true;
      wake();
    };
    store.on('change', onChange);
    try {
      let batch: FileRecord[] = [];
      for await (const r of store.changesSince(since)) {
        batch.push(r);
        since = r.seq;
        if (batch.length >= size) {
          yield { indexId: store.indexId, files: batch, maxSequence: store.seq, caughtUp: since >= store.seq };
          batch = [];
        }
      }
      if (batch.length > 0 || first) yield { indexId: store.indexId, files: batch, maxSequence: store.seq, caughtUp: true };
      first = false;
      if (!opts.follow) return;
      if (!changed) {
        await new Promise<void>((resolve) => {
          wake = resolve;
          opts.signal?.addEventListener('abort', () => resolve(), { once: true });
        });
      }
    } finally {
      store.off('change', onChange);
    }
  }
}
