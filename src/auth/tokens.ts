// BaluHost's access tokens, verified and (for standalone use and tests) issued exactly as BaluHost does:
// HS256 with SECRET_KEY, integer exp/iat, type "access", sub = str(user id), plus username and role
// (../shared/reference/baluhost-api.md §2.3).
import { SignJWT, jwtVerify, errors as joseErrors } from 'jose';

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

export class TokenVerifier {
  readonly #key: Uint8Array;
  constructor(secret: string) {
    this.#key = new TextEncoder().encode(secret);
  }

  async verifyAccess(token: string): Promise<User> {
    let payload;
    try {
      ({ payload } = await jwtVerify(token, this.#key, { algorithms: ['HS256'], requiredClaims: ['exp', 'sub'] }));
    } catch (err) {
      const reason = err instanceof joseErrors.JWTExpired ? 'expired' : err instanceof joseErrors.JOSEError ? err.code : 'malformed';
      throw new TokenError(reason);
    }
    if (payload.type !== 'access') throw new TokenError(`type is ${JSON.stringify(payload.type)}, not "access"`);
    const sub = payload.sub ?? '';
    if (!/^\d+$/.test(sub)) throw new TokenError('sub is not a numeric user id');
    if (typeof payload.username !== 'string' || payload.username === '') throw new TokenError('no username claim');
    const role = payload.role === 'admin' ? 'admin' : payload.role === 'user' ? 'user' : null;
    if (!role) throw new TokenError('role is neither "admin" nor "user"');
    return { id: Number(sub), username: payload.username, role };
  }

  /** Issues an access token of BaluHost's exact shape. ttlSeconds defaults to BaluHost's 15 minutes. */
  async issueAccess(user: User, ttlSeconds = 15 * 60, now = Date.now()): Promise<string> {
    const iat = Math.floor(now / 1000);
    return new SignJWT({ sub: String(user.id), username: user.username, role: user.role, type: 'access' })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setIssuedAt(iat)
      .setExpirationTime(iat + ttlSeconds)
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
