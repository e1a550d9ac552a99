// The one place where errors become HTTP responses, in BaluHost's envelope: {"detail": ...}; validation failures are
// 422 with FastAPI's list of {type, loc, msg, input} so that clients written against BaluHost parse them.
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { TokenError } from '../auth/tokens.ts';

/** An error that already knows its HTTP status and the detail the client should see. */
export class ApiError extends Error {
  override name = 'ApiError';
  readonly status: number;
  readonly detail: unknown;
  readonly headers: Record<string, string>;
  constructor(status: number, detail: unknown, headers: Record<string, string> = {}) {
    super(typeof detail === 'string' ? detail : JSON.stringify(detail));
    this.status = status;
    this.detail = detail;
    this.headers = headers;
  }
}

/**
 * Domain errors carry a stable `code`; this table is the whole mapping from codes to HTTP statuses. Codes not listed
 * are internal errors.
 */
const STATUS_BY_CODE: Record<string, number> = {
  invalid_name: 400,
  invalid_argument: 422,
  not_found: 404,
  conflict: 409,
  hash_mismatch: 422,
  not_local: 409,
  missing_chunks: 409,
  path_conflict: 409,
  locked: 503,
  closed: 503,
  cache_full: 507,
  no_space: 507,
  corrupt_chunk: 500,
  unavailable: 503,
  too_large: 413,
  // BaluHost's path model (src/files/paths.ts)
  invalid_path: 400,
  access_denied: 403,
  // thumbnails (src/thumbnails/service.ts)
  thumbnail_unsupported: 415,
  thumbnail_not_local: 404,
  thumbnail_busy: 503,
  // BaluHost's sync endpoints (src/sync-api/): /changes answers 400 for an unknown device, /status 404
  sync_device_not_registered: 400,
  sync_device_not_found: 404,
  sync_folder_not_found: 404,
  // the file facade (src/files/errors.ts)
  file_not_found: 404,
  invalid_filename: 400,
  no_file: 400,
  upload_session_not_found: 404,
  upload_session_forbidden: 403,
  chunk_rejected: 400,
  upload_too_large: 413,
  range_not_satisfiable: 416,
  hub_unavailable: 503,
  // energy and plugs
  DEVICE_NOT_FOUND: 404,
  ALERT_NOT_FOUND: 404,
  DEVICE_EXISTS: 409,
  NAS_ROLE_TAKEN: 409,
  ENERGY_CONFIRM_REQUIRED: 409,
  DEVICE_INVALID: 422,
  DEVICE_LIST_INVALID: 422,
  ENERGY_TARIFF_INVALID: 422,
  ENERGY_BAD_QUERY: 422,
  PLUG_AUTH: 502,
  PLUG_UNREACHABLE: 502,
  PLUG_PROTOCOL: 502,
  PLUG_DEVICE: 502,
  PLUG_TIMEOUT: 504,
  PLUG_CLOSED: 503,
  ENERGY_POLLING_DISABLED: 503,
  handshake_unauthorized: 401,
  handshake_not_configured: 503,
  wake_refused: 400,
  wol_send_failed: 500,
  nas_unavailable: 503,
  // sign-in, tokens and pairing (src/auth/sign-in.ts): the 401 details are BaluHost's own strings
  invalid_credentials: 401,
  refresh_invalid: 401,
  refresh_revoked: 401,
  user_inactive: 401,
  two_factor_needs_nas: 503,
  nas_unreachable: 503,
  user_exists: 409,
};

interface FastApiValidationItem {
  type: string;
  loc: (string | number)[];
  msg: string;
  input: unknown;
}

const LOCATION: Record<string, string> = { body: 'body', querystring: 'query', params: 'path', headers: 'header' };

function validationItems(err: FastifyError): FastApiValidationItem[] {
  const where = LOCATION[err.validationContext ?? 'body'] ?? 'body';
  return (err.validation ?? []).map((v) => {
    const params = v.params as Record<string, unknown>;
    const path = v.instancePath.split('/').filter(Boolean);
    if (v.keyword === 'required') {
      return { type: 'missing', loc: [where, ...path, String(params.missingProperty)], msg: 'Field required', input: null };
    }
    if (v.keyword === 'additionalProperties') {
      return { type: 'extra_forbidden', loc: [where, ...path, String(params.additionalProperty)], msg: 'Extra inputs are not permitted', input: null };
    }
    const msg = v.keyword === 'enum'
      ? `Input should be ${(params.allowedValues as unknown[]).map((x) => `'${x}'`).join(' or ')}`
      : `Input ${v.message ?? 'is invalid'}`;
    return { type: v.keyword, loc: [where, ...path], msg, input: (v as { data?: unknown }).data ?? null };
  });
}

/** The HTTP status for a domain error code; undefined for codes that are internal errors. */
export function httpStatusFor(code: string): number | undefined {
  return STATUS_BY_CODE[code];
}

export function sendError(reply: FastifyReply, status: number, detail: unknown, headers: Record<string, string> = {}): FastifyReply {
  return reply.code(status).headers(headers).type('application/json').send({ detail });
}

/**
 * Errors Fastify raises before routing (Fastify's `frameworkErrors` option), in the same envelope: a URL that is not
 * valid percent-encoding (`%ZZ`) can only be a bad path.
 */
export function frameworkError(err: FastifyError, _req: FastifyRequest, reply: FastifyReply): void {
  if (err.code === 'FST_ERR_BAD_URL') void sendError(reply, 400, 'Invalid path');
  else void sendError(reply, 400, err.message);
}

export function registerErrorHandling(app: FastifyInstance): void {
  app.setNotFoundHandler((_req, reply) => sendError(reply, 404, 'Not Found'));
  app.setErrorHandler((err: FastifyError & { code?: string }, req: FastifyRequest, reply: FastifyReply) => {
    if (err instanceof ApiError) return sendError(reply, err.status, err.detail, err.headers);
    if (err instanceof TokenError) return sendError(reply, 401, err.message, { 'WWW-Authenticate': 'Bearer' });
    if (err.validation) return sendError(reply, 422, validationItems(err));
    if (err.code === 'FST_ERR_CTP_INVALID_JSON' || err.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || err.code === 'FST_ERR_CTP_EMPTY_JSON_BODY') {
      return sendError(reply, 422, [{ type: 'json_invalid', loc: ['body'], msg: err.message, input: null }]);
    }
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return sendError(reply, 413, 'Request body is too large');
    if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return sendError(reply, 415, 'Unsupported media type');
    const status = err.code ? STATUS_BY_CODE[err.code] : undefined;
    // Domain errors may name headers of their answer (Retry-After on a 503, Content-Range on a 416), or just when a
    // retry may succeed (a NAS being woken): clients read Retry-After on 503.
    const named = (err as { headers?: unknown }).headers;
    const headers: Record<string, string> = typeof named === 'object' && named !== null ? { ...(named as Record<string, string>) } : {};
    const retryAfterS = (err as { retryAfterS?: unknown }).retryAfterS;
    if (typeof retryAfterS === 'number' && !headers['Retry-After']) headers['Retry-After'] = String(Math.ceil(retryAfterS));
    if (status) return sendError(reply, status, err.message, headers);
    if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
      return sendError(reply, err.statusCode, err.message);
    }
    req.log.error({ err }, 'unhandled error');
    return sendError(reply, 500, 'Internal server error');
  });
}
