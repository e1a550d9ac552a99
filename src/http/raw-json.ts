// JSON bodies parsed the way FastAPI parses them, keeping the bytes: routes that forward to BaluHost send the
// client's exact bytes on (request.rawBody), while their JSON schemas still check what the Pi itself reads.
// FastAPI reads a body as JSON when Content-Type is application/json, application/*+json, or missing; any other
// type (a form, say) reaches the model as bytes and fails with 422 model_attributes_type. Bodies above `bodyLimit`
// are refused with 413 before they are read to the end.
import type { FastifyInstance } from 'fastify';
import { ApiError } from './errors.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** The body exactly as received (routes of plugins that call keepRawJsonBodies). */
    rawBody: Buffer | null;
  }
}

/** Python's repr() of a bytes value, as FastAPI puts it in `input`. */
export function pythonBytesRepr(b: Buffer): string {
  let out = '';
  for (const c of b) {
    if (c === 0x5c) out += '\\\\';
    else if (c === 0x27) out += "\\'";
    else if (c === 0x0a) out += '\\n';
    else if (c === 0x0d) out += '\\r';
    else if (c === 0x09) out += '\\t';
    else if (c >= 0x20 && c < 0x7f) out += String.fromCharCode(c);
    else out += `\\x${c.toString(16).padStart(2, '0')}`;
  }
  return `b'${out}'`;
}

function isJsonType(contentType: string | undefined): boolean {
  if (!contentType) return true;
  const mime = contentType.split(';')[0]!.trim().toLowerCase();
  return mime === 'application/json' || (mime.startsWith('application/') && mime.endsWith('+json'));
}

export function keepRawJsonBodies(app: FastifyInstance, opts: { bodyLimit: number }): void {
  app.decorateRequest('rawBody', null);
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: opts.bodyLimit }, (req, body, done) => {
    const buf = body as Buffer;
    req.rawBody = buf;
    if (buf.length === 0) return done(null, undefined);
    if (!isJsonType(req.headers['content-type'])) {
      return done(new ApiError(422, [{
        type: 'model_attributes_type', loc: ['body'], msg: 'Input should be a valid dictionary or object to extract fields from', input: pythonBytesRepr(buf),
      }]), undefined);
    }
    try {
      done(null, JSON.parse(buf.toString('utf8')));
    } catch (err) {
      done(new ApiError(422, [{ type: 'json_invalid', loc: ['body', 0], msg: 'JSON decode error', input: {}, ctx: { error: (err as Error).message } }]), undefined);
    }
  });
}
