// GET /api/files/thumbnail/{path}?size=256 and GET /api/files/thumbnail?path=…&size=256: an image's thumbnail,
// WebP when the client's Accept lists image/webp, JPEG otherwise. Not a BaluHost route (BaluHost has no thumbnails);
// the path rules and error bodies are BaluHost's all the same.
import { createReadStream } from 'node:fs';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { resolvePath } from '../files/paths.ts';
import { CONTENT_TYPE, DEFAULT_SIZE, SIZES, formatFor, sizeBucket } from '../thumbnails/formats.ts';
import type { ThumbnailService } from '../thumbnails/service.ts';

export interface ThumbnailRoutesOptions {
  thumbnails: ThumbnailService;
}

/**
 * Browsers and image loaders may keep a thumbnail for a minute without asking; after that they revalidate with the
 * ETag (a 304 costs one stat). A path can be overwritten, so a long max-age would show the old picture.
 */
const CACHE_CONTROL = 'private, max-age=60';

const sizeProperty = { type: 'integer', minimum: 1, maximum: 100_000, default: DEFAULT_SIZE } as const;

export const thumbnailRoutes: FastifyPluginAsync<ThumbnailRoutesOptions> = async (app, { thumbnails }) => {
  const serve = async (req: FastifyRequest, reply: FastifyReply, raw: string, requested: number) => {
    const path = resolvePath(req.user!, raw, 'read');
    const size = sizeBucket(Math.max(SIZES[0], requested));
    const thumb = await thumbnails.get(path, size, formatFor(req.headers.accept));
    const etag = `"${thumb.hash}-${thumb.size}-${thumb.format}"`;
    reply.header('etag', etag).header('cache-control', CACHE_CONTROL).header('vary', 'Accept');
    const match = req.headers['if-none-match'];
    if (match && match.split(',').some((t) => t.trim().replace(/^W\//, '') === etag)) return reply.code(304).send();
    return reply.type(CONTENT_TYPE[thumb.format]).header('content-length', thumb.bytes).send(createReadStream(thumb.file));
  };

  app.get<{ Params: { '*': string }; Querystring: { size: number } }>('/api/files/thumbnail/*', {
    schema: {
      params: { type: 'object', properties: { '*': { type: 'string' } } },
      querystring: { type: 'object', properties: { size: sizeProperty } },
    },
  }, async (req, reply) => serve(req, reply, req.params['*'], req.query.size));

  app.get<{ Querystring: { path: string; size: number } }>('/api/files/thumbnail', {
    schema: {
      querystring: { type: 'object', required: ['path'], properties: { path: { type: 'string' }, size: sizeProperty } },
    },
  }, async (req, reply) => serve(req, reply, req.query.path, req.query.size));
};
