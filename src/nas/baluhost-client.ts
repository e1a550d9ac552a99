// The one HTTP client that forwards client requests to BaluHost (sign-in, refresh, /auth/me, pairing). It sends the
// client's body bytes and end-to-end headers unchanged and hands BaluHost's status, headers and body back as they
// came, so clients see BaluHost's own answers and errors. Bounded: a timeout, a response size limit, no redirects
// followed (a redirect means BALUPI_NAS_URL points at the wrong address, and following it could send a password
// elsewhere). `background: true` adds `X-Sync-Trigger: auto`, which keeps a soft-sleeping NAS asleep; requests a
// person makes (sign-in, pairing) go without it and wake BaluHost from soft sleep as they would directly.
import { request as httpRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { VERSION } from '../version.ts';

export interface ForwardRequest {
  method: 'GET' | 'POST';
  /** Path and query, e.g. `/api/auth/login`. */
  path: string;
  /** The client's headers; hop-by-hop headers and Host are dropped, the rest go as they are. */
  headers: IncomingHttpHeaders;
  body?: Buffer | null;
  /** The client's address, appended to X-Forwarded-For. */
  clientIp?: string;
  background?: boolean;
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface ForwardResponse {
  status: number;
  /** End-to-end headers of BaluHost's answer (lower-case names). */
  headers: Record<string, string>;
  body: Buffer;
}

/** BaluHost could not be asked (no URL, refused, timed out, redirected, answer too large). */
export class NasUnreachableError extends Error {
  override name = 'NasUnreachableError';
  readonly code = 'nas_unreachable';
  readonly retryAfterS = 30;
}

const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer',
  'transfer-encoding', 'upgrade', 'host', 'content-length', 'expect',
]);
/** Headers of BaluHost's answer the Pi sets itself. */
const NOT_PASSED_BACK = new Set([...HOP_BY_HOP, 'date', 'server', 'x-api-version', 'x-api-min-version']);

export interface BaluHostClientOptions {
  /** BaluHost's base URL now (configured or found by mDNS), or null. */
  url: () => string | null;
  timeoutMs?: number;
  maxResponseBytes?: number;
}

export class BaluHostClient {
  readonly #o: Required<BaluHostClientOptions>;

  constructor(opts: BaluHostClientOptions) {
    this.#o = { timeoutMs: 15_000, maxResponseBytes: 1024 * 1024, ...opts };
  }

  get url(): string | null {
    return this.#o.url();
  }

  forward(req: ForwardRequest): Promise<ForwardResponse> {
    const base = this.#o.url();
    if (!base) return Promise.reject(new NasUnreachableError('no BaluHost address is known (BALUPI_NAS_URL is unset and mDNS found none)'));
    let url: URL;
    try {
      const b = new URL(base);
      url = new URL(b.pathname.replace(/\/+$/, '') + req.path, b);
    } catch {
      return Promise.reject(new NasUnreachableError(`invalid BaluHost address ${base}`));
    }
    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(req.headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) headers[k] = v;
    if (req.clientIp) {
      const prior = req.headers['x-forwarded-for'];
      headers['x-forwarded-for'] = prior ? `${prior}, ${req.clientIp}` : req.clientIp;
    }
    headers['user-agent'] ??= `balupi/${VERSION}`;
    if (req.background) headers['x-sync-trigger'] = 'auto';
    const body = req.body ?? null;
    if (body) headers['content-length'] = String(body.length);
    else if (req.method === 'POST') headers['content-length'] = '0';
    const timeoutMs = req.timeoutMs ?? this.#o.timeoutMs;
    const max = this.#o.maxResponseBytes;
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;

    return new Promise<ForwardResponse>((resolve, reject) => {
      let settled = false;
      const finish = (err: Error | null, res?: ForwardResponse) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        req.signal?.removeEventListener('abort', onAbort);
        if (err) {
          r.destroy();
          reject(err);
        } else {
          resolve(res!);
        }
      };
      // A fresh connection per call: these calls are rare, and a pooled socket to a NAS that went to sleep would
      // turn into a confusing reset.
      const r = send(url, { method: req.method, headers, agent: false });
      const timer = setTimeout(() => finish(new NasUnreachableError(`BaluHost did not answer ${req.path} within ${timeoutMs} ms`)), timeoutMs);
      const onAbort = () => finish(req.signal!.reason instanceof Error ? req.signal!.reason : new Error('cancelled'));
      req.signal?.addEventListener('abort', onAbort, { once: true });
      r.on('error', (err: NodeJS.ErrnoException) => finish(new NasUnreachableError(`BaluHost at ${url.origin} did not answer: ${err.code ?? err.message}`)));
      r.on('response', (res: IncomingMessage) => {
        const status = res.statusCode ?? 502;
        if (status >= 300 && status < 400) {
          res.resume();
          return finish(new NasUnreachableError(`BaluHost answered ${req.path} with a redirect (${status} to ${res.headers.location ?? '?'}); set BALUPI_NAS_URL to the address it redirects to`));
        }
        const declared = Number(res.headers['content-length']);
        if (declared > max) {
          res.resume();
          return finish(new NasUnreachableError(`BaluHost's answer to ${req.path} is larger than ${max} bytes`));
        }
        const parts: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > max) return finish(new NasUnreachableError(`BaluHost's answer to ${req.path} is larger than ${max} bytes`));
          parts.push(c);
        });
        res.on('error', (err: NodeJS.ErrnoException) => finish(new NasUnreachableError(`BaluHost's answer broke off: ${err.code ?? err.message}`)));
        res.on('end', () => {
          const out: Record<string, string> = {};
          for (const [k, v] of Object.entries(res.headers)) {
            if (v !== undefined && !NOT_PASSED_BACK.has(k)) out[k] = Array.isArray(v) ? v.join(', ') : v;
          }
          finish(null, { status, headers: out, body: Buffer.concat(parts) });
        });
      });
      if (req.signal?.aborted) onAbort();
      else r.end(body ?? undefined);
    });
  }
}

/** Parses a forwarded JSON answer; null when it is not a JSON object. */
export function jsonObject(body: Buffer): Record<string, unknown> | null {
  try {
    const v = JSON.parse(body.toString('utf8'));
    return v && typeof v === 'object' && !Array.isArray(v) ? v : null;
  } catch {
    return null;
  }
}
