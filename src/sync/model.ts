// What the Pi's sync model works on: its store, what it knows about the hub (SyncState), the upload queue and the
// per-path locks that keep pulling and pushing one path from interleaving.

import type { Store } from '../../store/index.ts';
import type { Logger } from '../log.ts';
import type { SyncState } from './state.ts';
import type { UploadQueue } from './upload-queue.ts';
import type { PathLocks } from './locks.ts';
import type { SendRate } from './rate.ts';

export interface SyncModel {
  store: Store;
  state: SyncState;
  queue: UploadQueue;
  locks: PathLocks;
  log: Logger;
  /** Fetch new bytes of a changed file at once when it is at least this hot (or pinned). */
  hotThreshold: number;
  rate?: SendRate;
  /** The hub's peer id once a Hello answered (names the hub in recorded conflicts). */
  hubPeer?: string;
}
