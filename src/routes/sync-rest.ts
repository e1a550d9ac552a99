// BaluHost's sync endpoints for BaluDesk and BaluApp, answered from the Pi's store (src/sync-api/ explains the
// comparison): /api/sync/preflight, /changes, /state, /status/{device_id}, /report-folders, /synced-folders.
// register-desktop is the pairing routes' (it goes to BaluHost; a successful answer registers the device here).
//
// The sleep guard: BaluHost answers an `X-Sync-Trigger: auto|scheduled` request with 503 while it sleeps. The Pi
// answers sync itself and never sleeps, so the header is accepted and never blocks; preflight always allows sync.
import { randomUUID } from 'node:crypto';
import type { FastifyPluginAsync } from 'fastify';
import type { Store } from '../../store/index.ts';
import { resolvePath } from '../files/paths.ts';
import { computeChanges, pendingSince, syncState } from '../sync-api/changes.ts';
import type { Platform, SyncDevices, SyncDirection } from '../sync-api/devices.ts';
import { SyncApiError } from '../sync-api/errors.ts';
import { isoPlus00 } from '../sync-api/time.ts';

export interface SyncRestRoutesOptions {
  store: Store;
  devices: SyncDevices;
}

/** BaluDesk's first /changes lists every file it knows (~150 bytes each): room for a few hundred thousand. */
const CHANGES_BODY_LIMIT = 64 * 1024 * 1024;

const SHA256_OR_EMPTY = '^([0-9a-fA-F]{64})?$';

interface ChangesBody {
  device_id: string;
  change_token?: string | null;
  file_list: { path: string; hash: string; size: number; modified_at?: string | null }[];
}

interface ReportBody {
  device_id: string;
  device_name: string;
  platform: Platform;
  folders: { remote_path: string; sync_direction: SyncDirection }[];
}

const notRegistered = (code: 'sync_device_not_registered' | 'sync_device_not_found') => new SyncApiError(code, 'Device not registered');

export const syncRestRoutes: FastifyPluginAsync<SyncRestRoutesOptions> = async (app, { store, devices }) => {
  app.get('/api/sync/preflight', async () => ({
    sync_allowed: true,
    // The Pi's own state: it is the one answering sync, and it is always awake (the NAS's sleep does not matter here).
    current_sleep_state: 'awake',
    sleep_schedule: null,
    next_sleep_at: null,
    next_wake_at: null,
    block_reason: null,
  }));

  app.post<{ Body: ChangesBody }>('/api/sync/changes', {
    bodyLimit: CHANGES_BODY_LIMIT,
    schema: {
      body: {
        type: 'object',
        required: ['device_id', 'file_list'],
        properties: {
          device_id: { type: 'string', minLength: 1, maxLength: 255 },
          change_token: { type: ['string', 'null'], maxLength: 255 },
          file_list: {
            type: 'array',
            items: {
              type: 'object',
              required: ['path', 'hash', 'size'],
              properties: {
                path: { type: 'string', minLength: 1, maxLength: 4096 },
                hash: { type: 'string', pattern: SHA256_OR_EMPTY },
                size: { type: 'integer', minimum: 0 },
                modified_at: { type: ['string', 'null'] },
              },
            },
          },
        },
      },
    },
  }, async (req) => {
    const user = req.user!;
    const { device_id, change_token, file_list } = req.body;
    // Every path is checked before anything is computed or stored: one bad path refuses the whole request.
    const client = file_list.map((f) => ({ path: resolvePath(user, f.path, 'read'), hash: f.hash, size: f.size }));
    const answer = await devices.update(user.id, device_id, async (device) => {
      const presented = change_token ? device.tokens.find((t) => t.token === change_token && t.indexId === store.indexId) : undefined;
      const seq = store.seq; // before the scan: a change committed during it is reported again next time, never lost
      const changes = await computeChanges(store, user, client, presented?.seq ?? null);
      const token = randomUUID();
      return {
        device: { ...device, lastSync: devices.now(), lastConflicts: changes.conflicts.length, tokens: [{ token, seq, indexId: store.indexId }, ...device.tokens] },
        result: { ...changes, change_token: token },
      };
    });
    if (!answer) throw notRegistered('sync_device_not_registered');
    return answer;
  });

  app.get('/api/sync/state', async (req) => ({ files: await syncState(store, req.user!) }));

  app.get<{ Params: { device_id: string } }>('/api/sync/status/:device_id', {
    schema: { params: { type: 'object', properties: { device_id: { type: 'string', minLength: 1 } } } },
  }, async (req) => {
    const user = req.user!;
    const device = await devices.get(user.id, req.params.device_id);
    if (!device) throw notRegistered('sync_device_not_found');
    const latest = device.tokens.find((t) => t.indexId === store.indexId);
    // Pending: what changed in the user's folders since the device's last /changes (everything, before its first).
    const pending = await pendingSince(store, user, latest?.seq ?? null);
    return {
      status: 'synced',
      device_id: device.deviceId,
      device_name: device.deviceName,
      last_sync: isoPlus00(device.lastSync),
      pending_changes: pending,
      conflicts: device.lastConflicts,
      change_token: device.tokens[0]?.token ?? null,
    };
  });

  app.post<{ Body: ReportBody }>('/api/sync/report-folders', {
    schema: {
      body: {
        type: 'object',
        required: ['device_id', 'device_name', 'platform', 'folders'],
        properties: {
          device_id: { type: 'string', minLength: 1, maxLength: 255 },
          device_name: { type: 'string', maxLength: 255 },
          platform: { type: 'string', enum: ['windows', 'mac', 'linux'] },
          folders: {
            type: 'array',
            maxItems: 1000,
            items: {
              type: 'object',
              required: ['remote_path', 'sync_direction'],
              properties: {
                remote_path: { type: 'string', minLength: 1, maxLength: 4096 },
                sync_direction: { type: 'string', enum: ['bidirectional', 'push', 'pull'] },
              },
            },
          },
        },
      },
    },
  }, async (req) => {
    const user = req.user!;
    const b = req.body;
    const folders = b.folders.map((f) => ({ remotePath: resolvePath(user, f.remote_path, 'read'), syncDirection: f.sync_direction }));
    return devices.reportFolders(user.id, user.username, b.device_id, b.device_name, b.platform, folders);
  });

  app.get<{ Querystring: { active_only: boolean } }>('/api/sync/synced-folders', {
    schema: { querystring: { type: 'object', properties: { active_only: { type: 'boolean', default: true } } } },
  }, async (req) => {
    const user = req.user!;
    const admin = user.role === 'admin';
    const folders = await devices.folders({ ...(admin ? {} : { userId: user.id }), activeOnly: req.query.active_only });
    return {
      folders: folders.map((f) => ({
        remote_path: f.remotePath,
        device_id: f.deviceId,
        device_name: f.deviceName,
        platform: f.platform,
        sync_direction: f.syncDirection,
        is_active: f.isActive,
        last_reported_at: isoPlus00(f.lastReportedAt),
        username: admin ? f.username : null,
      })),
    };
  });
};
