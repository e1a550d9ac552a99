// KLAP v2 client session to one Tapo plug: handshake once, reuse the session for every poll, renew it before the
// plug's announced TIMEOUT, re-handshake once when the plug answers 403 (it forgot the session: reboot, expiry,
// too many clients), and never wait longer than a deadline. Requests to one plug are serialised: the plug is a
// small device and the session's sequence numbers are meant to advance one request at a time.

import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { randomBytes } from 'node:crypto';
import {
  KLAP_HASH_BYTES,
  KLAP_SEED_BYTES,
  klapAuthHash,
  klapClientProof,
  klapDeriveKeys,
  klapOpen,
  klapSeal,
  klapServerProof,
  nextSeq,
  type KlapKeys,
} from './klap-crypto.ts';
import { PlugError, formatHostPort } from './plug-client.ts';

export interface KlapTransportOptions {
  host: string;
  port: number;
  username: string;
  password: string;
  /** Deadline of one HTTP exchange (handshake step or request), ms. */
  timeoutMs?: number;
  now?: () => number;
}

/** The plug answered 404 to handshake1: it does not speak KLAP (older firmware speaks the AES passthrough). */
export class KlapUnsupportedError extends PlugError {}

interface Session {
  cookie: string;
  keys: KlapKeys;
  seq: number;
  renewAt: number;
}

interface HttpAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

const MAX_ANSWER = 1024 * 1024;
const SESSION_TIMEOUT_CODE = 9999; // SESSION_TIMEOUT_ERROR: same meaning as a 403
const BLANK_AUTH = klapAuthHash('', '');

export class KlapTransport {
  readonly target: string;
  /** Completed handshakes, for diagnostics and tests of session reuse. */
  handshakes = 0;

  #opts: Required<KlapTransportOptions>;
  #authHash: Buffer;
  #session: Session | null = null;
  #closed = new AbortController();
  #queue: Promise<unknown> = Promise.resolve();

  constructor(options: KlapTransportOptions) {
    this.#opts = { ...options, timeoutMs: options.timeoutMs ?? 5_000, now: options.now ?? Date.now };
    this.#authHash = klapAuthHash(options.username, options.password);
    this.target = formatHostPort(options.host, options.port);
  }

  /** Sends one SMART request ({method, params}) and returns the plug's decoded answer ({error_code, result?}). */
  send(request: { method: string; params?: unknown }, signal?: AbortSignal): Promise<{ error_code: number; result?: unknown }> {
    const run = async () => {
      this.#throwIfAborted(signal);
      return this.#sendWithRetry(request, signal);
    };
    // Serialise per plug; a failed call must not poison the ones queued behind it.
    const p = this.#queue.then(run, run);
    this.#queue = p.catch(() => undefined);
    return p;
  }

  close(): void {
    this.#session = null;
    this.#closed.abort();
  }

  async #sendWithRetry(request: { method: string; params?: unknown }, signal?: AbortSignal) {
    for (let attempt = 0; ; attempt++) {
      const session = await this.#ensureSession(signal);
      const seq = nextSeq(session.seq);
      session.seq = seq;
      const frame = klapSeal(session.keys, seq, Buffer.from(JSON.stringify(request), 'utf8'));
      const answer = await this.#post(`/app/request?seq=${seq}`, frame, session.cookie, signal);
      let expired = answer.status === 403;
      let decoded: { error_code: number; result?: unknown } | null = null;
      if (answer.status === 200) {
        decoded = this.#decode(session, seq, answer.body);
        expired = decoded.error_code === SESSION_TIMEOUT_CODE;
      } else if (!expired) {
        throw new PlugError('PLUG_PROTOCOL', this.target, `Plug ${this.target} answered HTTP ${answer.status} to a request`);
      }
      if (!expired && decoded) return decoded;
      this.#session = null;
      if (attempt >= 1) {
        throw new PlugError(
          'PLUG_PROTOCOL',
          this.target,
          `Plug ${this.target} rejected a fresh session right after the handshake (HTTP ${answer.status})`,
        );
      }
    }
  }

  #decode(session: Session, seq: number, body: Buffer): { error_code: number; result?: unknown } {
    let parsed: unknown;
    try {
      parsed = JSON.parse(klapOpen(session.keys, seq, body).toString('utf8'));
    } catch (cause) {
      // Keys no longer agree with the plug's: start over with a new session next time.
      this.#session = null;
      throw new PlugError('PLUG_PROTOCOL', this.target, `Plug ${this.target} sent an answer that does not decrypt`, { cause });
    }
    if (!parsed || typeof parsed !== 'object' || typeof (parsed as { error_code?: unknown }).error_code !== 'number') {
      throw new PlugError('PLUG_PROTOCOL', this.target, `Plug ${this.target} sent an answer without error_code`);
    }
    return parsed as { error_code: number; result?: unknown };
  }

  async #ensureSession(signal?: AbortSignal): Promise<Session> {
    const s = this.#session;
    if (s && this.#opts.now() < s.renewAt) return s;
    this.#session = null;
    this.#session = await this.#handshake(signal);
    return this.#session;
  }

  async #handshake(signal?: AbortSignal): Promise<Session> {
    const localSeed = randomBytes(KLAP_SEED_BYTES);
    const h1 = await this.#post('/app/handshake1', localSeed, null, signal);
    if (h1.status === 404) {
      throw new KlapUnsupportedError('PLUG_PROTOCOL', this.target, `Plug ${this.target} does not speak KLAP (404 on handshake1)`);
    }
    if (h1.status !== 200 || h1.body.length < KLAP_SEED_BYTES + KLAP_HASH_BYTES) {
      throw new PlugError('PLUG_PROTOCOL', this.target, `Plug ${this.target} answered handshake1 with HTTP ${h1.status}, ${h1.body.length} bytes`);
    }
    const remoteSeed = h1.body.subarray(0, KLAP_SEED_BYTES);
    const proof = h1.body.subarray(KLAP_SEED_BYTES, KLAP_SEED_BYTES + KLAP_HASH_BYTES);
    if (!proof.equals(klapServerProof(localSeed, remoteSeed, this.#authHash))) {
      if (proof.equals(klapServerProof(localSeed, remoteSeed, BLANK_AUTH))) {
        throw new PlugError(
          'PLUG_AUTH',
          this.target,
          `Plug ${this.target} has no TP-Link account (it was reset): add it to your account in the Tapo app, then retry`,
        );
      }
      throw new PlugError(
        'PLUG_AUTH',
        this.target,
        `Plug ${this.target} rejected the Tapo credentials: use the e-mail and password of the TP-Link account the plug ` +
          `is registered to in the Tapo app (if the password was changed recently, the plug may need a power cycle)`,
      );
    }
    const { cookie, timeoutS } = parseSessionCookie(h1.headers['set-cookie']);
    if (!cookie) throw new PlugError('PLUG_PROTOCOL', this.target, `Plug ${this.target} sent no TP_SESSIONID cookie`);
    const h2 = await this.#post('/app/handshake2', klapClientProof(localSeed, remoteSeed, this.#authHash), cookie, signal);
    if (h2.status !== 200) {
      throw new PlugError('PLUG_PROTOCOL', this.target, `Plug ${this.target} answered handshake2 with HTTP ${h2.status}`);
    }
    this.handshakes++;
    const keys = klapDeriveKeys(localSeed, remoteSeed, this.#authHash);
    // Renew well before the plug drops the session (python-kasa keeps 20 minutes of margin on the 24 h default).
    const lifetimeMs = timeoutS * 1000;
    const renewAt = this.#opts.now() + lifetimeMs - Math.min(20 * 60_000, lifetimeMs / 2);
    return { cookie, keys, seq: keys.initialSeq, renewAt };
  }

  #throwIfAborted(signal?: AbortSignal): void {
    if (this.#closed.signal.aborted) throw new PlugError('PLUG_CLOSED', this.target, `Client for plug ${this.target} is closed`);
    if (signal?.aborted) throw new PlugError('PLUG_TIMEOUT', this.target, `Plug ${this.target}: call aborted (deadline passed)`);
  }

  #post(path: string, body: Buffer, cookie: string | null, signal?: AbortSignal): Promise<HttpAnswer> {
    this.#throwIfAborted(signal);
    const timeout = AbortSignal.timeout(this.#opts.timeoutMs);
    const signals = [this.#closed.signal, timeout, ...(signal ? [signal] : [])];
    const all = AbortSignal.any(signals);
    return new Promise<HttpAnswer>((resolve, reject) => {
      const fail = (cause: unknown) => reject(this.#networkError(cause, signal, timeout));
      const req = httpRequest(
        {
          host: this.#opts.host,
          port: this.#opts.port,
          path,
          method: 'POST',
          // One connection per exchange: a plug closes idle keep-alive sockets on its own schedule, and a poll is a
          // single batched request anyway.
          agent: false,
          headers: {
            'Content-Type': 'application/octet-stream',
            'Content-Length': body.length,
            ...(cookie ? { Cookie: cookie } : {}),
          },
          signal: all,
        },
        (res) => {
          const parts: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            size += c.length;
            if (size > MAX_ANSWER) {
              res.destroy(new PlugError('PLUG_PROTOCOL', this.target, `Plug ${this.target} sent an oversized answer`));
              return;
            }
            parts.push(c);
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts) }));
          res.on('error', fail);
        },
      );
      req.on('error', fail);
      req.end(body);
    });
  }

  #networkError(cause: unknown, signal: AbortSignal | undefined, timeout: AbortSignal): PlugError {
    if (cause instanceof PlugError) return cause;
    const t = this.target;
    if (this.#closed.signal.aborted) return new PlugError('PLUG_CLOSED', t, `Client for plug ${t} is closed`, { cause });
    if (timeout.aborted) return new PlugError('PLUG_TIMEOUT', t, `Plug ${t} did not answer within ${this.#opts.timeoutMs} ms`, { cause });
    if (signal?.aborted) return new PlugError('PLUG_TIMEOUT', t, `Plug ${t}: call aborted (deadline passed)`, { cause });
    const code = (cause as { code?: unknown }).code;
    const why = typeof code === 'string' ? code : cause instanceof Error ? cause.message : String(cause);
    return new PlugError('PLUG_UNREACHABLE', t, `Plug ${t} is unreachable (${why})`, { cause });
  }
}

function parseSessionCookie(header: string[] | undefined): { cookie: string | null; timeoutS: number } {
  let cookie: string | null = null;
  let timeoutS = 86_400;
  for (const line of header ?? []) {
    const id = /TP_SESSIONID=([^;\s]+)/.exec(line);
    if (id) cookie = `TP_SESSIONID=${id[1]}`;
    const t = /TIMEOUT=(\d+)/.exec(line);
    if (t) timeoutS = Math.max(60, Number(t[1]));
  }
  return { cookie, timeoutS };
}
