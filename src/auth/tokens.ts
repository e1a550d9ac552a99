// BaluHost's tokens, verified and issued exactly as BaluHost does (../shared/reference/baluhost-api.md §2.3):
// HS256 with SECRET_KEY, header {"alg":"HS256","typ":"JWT"}, integer exp/iat, sub = str(user id);
//   access:  sub, username, role, type "access", exp, iat (15 minutes)
//   refresh: sub, jti (uuid4), type "refresh", exp, iat (7 days; mobile registration 30–180 days)
// The Pi issues access tokens itself only where BaluHost cannot answer (see src/auth/sign-in.ts).
import { randomUUID } from 'node:crypto';
import type { JWTPayload } from 'jose';

/** jose (~45 modules) loads with the first token checked or issued, not at every start of the daemon or the CLI. */
let joseModule: Promise<typeof import('jose')> | undefined;
const jose = () => (joseModule ??= import('jose'));

export interface User {
  id: number;
  username: string;
  role: 'admin' | 'user';
}

export class TokenError extends Error {
  override name = 'TokenError';
  /** Why the token was refused, for the log; clients only ever see BaluHost's generic detail string. */
  readonly reason: string;
  constructor(reason: string) {
    super('Could not validate credentials');
    this.reason = reason;
  }
}

/** A verified refresh token: whose it is, and its id (BaluHost revokes by jti). */
export interface RefreshClaims {
  userId: number;
  jti: string | null;
  exp: number;
}

/** BaluHost's default refresh-token lifetime (REFRESH_TOKEN_EXPIRE_DAYS). */
export const REFRESH_TTL_S = 7 * 86400;
export const ACCESS_TTL_S = 15 * 60;

/** Access tokens remembered after a successful check (a client sends the same token for 15 minutes). */
const VERIFIED_CACHE_SIZE = 512;

export class TokenVerifier {
  readonly #key: Uint8Array;
  /**
   * token → the user it names and when it expires. HS256 costs ~55 µs per check, half of a small listing's time on
   * a fast machine and more on the Pi; a token's signature does not change, so only its expiry is checked again.
   * Insertion-ordered, so the oldest entry is dropped first.
   */
  readonly #verified = new Map<string, { user: User; expMs: number }>();
  constructor(secret: string) {
    this.#key = new TextEncoder().encode(secret);
  }

  /** Signature, expiry and `type`; a numeric `sub`. Throws TokenError. */
  async #verify(token: string, type: string): Promise<JWTPayload & { sub: string }> {
    const { jwtVerify, errors: joseErrors } = await jose();
    let payload;
    try {
      ({ payload } = await jwtVerify(token, this.#key, { algorithms: ['HS256'], requiredClaims: ['exp', 'sub'] }));
    } catch (err) {
      const reason = err instanceof joseErrors.JWTExpired ? 'expired' : err instanceof joseErrors.JOSEError ? err.code : 'malformed';
      throw new TokenError(reason);
    }
    if (payload.type !== type) throw new TokenError(`type is ${JSON.stringify(payload.type)}, not "${type}"`);
    const sub = payload.sub ?? '';
    if (!/^\d+$/.test(sub)) throw new TokenError('sub is not a numeric user id');
    return payload as JWTPayload & { sub: string };
  }

  async verifyRefresh(token: string): Promise<RefreshClaims> {
    const payload = await this.#verify(token, 'refresh');
    return { userId: Number(payload.sub), jti: typeof payload.jti === 'string' ? payload.jti : null, exp: payload.exp! };
  }

  async verifyAccess(token: string, now = Date.now()): Promise<User> {
    const seen = this.#verified.get(token);
    if (seen) {
      if (now < seen.expMs) return { ...seen.user };
      this.#verified.delete(token);
      throw new TokenError('expired');
    }
    const payload = await this.#verify(token, 'access');
    const sub = payload.sub;
    if (typeof payload.username !== 'string' || payload.username === '') throw new TokenError('no username claim');
    const role = payload.role === 'admin' ? 'admin' : payload.role === 'user' ? 'user' : null;
    if (!role) throw new TokenError('role is neither "admin" nor "user"');
    const user: User = { id: Number(sub), username: payload.username, role };
    if (this.#verified.size >= VERIFIED_CACHE_SIZE) this.#verified.delete(this.#verified.keys().next().value!);
    this.#verified.set(token, { user, expMs: payload.exp! * 1000 });
    return { ...user };
  }

  /** Issues an access token of BaluHost's exact shape. ttlSeconds defaults to BaluHost's 15 minutes. */
  async issueAccess(user: User, ttlSeconds = ACCESS_TTL_S, now = Date.now()): Promise<string> {
    const { SignJWT } = await jose();
    const iat = Math.floor(now / 1000);
    // Claims in PyJWT's order (exp before iat), so the payload bytes are the ones BaluHost would sign.
    return new SignJWT({ sub: String(user.id), username: user.username, role: user.role, type: 'access', exp: iat + ttlSeconds, iat })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .sign(this.#key);
  }

  /** A refresh token of BaluHost's shape (for `balupi token --refresh` and tests; the Pi never hands one out on
   *  its own: BaluHost's logins do not issue them either). */
  async issueRefresh(userId: number, ttlSeconds = REFRESH_TTL_S, now = Date.now(), jti: string = randomUUID()): Promise<string> {
    const { SignJWT } = await jose();
    const iat = Math.floor(now / 1000);
    return new SignJWT({ sub: String(userId), jti, type: 'refresh', exp: iat + ttlSeconds, iat })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .sign(this.#key);
  }
}

/** Parses "15m", "2h", "7d", "900s" or plain seconds. */
export function parseDuration(text: string): number {
  const m = /^(\d+)\s*([smhd]?)$/.exec(text.trim());
  if (!m) throw new Error(`"${text}" is not a duration (examples: 900, 15m, 2h, 7d)`);
  const mult = { '': 1, s: 1, m: 60, h: 3600, d: 86400 }[m[2] as '' | 's' | 'm' | 'h' | 'd'];
  const seconds = Number(m[1]) * mult;
  if (seconds <= 0) throw new Error('a duration must be longer than 0 s');
  return seconds;
}
