// POST /api/files/upload (multipart, every variant the clients send: src/files/uploads.ts) and BaluHost's chunked
// upload (src/files/chunked-uploads.ts). Bodies are streamed into the store, never buffered; BaluHost's limit of
// 10 GiB per file applies.

import type { FastifyPluginAsync } from 'fastify';
import multipart from '@fastify/multipart';
import type { Readable } from 'node:stream';
import type { FileServices } from '../files/services.ts';
import { MultipartUpload } from '../files/uploads.ts';
import { MAX_UPLOAD_BYTES } from '../files/chunked-uploads.ts';
import { FilesError } from '../files/errors.ts';
import { requestSignal } from '../http/raw-url.ts';

export interface FilesUploadRoutesOptions {
  files: FileServices;
}

const idParams = { type: 'object', required: ['id'], properties: { id: { type: 'string' } } } as const;

export const filesUploadRoutes: FastifyPluginAsync<FilesUploadRoutesOptions> = async (app, { files }) => {
  await app.register(multipart, {
    limits: { fileSize: MAX_UPLOAD_BYTES, fieldSize: 64 * 1024, fields: 1000, files: 10_000, parts: 20_000, headerPairs: 200 },
  });

  app.post<{ Querystring: { path?: string; mount?: string } }>('/api/files/upload', {
    schema: { querystring: { type: 'object', properties: { path: { type: 'string' }, mount: { type: 'string' } } } },
  }, async (req, reply) => {
    if (!req.isMultipart()) throw new FilesError('no_file', 'No file provided (expected multipart/form-data)');
    const signal = requestSignal(reply);
    const upload = new MultipartUpload({ tree: files.tree, user: req.user!, queryPath: req.query.path, signal });
    try {
      for await (const part of req.parts()) {
        if (part.type === 'field') {
          if (typeof part.value === 'string') upload.field(part.fieldname, part.value);
        } else if (part.fieldname === 'file' || part.fieldname === 'files') {
          await upload.file(part.filename, part.file);
        } else {
          part.file.resume(); // a file under another name: read past it, store nothing
        }
      }
    } catch (err) {
      await upload.abort(err);
      if (!signal.aborted) throw err;
      // Nobody is left to answer; not a server error either.
      req.log.info({ url: req.url, user: req.user?.username }, 'upload abandoned by the client; nothing stored');
      return reply.code(400).send({ detail: 'Upload interrupted' });
    }
    return upload.finish();
  });

  await app.register(async (raw) => {
    // Chunk bodies are raw bytes of any declared type: handed over as the request stream, never parsed or buffered.
    raw.removeAllContentTypeParsers();
    raw.addContentTypeParser('*', (_req, payload, done) => done(null, payload));
    raw.post<{ Params: { id: string }; Querystring: { chunk_index: number } }>('/api/files/upload/chunked/:id/chunk', {
      schema: { params: idParams, querystring: { type: 'object', required: ['chunk_index'], properties: { chunk_index: { type: 'integer', minimum: 0 } } } },
    }, async (req) => {
      const body: AsyncIterable<Uint8Array> = (req.body as Readable | undefined) ?? (async function* () {})();
      return files.chunked.chunk(req.user!, req.params.id, req.query.chunk_index, body);
    });
  });

  app.post<{ Body: { filename: string; total_size: number; target_path?: string } }>('/api/files/upload/chunked/init', {
    schema: {
      body: {
        type: 'object',
        required: ['filename', 'total_size'],
        properties: { filename: { type: 'string' }, total_size: { type: 'integer', minimum: 0 }, target_path: { type: 'string' } },
      },
    },
  }, (req) => files.chunked.init(req.user!, req.body));
  app.post<{ Params: { id: string } }>('/api/files/upload/chunked/:id/complete', { schema: { params: idParams } }, (req) => files.chunked.complete(req.user!, req.params.id));
  app.delete<{ Params: { id: string } }>('/api/files/upload/chunked/:id', { schema: { params: idParams } }, (req) => files.chunked.abort(req.user!, req.params.id));
};
