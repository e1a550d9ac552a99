// /api/activity/*: BaluHost's activity feed (../shared/reference/baluhost-api.md §3.9), answered from the Pi's own log.
// BaluApp reports its file actions and reads "recent files" for its dashboard; an empty or failing answer makes it
// fall back to listing the root, so these routes never fail for a well-formed request.
import type { FastifyPluginAsync } from 'fastify';
import type { User } from '../auth/tokens.ts';
import { ACTION_TYPES, type Activity, type ActivityLog, type NewActivity } from '../activity/activity-log.ts';
import { authorize, normalizePath } from '../files/paths.ts';

export interface ActivityRoutesOptions {
  activity: ActivityLog;
}

interface ReportedActivity {
  action_type: string;
  file_path: string;
  file_name: string;
  is_directory: boolean;
  file_size?: number | null;
  mime_type?: string | null;
  device_id?: string | null;
  occurred_at?: string | null;
}

const reportSchema = {
  body: {
    type: 'object',
    required: ['activities'],
    properties: {
      activities: {
        type: 'array',
        minItems: 1,
        maxItems: 100,
        items: {
          type: 'object',
          required: ['action_type', 'file_path', 'file_name', 'is_directory'],
          properties: {
            action_type: { type: 'string', maxLength: 64 },
            file_path: { type: 'string', maxLength: 4096 },
            file_name: { type: 'string', maxLength: 1024 },
            is_directory: { type: 'boolean' },
            file_size: { type: ['integer', 'null'], minimum: 0 },
            mime_type: { type: ['string', 'null'], maxLength: 255 },
            device_id: { type: ['string', 'null'], maxLength: 255 },
            occurred_at: { type: ['string', 'null'], maxLength: 64 },
          },
        },
      },
    },
  },
};

const zIso = (ms: number) => new Date(ms).toISOString();

/** Entries a user may see: their own reports, and changes to paths they may read (admins: everything with scope=all). */
function visibleTo(user: User, all: boolean): (a: Activity) => boolean {
  return (a) => {
    if (all && user.role === 'admin') return true;
    if (a.source === 'client') return a.user_id === user.id;
    try {
      authorize(user, a.file_path, 'read');
      return true;
    } catch {
      return false;
    }
  };
}

export const activityRoutes: FastifyPluginAsync<ActivityRoutesOptions> = async (app, { activity }) => {
  app.post<{ Body: { activities: ReportedActivity[] } }>('/api/activity/report', { schema: reportSchema }, async (req) => {
    const user = req.user!;
    const now = Date.now();
    const valid: NewActivity[] = [];
    let rejected = 0;
    for (const a of req.body.activities) {
      const at = a.occurred_at ? Date.parse(a.occurred_at) : now;
      let path: string;
      try {
        path = normalizePath(a.file_path);
        authorize(user, path, 'read');
      } catch {
        rejected += 1;
        continue;
      }
      // Unknown actions and unreadable times are refused one by one, as BaluHost does, not the whole batch.
      if (!(ACTION_TYPES as readonly string[]).includes(a.action_type) || Number.isNaN(at) || path === '') {
        rejected += 1;
        continue;
      }
      valid.push({
        action_type: a.action_type as NewActivity['action_type'],
        file_path: path,
        file_name: a.file_name,
        is_directory: a.is_directory,
        file_size: a.file_size ?? null,
        mime_type: a.mime_type ?? null,
        source: 'client',
        device_id: a.device_id ?? (req.headers['x-device-id'] as string | undefined) ?? null,
        user_id: user.id,
        username: user.username,
        at,
      });
    }
    const { accepted, deduplicated } = await activity.report(valid);
    return { accepted, deduplicated, rejected };
  });

  app.get<{ Querystring: { limit: number; actions?: string } }>('/api/activity/recent-files', {
    schema: {
      querystring: {
        type: 'object',
        properties: { limit: { type: 'integer', minimum: 1, maximum: 100, default: 10 }, actions: { type: 'string', maxLength: 1024 } },
      },
    },
  }, async (req) => {
    const actions = req.query.actions ? new Set(req.query.actions.split(',').map((s) => s.trim()).filter(Boolean)) : null;
    const visible = visibleTo(req.user!, false);
    const files = await activity.recentFiles({ limit: req.query.limit, keep: (a) => visible(a) && (!actions || actions.has(a.action_type)) });
    return { files: files.map((f) => ({ ...f, last_action_at: zIso(f.last_action_at) })) };
  });

  app.get<{ Querystring: { limit: number; offset: number; action_types?: string; file_type?: string; since?: string; path_prefix?: string; scope: 'mine' | 'all' } }>(
    '/api/activity/recent',
    {
      schema: {
        querystring: {
          type: 'object',
          properties: {
            limit: { type: 'integer', minimum: 1, maximum: 100, default: 20 },
            offset: { type: 'integer', minimum: 0, default: 0 },
            action_types: { type: 'string', maxLength: 1024 },
            file_type: { type: 'string', enum: ['', 'file', 'directory'] },
            since: { type: 'string', maxLength: 64 },
            path_prefix: { type: 'string', maxLength: 4096 },
            scope: { type: 'string', enum: ['mine', 'all'], default: 'mine' },
          },
        },
      },
    },
    async (req) => {
      const q = req.query;
      const types = q.action_types ? new Set(q.action_types.split(',').map((s) => s.trim()).filter(Boolean)) : null;
      const since = q.since ? Date.parse(q.since) : NaN;
      const prefix = q.path_prefix ? normalizePath(q.path_prefix) : '';
      const visible = visibleTo(req.user!, q.scope === 'all');
      const keep = (a: Activity) =>
        visible(a) &&
        (!types || types.has(a.action_type)) &&
        (Number.isNaN(since) || a.at >= since) &&
        (prefix === '' || a.file_path === prefix || a.file_path.startsWith(prefix + '/')) &&
        (!q.file_type || (q.file_type === 'directory') === a.is_directory);
      const { items, total } = await activity.recent({ limit: q.limit, offset: q.offset, keep });
      return {
        activities: items.map((a) => ({
          id: a.id,
          user_id: a.user_id,
          username: a.username,
          action_type: a.action_type,
          file_path: a.file_path,
          file_name: a.file_name,
          is_directory: a.is_directory,
          file_size: a.file_size,
          mime_type: a.mime_type,
          source: a.source,
          device_id: a.device_id,
          metadata: null,
          created_at: zIso(a.at),
        })),
        total,
        has_more: q.offset + items.length < total,
      };
    },
  );
};
