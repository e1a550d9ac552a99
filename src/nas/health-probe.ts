// One probe of BaluHost: GET {url}/api/health. It carries `X-Sync-Trigger: auto`, the one header that keeps
// BaluHost's soft-sleep middleware from counting the request as activity and waking the NAS (/api/health is not
// on its whitelist). A fresh connection per probe: at one probe every 5–30 s keep-alive saves nothing, and a stale
// pooled socket to a NAS that went to sleep would only blur the result.
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { VERSION } from '../version.ts';

export type ProbeResult =
  | { ok: true; version: string | null; ms: number }
  | { ok: false; error: string; ms: number };

export interface ProbeOptions {
  timeoutMs: number;
  signal?: AbortSignal;
}

/** The most a health answer may be; BaluHost's is ~80 bytes. */
const MAX_BODY = 64 * 1024;

export function healthUrl(baseUrl: string): URL {
  return new URL('api/health', baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`);
}

/** Never throws: every failure is a result with a short reason (for the log, the status and the state's reason). */
export function probeHealth(baseUrl: string, opts: ProbeOptions): Promise<ProbeResult> {
  const started = performance.now();
  const ms = () => Math.round(performance.now() - started);
  let url: URL;
  try {
    url = healthUrl(baseUrl);
  } catch {
    return Promise.resolve({ ok: false, error: `invalid NAS URL ${baseUrl}`, ms: 0 });
  }
  const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise<ProbeResult>((resolve) => {
    let settled = false;
    const finish = (r: ProbeResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      req.destroy();
      resolve(r);
    };
    const req = request(url, {
      method: 'GET',
      agent: false,
      headers: { 'X-Sync-Trigger': 'auto', Accept: 'application/json', 'User-Agent': `balupi/${VERSION}` },
    });
    const timer = setTimeout(() => finish({ ok: false, error: `no answer within ${opts.timeoutMs} ms`, ms: ms() }), opts.timeoutMs);
    const onAbort = () => finish({ ok: false, error: 'probe cancelled', ms: ms() });
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    req.on('error', (err: NodeJS.ErrnoException) => finish({ ok: false, error: err.code ?? err.message, ms: ms() }));
    req.on('response', (res: IncomingMessage) => {
      if (res.statusCode !== 200) {
        res.resume();
        return finish({ ok: false, error: `HTTP ${res.statusCode}`, ms: ms() });
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_BODY) return finish({ ok: false, error: 'health answer too large', ms: ms() });
        chunks.push(c);
      });
      res.on('error', (err: NodeJS.ErrnoException) => finish({ ok: false, error: err.code ?? err.message, ms: ms() }));
      res.on('end', () => {
        let body: unknown;
        try {
          body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch {
          return finish({ ok: false, error: 'health answer is not JSON (not BaluHost?)', ms: ms() });
        }
        const b = body as { status?: unknown; version?: unknown } | null;
        // BaluHost answers {"status":"ok","version":...}; a 200 from anything else is not the NAS being up.
        if (!b || typeof b !== 'object' || b.status !== 'ok') return finish({ ok: false, error: 'health answer is not BaluHost\'s', ms: ms() });
        finish({ ok: true, version: typeof b.version === 'string' ? b.version : null, ms: ms() });
      });
    });
    if (opts.signal?.aborted) onAbort();
    else req.end();
  });
}
