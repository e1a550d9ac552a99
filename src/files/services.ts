// The file facade's services, built once by the daemon and handed to the route plugins (src/routes/files*.ts,
// src/routes/cache.ts): the tree (store + folders + ids + sizes), cache counters, the cache-miss path to the hub, and
// chunked-upload sessions.

import { statfs } from 'node:fs/promises';
import type { ClassicLevel } from 'classic-level';
import type { Store } from '../../store/index.ts';
import type { Logger } from '../log.ts';
import { FileTree } from './file-tree.ts';
import { CacheStats } from './cache-stats.ts';
import { CacheMiss, type NasWaker, type RemoteSource } from './cache-miss.ts';
import { ChunkedUploads } from './chunked-uploads.ts';

/** What GET /api/files/sync/status reports about the queue toward the NAS (SyncRuntime satisfies it). */
export interface SyncView {
  status(): Promise<{
    role: 'pi' | 'hub';
    hub: { hubUrl: string; connection: string; lastError: string | null; connectedAt: number | null; disconnectedAt: number | null; nextAttemptAt: number | null; caughtUp: boolean; fetchError: string | null; fetchRetryAt: number | null } | null;
    queue: { pending: number; uploading: number; failed: number; synced: number; bytesPending: number };
    dirtyBytes: number;
    conflicts: number;
    wantedFiles: number;
  }>;
}

export interface FileServices {
  tree: FileTree;
  stats: CacheStats;
  miss: CacheMiss;
  chunked: ChunkedUploads;
  sync: SyncView | null;
  /** Free and total bytes of the disk holding the data directory. */
  disk(): Promise<{ free: number; total: number }>;
  close(): Promise<void>;
}

export async function openFileServices(opts: {
  db: ClassicLevel<string, string>;
  store: Store;
  dataDir: string;
  log: Logger;
  sync: (RemoteSource & SyncView) | null;
  nas: NasWaker | null;
  wakeWaitS: number;
}): Promise<FileServices> {
  const tree = new FileTree({ store: opts.store, db: opts.db });
  const stats = await CacheStats.open(opts.db, opts.store);
  const chunked = await ChunkedUploads.open({ db: opts.db, dataDir: opts.dataDir, tree });
  const miss = new CacheMiss({ remote: opts.sync, nas: opts.nas, wakeWaitMs: opts.wakeWaitS * 1000, log: opts.log.child({ module: 'files' }) });
  return {
    tree,
    stats,
    miss,
    chunked,
    sync: opts.sync,
    async disk() {
      const s = await statfs(opts.dataDir);
      return { free: s.bavail * s.bsize, total: s.blocks * s.bsize };
    },
    async close() {
      chunked.close();
      tree.close();
      await stats.close();
    },
  };
}
