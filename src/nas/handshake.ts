// Verifies BaluHost's handshake calls (POST /api/handshake/nas-going-offline and nas-coming-online).
//
// BaluHost signs  HMAC-SHA256(secret, `${METHOD}:${PATH}:${TIMESTAMP}:${sha256hex(body)}`)  and sends the hex digest
// in X-Balupi-Signature, the Unix seconds in X-Balupi-Timestamp. It hashes Python's canonical
// json.dumps(body, sort_keys=True, separators=(",",":")) but sends json.dumps(body), so a signature is accepted if it
// matches either the raw bytes received or that canonical form rebuilt from them (python-json.ts). On top of what
// the Python BaluPi checked, a signature is accepted once only: a captured call cannot be replayed in its window.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { pythonCanonicalJson } from './python-json.ts';
import { CodedError } from '../errors.ts';

export type HandshakeErrorCode = 'handshake_unauthorized' | 'handshake_not_configured';

export class HandshakeError extends CodedError<HandshakeErrorCode> {
  override name = 'HandshakeError';
}

export interface HandshakeRequest {
  method: string;
  /** Path without host or query, e.g. /api/handshake/nas-going-offline. */
  path: string;
  timestamp: string | undefined;
  signature: string | undefined;
  body: Uint8Array;
}

/** Which bytes the signature matched. */
export type SignedForm = 'raw' | 'python-canonical';

export interface HandshakeVerifierOptions {
  secret: string | null;
  /** Accepted clock difference either way, seconds (default 60, as BaluHost and the Python BaluPi). */
  windowS?: number;
  now?: () => number;
  /** Upper bound of remembered signatures; the oldest are forgotten first (default 4096). */
  maxRemembered?: number;
  /** Signatures accepted before a restart that are still inside their window. */
  remembered?: Iterable<[signature: string, expiresAt: number]>;
  /** Called for every accepted signature, so that the caller can persist it. */
  onAccepted?: (signature: string, expiresAt: number) => void;
}

export const sha256Hex = (data: Uint8Array | string): string => createHash('sha256').update(data).digest('hex');

/** The signature BaluHost computes for a body whose signed form is `signedBody`. */
export function handshakeSignature(secret: string, method: string, path: string, timestamp: string, signedBody: Uint8Array | string): string {
  return createHmac('sha256', Buffer.from(secret, 'utf8')).update(`${method}:${path}:${timestamp}:${sha256Hex(signedBody)}`, 'utf8').digest('hex');
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

export class HandshakeVerifier {
  readonly #secret: string | null;
  readonly #windowS: number;
  readonly #now: () => number;
  readonly #max: number;
  readonly #onAccepted: HandshakeVerifierOptions['onAccepted'];
  /** signature → expiry (ms); insertion order = acceptance order. */
  readonly #seen = new Map<string, number>();

  constructor(opts: HandshakeVerifierOptions) {
    this.#secret = opts.secret && opts.secret.length > 0 ? opts.secret : null;
    this.#windowS = opts.windowS ?? 60;
    this.#now = opts.now ?? Date.now;
    this.#max = opts.maxRemembered ?? 4096;
    this.#onAccepted = opts.onAccepted;
    const now = this.#now();
    for (const [sig, exp] of opts.remembered ?? []) if (exp > now) this.#seen.set(sig, exp);
  }

  get configured(): boolean {
    return this.#secret !== null;
  }

  /** Throws HandshakeError unless the request is signed with the secret, fresh and not seen before. */
  verify(req: HandshakeRequest): SignedForm {
    if (this.#secret === null) throw new HandshakeError('handshake_not_configured', 'Handshake secret not configured');
    if (req.timestamp === undefined || req.signature === undefined) throw new HandshakeError('handshake_unauthorized', 'Missing HMAC headers');
    // Python's int() accepts surrounding blanks and a sign; so do we. The header text itself is what was signed.
    if (!/^\s*[-+]?\d{1,15}\s*$/.test(req.timestamp)) throw new HandshakeError('handshake_unauthorized', 'Invalid timestamp');
    const ts = Number(req.timestamp.trim());
    const now = this.#now();
    const age = Math.trunc(now / 1000 - ts);
    if (Math.abs(now / 1000 - ts) > this.#windowS) throw new HandshakeError('handshake_unauthorized', `Timestamp too old (${age}s)`);
    const given = /^[0-9a-fA-F]{64}$/.test(req.signature.trim()) ? Buffer.from(req.signature.trim(), 'hex') : null;
    if (!given) throw new HandshakeError('handshake_unauthorized', 'Invalid HMAC signature');

    const form = this.#match(req, given);
    if (!form) throw new HandshakeError('handshake_unauthorized', 'Invalid HMAC signature');
    const key = given.toString('hex');
    this.#prune(now);
    if (this.#seen.has(key)) throw new HandshakeError('handshake_unauthorized', 'Replayed request (signature already used)');
    const expiresAt = (ts + this.#windowS) * 1000 + 1000;
    this.#seen.set(key, expiresAt);
    if (this.#seen.size > this.#max) this.#seen.delete(this.#seen.keys().next().value!);
    this.#onAccepted?.(key, expiresAt);
    return form;
  }

  #match(req: HandshakeRequest, given: Buffer): SignedForm | null {
    const secret = this.#secret!;
    const check = (signed: Uint8Array | string) =>
      timingSafeEqual(Buffer.from(handshakeSignature(secret, req.method, req.path, req.timestamp!, signed), 'hex'), given);
    if (check(req.body)) return 'raw';
    if (req.body.length === 0) return null;
    let text: string;
    try {
      text = utf8.decode(req.body);
    } catch {
      return null;
    }
    const canonical = pythonCanonicalJson(text);
    return canonical !== null && check(Buffer.from(canonical, 'utf8')) ? 'python-canonical' : null;
  }

  #prune(now: number): void {
    for (const [sig, exp] of this.#seen) if (exp <= now) this.#seen.delete(sig);
  }
}
