// Downloads as BaluHost's clients request them, in every URL style they use (../shared/reference/clients.md §0.5):
//   /api/files/download/<raw path>              Android sync, BaluDesk (a path that starts with `/` gives `//`)
//   /api/files/download?path=<p>                 Android Files "download" (no such route on BaluHost)
//   /api/files/download/<URLEncoder(path)>       Android media viewer: `/` as %2F, space as `+`
//   /api/files/download/<file_id>                BaluDesk's downloadFile(int)
// answered like Starlette's FileResponse: Content-Disposition, a type from the name, ETag (the content hash),
// Last-Modified, Accept-Ranges, Range -> 206 / 416. The bytes are streamed: from the store on a hit, from the hub
// through the store on a miss (cache-miss.ts).

import type { Readable } from 'node:stream';
import type { User } from '../auth/tokens.ts';
import type { FileRecord } from '../../store/index.ts';
import { isStoreError } from '../../store/index.ts';
import type { FileTree } from './file-tree.ts';
import type { CacheMiss } from './cache-miss.ts';
import type { CacheStats } from './cache-stats.ts';
import { contentTypeFor } from './content-type.ts';
import { FilesError, fileNotFound } from './errors.ts';
import { PathError, authorize, baseName, normalizePath } from './paths.ts';

/** How the client named the file: the raw URL text after /download/, or the raw value of ?path=. */
export type DownloadTarget = { kind: 'segment'; raw: string } | { kind: 'query'; raw: string };

function decode(raw: string, plusIsSpace: boolean): string {
  try {
    return decodeURIComponent(plusIsSpace ? raw.replace(/\+/g, ' ') : raw);
  } catch {
    throw new PathError('invalid_path', 'Invalid path');
  }
}

/**
 * The readings of a raw path, most likely first. A path with %2F was URL-encoded as one piece (Java's URLEncoder:
 * `+` is a space, a real `+` is %2B): exact. Otherwise `+` is usually literal (raw paths), but query strings and a
 * few encoders use it for a space: that reading is tried second.
 */
function readings(t: DownloadTarget): string[] {
  if (t.kind === 'segment' && /%2f/i.test(t.raw)) return [decode(t.raw, true)];
  const literal = decode(t.raw, false);
  if (!t.raw.includes('+')) return [literal];
  const spaced = decode(t.raw, true);
  return t.kind === 'query' ? [spaced, literal] : [literal, spaced];
}

/** The store name of the file the client asked for (403 outside the jail, 404 if there is no such file). */
export async function resolveDownload(tree: FileTree, user: User, t: DownloadTarget): Promise<string> {
  if (t.kind === 'segment' && /^\d+$/.test(t.raw)) {
    // A bare number is a file id (BaluDesk), unless an admin has a top-level file of that name.
    if (user.role === 'admin' && (await tree.node(t.raw))?.type === 'file') return t.raw;
    const path = await tree.ids.pathOf(Number(t.raw));
    if (path === undefined) throw fileNotFound();
    authorize(user, path, 'read');
    if ((await tree.node(path))?.type !== 'file') throw fileNotFound();
    return path;
  }
  for (const reading of readings(t)) {
    const path = normalizePath(reading);
    authorize(user, path, 'read');
    if (path !== '' && (await tree.node(path))?.type === 'file') return path;
  }
  throw fileNotFound();
}

/** A single `bytes=` range; null means "serve the whole file" (absent, malformed or several ranges, as Starlette). */
export function parseRange(header: string | undefined, size: number): { offset: number; length: number } | 'unsatisfiable' | null {
  if (!header) return null;
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  if (!m || (m[1] === '' && m[2] === '')) return null;
  if (m[1] === '') {
    const n = Number(m[2]);
    if (n === 0) return 'unsatisfiable';
    const offset = Math.max(0, size - n);
    return size === 0 ? 'unsatisfiable' : { offset, length: size - offset };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (start >= size || end < start) return 'unsatisfiable';
  return { offset: start, length: end - start + 1 };
}

/** Python's urllib.parse.quote(name): everything but letters, digits and `_.-~/` percent-encoded as UTF-8. */
function pythonQuote(s: string): string {
  return encodeURIComponent(s)
    .replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase())
    .replace(/%2F/g, '/');
}

/** Starlette's FileResponse header: a plain quoted name when quoting changes nothing, else RFC 5987 form. */
export function contentDisposition(name: string): string {
  const quoted = pythonQuote(name);
  return quoted === name ? `attachment; filename="${name}"` : `attachment; filename*=utf-8''${quoted}`;
}

export interface Download {
  status: 200 | 206 | 304;
  headers: Record<string, string>;
  stream: Readable | null;
}

export interface DownloadDeps {
  tree: FileTree;
  miss: CacheMiss;
  stats: CacheStats;
}

/** Opens the file at `path` for the response: headers and a stream of the (ranged) bytes. */
export async function openDownload(deps: DownloadDeps, path: string, req: { range?: string; ifRange?: string; ifNoneMatch?: string }, signal: AbortSignal): Promise<Download> {
  let rec: FileRecord;
  try {
    rec = await deps.tree.store.stat(path);
  } catch (err) {
    if (isStoreError(err, 'not_found')) throw fileNotFound();
    throw err;
  }
  const etag = `"${rec.hash}"`;
  const headers: Record<string, string> = {
    'content-type': contentTypeFor(baseName(path)),
    'content-disposition': contentDisposition(baseName(path)),
    'accept-ranges': 'bytes',
    etag,
    'last-modified': new Date(rec.mtimeMs).toUTCString(),
  };
  if (req.ifNoneMatch !== undefined && req.ifNoneMatch.split(',').some((t) => t.trim() === etag || t.trim() === '*')) {
    return { status: 304, headers, stream: null };
  }
  const rangeApplies = req.ifRange === undefined || req.ifRange.trim() === etag;
  const range = rangeApplies ? parseRange(req.range, rec.size) : null;
  if (range === 'unsatisfiable') {
    throw new FilesError('range_not_satisfiable', 'Requested range not satisfiable', { 'content-range': `bytes */${rec.size}` });
  }
  const r = range ?? { offset: 0, length: rec.size };
  headers['content-length'] = String(r.length);
  if (range) headers['content-range'] = `bytes ${r.offset}-${r.offset + r.length - 1}/${rec.size}`;
  const status = range ? 206 : 200;
  if (rec.state === 'local' || (await deps.tree.store.missingChunks(path)).length === 0) {
    try {
      // Fastify pipes the stream into the response: chunks are read into reused buffers (see store/reader.ts).
      const opened = await deps.tree.store.openRead(path, r, { reuseBuffers: true });
      deps.stats.hit(r.length);
      return { status, headers, stream: opened.stream };
    } catch (err) {
      // Evicted between the check and the open: fall through to the hub.
      if (!isStoreError(err, 'not_local')) throw err;
    }
  }
  const stream = await deps.miss.open(rec, r, signal);
  deps.stats.miss(r.length);
  return { status, headers, stream };
}
