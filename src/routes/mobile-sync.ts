// BaluApp's sync folders: GET/POST /api/mobile/sync/folders/{device_id}, PUT/DELETE /api/mobile/sync/folders/{folder_id}.
// Shapes are BaluHost's SyncFolder (id, device_id, local_path, remote_path, sync_type, auto_sync, last_sync, status,
// created_at; times `…Z`) plus the conflict_resolution and exclude_patterns BaluApp sends and reads back.
import type { FastifyPluginAsync } from 'fastify';
import { resolvePath } from '../files/paths.ts';
import type { MobileFolder, MobileFolders, MobileFolderUpdate } from '../sync-api/mobile-folders.ts';
import { isoZ } from '../sync-api/time.ts';

export interface MobileSyncRoutesOptions {
  folders: MobileFolders;
}

interface FolderBody {
  local_path?: string;
  remote_path?: string;
  sync_type?: string;
  auto_sync?: boolean;
  conflict_resolution?: string;
  exclude_patterns?: string[];
  status?: string;
}

const SYNC_TYPES = ['upload', 'upload_only', 'download', 'download_only', 'bidirectional', 'two_way'];
const STATUSES = ['idle', 'syncing', 'in_progress', 'error', 'failed', 'paused'];

const folderProperties = {
  local_path: { type: 'string', minLength: 1, maxLength: 4096 },
  remote_path: { type: 'string', minLength: 1, maxLength: 4096 },
  sync_type: { type: 'string', enum: SYNC_TYPES },
  auto_sync: { type: 'boolean' },
  conflict_resolution: { type: 'string', maxLength: 64 },
  exclude_patterns: { type: 'array', maxItems: 1000, items: { type: 'string', maxLength: 1024 } },
} as const;

const idParams = (name: string) => ({ type: 'object', properties: { [name]: { type: 'string', minLength: 1, maxLength: 255 } } });

function toJson(f: MobileFolder) {
  return {
    id: f.id,
    device_id: f.deviceId,
    local_path: f.localPath,
    remote_path: f.remotePath,
    sync_type: f.syncType,
    auto_sync: f.autoSync,
    conflict_resolution: f.conflictResolution,
    exclude_patterns: f.excludePatterns,
    last_sync: f.lastSync === null ? null : isoZ(f.lastSync),
    status: f.status,
    created_at: isoZ(f.createdAt),
  };
}

export const mobileSyncRoutes: FastifyPluginAsync<MobileSyncRoutesOptions> = async (app, { folders }) => {
  app.get<{ Params: { device_id: string } }>('/api/mobile/sync/folders/:device_id', { schema: { params: idParams('device_id') } }, async (req) =>
    (await folders.list(req.user!.id, req.params.device_id)).map(toJson));

  app.post<{ Params: { device_id: string }; Body: FolderBody }>('/api/mobile/sync/folders/:device_id', {
    schema: { params: idParams('device_id'), body: { type: 'object', required: ['local_path', 'remote_path'], properties: folderProperties } },
  }, async (req) => {
    const user = req.user!;
    const b = req.body;
    const folder = await folders.create(user.id, req.params.device_id, {
      localPath: b.local_path!,
      remotePath: resolvePath(user, b.remote_path!, 'read'),
      syncType: b.sync_type ?? 'bidirectional',
      autoSync: b.auto_sync ?? true,
      conflictResolution: b.conflict_resolution ?? 'keep_newest',
      excludePatterns: b.exclude_patterns ?? [],
    });
    return toJson(folder);
  });

  app.put<{ Params: { folder_id: string }; Body: FolderBody }>('/api/mobile/sync/folders/:folder_id', {
    schema: { params: idParams('folder_id'), body: { type: 'object', properties: { ...folderProperties, status: { type: 'string', enum: STATUSES } } } },
  }, async (req) => {
    const user = req.user!;
    const b = req.body;
    const change: MobileFolderUpdate = {
      localPath: b.local_path,
      remotePath: b.remote_path === undefined ? undefined : resolvePath(user, b.remote_path, 'read'),
      syncType: b.sync_type,
      autoSync: b.auto_sync,
      conflictResolution: b.conflict_resolution,
      excludePatterns: b.exclude_patterns,
      status: b.status,
    };
    return toJson(await folders.update(user.id, req.params.folder_id, change));
  });

  app.delete<{ Params: { folder_id: string } }>('/api/mobile/sync/folders/:folder_id', { schema: { params: idParams('folder_id') } }, async (req, reply) => {
    await folders.remove(req.user!.id, req.params.folder_id);
    return reply.code(204).send();
  });
};
