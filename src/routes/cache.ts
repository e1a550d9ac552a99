// GET /api/cache/stats (hit rate, hits, misses, cached bytes, budget, evictions, dedup) and GET /api/files/sync/status
// (the Pi's queue toward the NAS and the hub connection). Read-only views; the numbers come from the store, the cache
// counters and the sync runtime.

import type { FastifyPluginAsync } from 'fastify';
import type { FileServices } from '../files/services.ts';

export interface CacheRoutesOptions {
  files: FileServices;
}

const iso = (ms: number | null | undefined) => (ms === null || ms === undefined ? null : new Date(ms).toISOString());

export const cacheRoutes: FastifyPluginAsync<CacheRoutesOptions> = async (app, { files }) => {
  app.get('/api/cache/stats', async () => files.stats.report());

  app.get('/api/files/sync/status', async () => {
    const s = await files.sync?.status();
    const hub = s?.hub ?? null;
    const q = s?.queue ?? { pending: 0, uploading: 0, failed: 0, synced: 0, bytesPending: 0 };
    return {
      role: s?.role ?? null,
      queue: { pending: q.pending, uploading: q.uploading, failed: q.failed, synced: q.synced },
      files_pending: q.pending + q.uploading + q.failed,
      bytes_pending: q.bytesPending,
      unsynced_bytes: s?.dirtyBytes ?? files.tree.store.stats().dirtyBytes,
      conflicts: s?.conflicts ?? 0,
      wanted_files: s?.wantedFiles ?? 0,
      hub: hub && {
        url: hub.hubUrl,
        connection: hub.connection,
        connected: hub.connection === 'connected',
        caught_up: hub.caughtUp,
        last_error: hub.lastError,
        connected_at: iso(hub.connectedAt),
        disconnected_at: iso(hub.disconnectedAt),
        next_attempt_at: iso(hub.nextAttemptAt),
        fetch_error: hub.fetchError,
        fetch_retry_at: iso(hub.fetchRetryAt),
      },
    };
  });
};
