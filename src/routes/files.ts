// BaluHost's file routes that read: listing, downloads (every URL style the clients use), mountpoints, available
// storage and the duplicate check. The work is in src/files/; errors travel as coded errors to the one handler.

import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { FileServices } from '../files/services.ts';
import { listFolder, MOUNT_ID } from '../files/listing.ts';
import { openDownload, resolveDownload, type DownloadTarget } from '../files/downloads.ts';
import { cleanFilename } from '../files/uploads.ts';
import { joinPath, resolvePath } from '../files/paths.ts';
import { requestSignal, rawQueryParam, rawPathAfter } from '../http/raw-url.ts';

export interface FilesRoutesOptions {
  files: FileServices;
}

const nullable = (type: string) => ({ type: [type, 'null'] }) as const;

/** The shape of one FileItem (documentation of what listing.ts builds; see the list route for why it is not used to serialize). */
export const fileItemSchema = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    path: { type: 'string' },
    size: { type: 'integer' },
    type: { type: 'string' },
    modified_at: { type: 'string' },
    owner_id: nullable('string'),
    owner_name: nullable('string'),
    mime_type: nullable('string'),
    file_id: { type: 'integer' },
    checksum: nullable('string'),
    sync_info: { type: 'null' },
    can_read: { type: 'null' },
    can_write: { type: 'null' },
    can_delete: { type: 'null' },
    owner: { type: 'string' },
    created_at: { type: 'string' },
    updated_at: { type: 'string' },
    mount_id: { type: 'integer' },
  },
} as const;

/** +00:00 form, as BaluHost's hand-built isoformat() strings (check-exists). */
const pyIso = (ms: number) => new Date(ms).toISOString().replace('Z', '+00:00');

export const filesRoutes: FastifyPluginAsync<FilesRoutesOptions> = async (app, { files }) => {
  const { tree } = files;

  // No response schema on purpose: fast-json-stringify took 89 us for a 100-entry listing where JSON.stringify takes
  // 45 us (string escaping checks on every field). listing.ts builds every key of fileItemSchema itself.
  app.get<{ Querystring: { path?: string; mount?: string } }>('/api/files/list', {
    schema: { querystring: { type: 'object', properties: { path: { type: 'string' }, mount: { type: 'string' } } } },
  }, async (req) => ({ files: await listFolder(tree, req.user!, req.query.path ?? '') }));

  const download = async (req: FastifyRequest, target: DownloadTarget, reply: FastifyReply) => {
    const path = await resolveDownload(tree, req.user!, target);
    const h = req.headers;
    const d = await openDownload(files, path, {
      ...(typeof h.range === 'string' ? { range: h.range } : {}),
      ...(typeof h['if-range'] === 'string' ? { ifRange: h['if-range'] } : {}),
      ...(typeof h['if-none-match'] === 'string' ? { ifNoneMatch: h['if-none-match'] } : {}),
    }, requestSignal(reply));
    reply.code(d.status).headers(d.headers);
    return d.stream ? reply.send(d.stream) : reply.send();
  };
  // HEAD would open the stream and drop it; BaluHost (FastAPI) answers HEAD on these routes with 405 too.
  app.get('/api/files/download', { exposeHeadRoute: false }, (req, reply) => {
    const raw = rawQueryParam(req.raw.url!, 'path');
    return download(req, { kind: 'query', raw: raw ?? '' }, reply);
  });
  app.get('/api/files/download/*', { exposeHeadRoute: false }, (req, reply) =>
    download(req, { kind: 'segment', raw: rawPathAfter(req.raw.url!, '/api/files/download/') }, reply));

  app.get('/api/files/mountpoints', async () => {
    const disk = await files.disk();
    const s = tree.store.stats();
    const size = Math.min(s.budgetBytes, disk.total);
    return {
      mountpoints: [{
        id: MOUNT_ID,
        name: 'BaluPi',
        type: 'cache',
        path: '/',
        size_bytes: size,
        used_bytes: s.storedBytes,
        available_bytes: Math.max(0, Math.min(size - s.storedBytes, disk.free)),
        raid_level: null,
        status: 'online',
        is_default: true,
      }],
      default_mountpoint: MOUNT_ID,
    };
  });

  // What can still be uploaded: the budget minus what must stay (not yet on the NAS), within the disk's free space.
  app.get('/api/files/storage/available', async () => {
    const disk = await files.disk();
    const s = tree.store.stats();
    return { available_bytes: Math.max(0, Math.min(s.budgetBytes - s.dirtyBytes, disk.free)), used_bytes: s.logicalBytes, quota_bytes: null };
  });

  app.post<{ Body: { filenames: string[]; target_path?: string } }>('/api/files/check-exists', {
    schema: {
      body: {
        type: 'object',
        required: ['filenames'],
        properties: { filenames: { type: 'array', items: { type: 'string' }, maxItems: 10_000 }, target_path: { type: 'string' } },
      },
    },
  }, async (req) => {
    const dir = resolvePath(req.user!, req.body.target_path ?? '', 'read');
    const duplicates = [];
    for (const filename of req.body.filenames) {
      const node = await tree.node(joinPath(dir, cleanFilename(filename)));
      if (node?.type !== 'file') continue;
      const r = node.record;
      duplicates.push({ filename, size_bytes: r.size, modified_at: pyIso(r.mtimeMs), checksum: r.sha256 });
    }
    return { duplicates };
  });
};
