// BaluHost's file routes that change the tree without uploading: delete (by raw path, ?path=, JSON body or file_id;
// idempotent), folder / mkdir (mkdir -p), rename (by old_path or file_id) and move (target_path, destination_path or
// new_path; "into it" when the target is an existing folder). Answers are BaluHost's `{"message": ...}`.

import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { User } from '../auth/tokens.ts';
import type { FileServices } from '../files/services.ts';
import type { FileTree } from '../files/file-tree.ts';
import { fileNotFound } from '../files/errors.ts';
import { PathError, authorize, baseName, joinPath, normalizePath, parentOf, resolvePath } from '../files/paths.ts';
import { rawPathAfter, rawQueryParam } from '../http/raw-url.ts';

export interface FilesWriteRoutesOptions {
  files: FileServices;
}

const DELETED = { message: 'Deleted' };

function decodeRaw(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new PathError('invalid_path', 'Invalid path');
  }
}

/** The store path a delete names: a raw path (%2F allowed), or a bare number that is a file id (BaluDesk). */
async function deleteTarget(tree: FileTree, user: User, raw: string): Promise<string | undefined> {
  if (/^\d+$/.test(raw) && !(user.role === 'admin' && (await tree.node(raw)))) {
    const path = await tree.ids.pathOf(Number(raw));
    if (path !== undefined) authorize(user, path, 'write');
    return path;
  }
  return resolvePath(user, /%2f/i.test(raw) ? decodeRaw(raw.replace(/\+/g, ' ')) : decodeRaw(raw), 'write');
}

/** A path given by path or by file_id in a JSON body. */
async function sourceOf(tree: FileTree, user: User, path: string | undefined, fileId: number | undefined): Promise<string> {
  if (path !== undefined) return resolvePath(user, path, 'write');
  if (fileId === undefined) throw new PathError('invalid_path', 'Invalid path');
  const p = await tree.ids.pathOf(fileId);
  if (p === undefined) throw fileNotFound();
  authorize(user, p, 'write');
  return p;
}

const pathBody = (required: string[], properties: Record<string, unknown>) => ({ body: { type: 'object', required, properties } });

export const filesWriteRoutes: FastifyPluginAsync<FilesWriteRoutesOptions> = async (app, { files }) => {
  const { tree } = files;

  const remove = async (req: FastifyRequest, path: string | undefined) => {
    if (path !== undefined) await tree.remove(path);
    return DELETED;
  };
  // BaluDesk's sync: DELETE /api/files?path=<escaped> (no trailing slash).
  app.delete('/api/files', (req) => remove(req, resolvePath(req.user!, decodeRaw((rawQueryParam(req.raw.url!, 'path') ?? '').replace(/\+/g, ' ')), 'write')));
  // BaluApp (raw path), BaluDesk's explorer (file id); /raw/ is BaluHost's compatibility route.
  app.delete('/api/files/*', async (req) => remove(req, await deleteTarget(tree, req.user!, rawPathAfter(req.raw.url!, '/api/files/'))));
  app.delete('/api/files/raw/*', async (req) => remove(req, resolvePath(req.user!, decodeRaw(rawPathAfter(req.raw.url!, '/api/files/raw/')), 'write')));
  const deleteBody = { schema: pathBody(['path'], { path: { type: 'string' } }) };
  app.delete<{ Body: { path: string } }>('/api/files/delete', deleteBody, (req) => remove(req, resolvePath(req.user!, req.body.path, 'write')));
  app.post<{ Body: { path: string } }>('/api/files/delete', deleteBody, (req) => remove(req, resolvePath(req.user!, req.body.path, 'write')));

  app.post<{ Body: { path?: string; name: string; mount_id?: string | number | null } }>('/api/files/folder', {
    schema: pathBody(['name'], { path: { type: 'string' }, name: { type: 'string' }, mount_id: { anyOf: [{ type: 'string' }, { type: 'integer' }, { type: 'null' }] } }),
  }, async (req, reply) => {
    if (req.body.name.trim() === '') return reply.code(400).send({ detail: 'Folder name required' });
    if (/[/\\]/.test(req.body.name)) throw new PathError('invalid_path', 'Invalid path');
    await tree.mkdir(resolvePath(req.user!, joinPath(normalizePath(req.body.path ?? ''), req.body.name), 'write'));
    return { message: 'Folder created' };
  });

  app.post<{ Body: { path: string } }>('/api/files/mkdir', { schema: pathBody(['path'], { path: { type: 'string' } }) }, async (req) => {
    const path = resolvePath(req.user!, req.body.path, 'write');
    if (path === '') throw new PathError('invalid_path', 'Invalid path');
    await tree.mkdir(path);
    return { message: 'Folder created' };
  });

  app.put<{ Body: { old_path?: string; path?: string; file_id?: number; new_name: string } }>('/api/files/rename', {
    schema: pathBody(['new_name'], { old_path: { type: 'string' }, path: { type: 'string' }, file_id: { type: 'integer' }, new_name: { type: 'string', minLength: 1 } }),
  }, async (req) => {
    const from = await sourceOf(tree, req.user!, req.body.old_path ?? req.body.path, req.body.file_id);
    const name = req.body.new_name;
    if (/[/\\]/.test(name) || name === '.' || name === '..') throw new PathError('invalid_path', 'Invalid path');
    const to = resolvePath(req.user!, joinPath(parentOf(from), name), 'write');
    await tree.move(from, to);
    return { message: 'Renamed' };
  });

  app.put<{ Body: { source_path?: string; file_id?: number; target_path?: string; destination_path?: string; new_path?: string } }>('/api/files/move', {
    schema: pathBody([], {
      source_path: { type: 'string' }, file_id: { type: 'integer' }, target_path: { type: 'string' }, destination_path: { type: 'string' }, new_path: { type: 'string' },
    }),
  }, async (req) => {
    const b = req.body;
    const from = await sourceOf(tree, req.user!, b.source_path, b.file_id);
    const rawTarget = b.target_path ?? b.destination_path ?? b.new_path;
    if (rawTarget === undefined) throw new PathError('invalid_path', 'Invalid path');
    const target = normalizePath(rawTarget);
    const into = target === '' || (await tree.node(target))?.type === 'dir';
    const to = resolvePath(req.user!, into ? joinPath(target, baseName(from)) : target, 'write');
    await tree.move(from, to);
    return { message: 'Moved' };
  });
};
