// Sign-in, refresh and /auth/me through the Pi. When BaluHost answers, it decides and the Pi passes its answer on
// unchanged, learning from it (the user, a salted hash of a password BaluHost accepted, a revoked refresh token).
// When it does not, the Pi decides from what it learnt and issues BaluHost's own access tokens (same key, same
// claims), so clients keep working at LAN speed while the NAS sleeps. Where the Pi issues tokens itself:
//   - login:    local users (`balupi user add`) always; BaluHost users while the NAS is away, if BaluHost accepted
//               the same password through the Pi before (users with two-factor sign-in get 503: only BaluHost can
//               check the second factor; the Pi starts waking the NAS so a retry works)
//   - refresh:  while the NAS is away, or without a NAS: a valid refresh token (signature, expiry, type, not known
//               to be revoked) of a user the Pi knows and that is not inactive
// A user the Pi has never seen signing in while the NAS is away wakes the NAS and is forwarded (like pairing).
import type { IncomingHttpHeaders } from 'node:http';
import type { Logger } from '../log.ts';
import { TokenError, type TokenVerifier, type User } from './tokens.ts';
import { burnTime, hashPassword, verifyPassword } from './passwords.ts';
import { userPublic, type UserCache, type UserRecord } from './user-cache.ts';
import { jsonObject, NasUnreachableError, type BaluHostClient, type ForwardResponse } from '../nas/baluhost-client.ts';
import type { NasService } from '../nas/service.ts';

/** What the Pi needs to know about the NAS: where it is, whether it is up, and how to wake it. */
export interface NasLink {
  url(): string | null;
  online(): boolean;
  /** Wakes the NAS if needed and waits until it answers; rejects with a `nas_unavailable` error. */
  ensureAvailable(reason: string, signal?: AbortSignal): Promise<unknown>;
}

/** The NAS presence service as a NasLink; without one (hub role) the Pi stands alone. */
export function nasLinkFor(nas: NasService | null): NasLink {
  if (!nas) return { url: () => null, online: () => false, ensureAvailable: () => Promise.reject(new Error('no NAS')) };
  return { url: () => nas.url(), online: () => nas.state === 'online', ensureAvailable: (reason, signal) => nas.ensureNasAvailable(reason, { signal, by: 'client' }) };
}

export type AuthErrorCode = 'invalid_credentials' | 'refresh_invalid' | 'refresh_revoked' | 'user_inactive' | 'two_factor_needs_nas' | 'nas_unavailable';

export class AuthError extends Error {
  override name = 'AuthError';
  readonly code: AuthErrorCode;
  readonly retryAfterS: number | undefined;
  constructor(code: AuthErrorCode, message: string, retryAfterS?: number) {
    super(message);
    this.code = code;
    this.retryAfterS = retryAfterS;
  }
}

/** How long clients are told to wait for a NAS that is being woken (a typical boot). */
export const WAKE_RETRY_AFTER_S = 60;

/** An answer for the client: BaluHost's, passed on, or the Pi's own JSON. */
export interface Answer {
  status: number;
  headers: Record<string, string>;
  body: Buffer | Record<string, unknown>;
}

/** The client's request as far as forwarding needs it. */
export interface ClientRequest {
  headers: IncomingHttpHeaders;
  rawBody: Buffer | null;
  ip: string;
  signal?: AbortSignal;
}

const passOn = (r: ForwardResponse): Answer => ({ status: r.status, headers: r.headers, body: r.body });
const detailOf = (r: ForwardResponse): unknown => jsonObject(r.body)?.detail;

export class SignInService {
  readonly #users: UserCache;
  readonly #tokens: TokenVerifier;
  readonly #nas: NasLink;
  readonly #client: BaluHostClient;
  readonly #log: Logger;

  constructor(deps: { users: UserCache; tokens: TokenVerifier; nas: NasLink; client: BaluHostClient; log: Logger }) {
    this.#users = deps.users;
    this.#tokens = deps.tokens;
    this.#nas = deps.nas;
    this.#client = deps.client;
    this.#log = deps.log;
  }

  /** POST /api/auth/login {username, password}. */
  async login(username: string, password: string, req: ClientRequest): Promise<Answer> {
    const known = await this.#users.byName(username);
    if (known?.source === 'local') return this.#localLogin(known, password);
    if (this.#nas.url() === null) return this.#localLogin(known, password);
    const forwarded = await this.#tryForward('/api/auth/login', req);
    if (forwarded) return this.#learnFromLogin(username, password, forwarded, known);
    // The NAS is away.
    if (await this.#users.twoFactor(username)) {
      void this.#nas.ensureAvailable(`two-factor sign-in of ${username}`).catch((err) => this.#log.warn({ err: err.message }, 'could not wake the NAS for a two-factor sign-in'));
      throw new AuthError('two_factor_needs_nas', 'This account signs in with a second factor, which only the NAS can check, and the NAS is asleep. It is being woken: sign in again in a minute.', WAKE_RETRY_AFTER_S);
    }
    if (known?.passwordHash) return this.#localLogin(known, password);
    // Never signed in through the Pi: only BaluHost can say. A person is waiting, as with pairing: wake it.
    await this.#ensureNas(`sign-in of ${username}, unknown to the Pi`, req.signal);
    return this.#learnFromLogin(username, password, await this.#client.forward(this.#forwardOf('/api/auth/login', req)), known);
  }

  /** POST /api/auth/verify-2fa: BaluHost's second step; only BaluHost can check the code. */
  async verifySecondFactor(req: ClientRequest): Promise<Answer> {
    await this.#ensureNas('two-factor sign-in', req.signal);
    const res = await this.#client.forward(this.#forwardOf('/api/auth/verify-2fa', req));
    if (res.status === 200) await this.#users.rememberFromBaluHost(jsonObject(res.body)?.user, true);
    return passOn(res);
  }

  /** POST /api/auth/refresh {refresh_token}. */
  async refresh(refreshToken: string, req: ClientRequest): Promise<Answer> {
    let claims;
    try {
      claims = await this.#tokens.verifyRefresh(refreshToken);
    } catch (err) {
      if (err instanceof TokenError) throw new AuthError('refresh_invalid', 'Invalid refresh token');
      throw err;
    }
    if (claims.jti && (await this.#users.isRevoked(claims.jti))) throw new AuthError('refresh_revoked', 'Refresh token has been revoked');
    const known = await this.#users.get(claims.userId);
    if (known?.source !== 'local' && this.#nas.url() !== null) {
      const res = await this.#tryForward('/api/auth/refresh', req);
      if (res) {
        const detail = detailOf(res);
        if (res.status === 200) await this.#users.rememberFromBaluHost(jsonObject(res.body)?.user, true);
        else if (res.status === 401 && detail === 'Refresh token has been revoked' && claims.jti) await this.#users.revoke(claims.jti, claims.exp);
        else if (res.status === 401 && detail === 'User account is inactive') await this.#users.markInactive(claims.userId);
        return passOn(res);
      }
    }
    if (!known) throw new AuthError('refresh_invalid', 'Invalid refresh token');
    if (userPublic(known).is_active === false) throw new AuthError('user_inactive', 'User account is inactive');
    this.#log.info({ user: known.username, source: known.source }, 'access token issued by the Pi (refresh)');
    return this.#tokenAnswer(known);
  }

  /** GET /api/auth/me for a verified access token: never 5xx (BaluDesk drops its pairing on any error but 401). */
  async me(user: User, req: ClientRequest): Promise<Answer> {
    try {
      return await this.#me(user, req);
    } catch (err) {
      if (err instanceof AuthError) throw err;
      // Even a failing disk must not cost a desktop its pairing: the token's own claims are a true answer.
      this.#log.error({ err }, '/auth/me failed; answering from the token');
      return { status: 200, headers: {}, body: userPublic({ id: user.id, username: user.username, role: user.role, source: 'baluhost', profile: {}, updatedAt: 0 }) };
    }
  }

  async #me(user: User, req: ClientRequest): Promise<Answer> {
    const known = await this.#users.get(user.id);
    if (known?.source !== 'local' && this.#nas.url() !== null && this.#nas.online()) {
      try {
        // Not a person's action (BaluDesk checks at start-up): must not wake a soft-sleeping NAS.
        const res = await this.#client.forward({ ...this.#forwardOf('/api/auth/me', req), method: 'GET', body: null, background: true, timeoutMs: 3_000 });
        if (res.status === 200 && (await this.#users.rememberFromBaluHost(jsonObject(res.body), true))) return passOn(res);
        if (res.status === 401) {
          const detail = detailOf(res);
          if (detail === 'User no longer exists') await this.#users.forget(user.id);
          if (detail === 'User account is inactive') await this.#users.markInactive(user.id);
          return passOn(res);
        }
        this.#log.debug({ status: res.status }, '/auth/me: BaluHost answered oddly; answering from what the Pi knows');
      } catch (err) {
        if (!(err instanceof NasUnreachableError)) throw err;
      }
    }
    const rec = known ?? (await this.#users.rememberFromToken(user));
    const profile = userPublic(rec);
    if (profile.is_active === false) throw new AuthError('user_inactive', 'User account is inactive');
    return { status: 200, headers: {}, body: profile };
  }

  /** Forwards a pairing call, waking the NAS first (pairing is rare and a person is waiting), and learns the user
   *  from the answer. */
  async forwardPairing(path: string, req: ClientRequest, learn: (body: Record<string, unknown>) => unknown): Promise<Answer> {
    if (this.#nas.url() === null) {
      throw new AuthError('nas_unavailable', 'Pairing needs the BaluHost NAS, and this Pi has none configured (BALUPI_NAS_URL). Sign in with a local user (balupi user add) instead.');
    }
    await this.#ensureNas(`pairing (${path})`, req.signal);
    let res: ForwardResponse;
    try {
      res = await this.#client.forward(this.#forwardOf(path, req));
    } catch (err) {
      if (err instanceof NasUnreachableError) throw new AuthError('nas_unavailable', err.message, err.retryAfterS);
      throw err;
    }
    if (res.status >= 200 && res.status < 300) {
      const body = jsonObject(res.body);
      const user = body ? learn(body) : null;
      if (user) await this.#users.rememberFromBaluHost(user, false);
    }
    return passOn(res);
  }

  /** Whether a BaluHost to forward to is known (configured, or found by mDNS); false: the Pi stands alone. */
  get hasNas(): boolean {
    return this.#nas.url() !== null;
  }

  /** Remembers the user of a verified token that reached a Pi route. */
  async sawToken(user: User): Promise<void> {
    await this.#users.rememberFromToken(user);
  }

  async #localLogin(rec: UserRecord | null, password: string): Promise<Answer> {
    const ok = rec?.passwordHash ? await verifyPassword(password, rec.passwordHash) : await burnTime(password);
    if (!ok || !rec) throw new AuthError('invalid_credentials', 'Invalid credentials');
    this.#log.info({ user: rec.username, source: rec.source }, 'access token issued by the Pi (login)');
    return this.#tokenAnswer(rec);
  }

  async #tokenAnswer(rec: UserRecord): Promise<Answer> {
    const accessToken = await this.#tokens.issueAccess({ id: rec.id, username: rec.username, role: rec.role });
    return { status: 200, headers: {}, body: { access_token: accessToken, token_type: 'bearer', user: userPublic(rec) } };
  }

  async #learnFromLogin(username: string, password: string, res: ForwardResponse, known: UserRecord | null): Promise<Answer> {
    const body = res.status === 200 ? jsonObject(res.body) : null;
    if (body?.requires_2fa === true) {
      await this.#users.setTwoFactor(username, true);
      if (known?.passwordHash) await this.#users.setPasswordHash(known.id, null);
    } else if (body && typeof body.access_token === 'string') {
      const rec = await this.#users.rememberFromBaluHost(body.user, true);
      if (rec && rec.username === username) {
        await this.#users.setPasswordHash(rec.id, await hashPassword(password));
        await this.#users.setTwoFactor(username, false);
      }
    } else if (res.status === 401 && known?.passwordHash && (await verifyPassword(password, known.passwordHash))) {
      // BaluHost no longer takes the password the Pi remembers (changed on the NAS): the Pi forgets it too.
      await this.#users.setPasswordHash(known.id, null);
    }
    return passOn(res);
  }

  /** BaluHost's answer if the NAS is up and answers below 500; null when it is away (or broken). */
  async #tryForward(path: string, req: ClientRequest): Promise<ForwardResponse | null> {
    if (!this.#nas.online()) return null;
    try {
      const res = await this.#client.forward(this.#forwardOf(path, req));
      if (res.status < 500) return res;
      this.#log.warn({ path, status: res.status }, 'BaluHost failed; the Pi answers from what it knows');
    } catch (err) {
      if (!(err instanceof NasUnreachableError)) throw err;
      this.#log.info({ path, err: err.message }, 'BaluHost did not answer; the Pi answers from what it knows');
    }
    return null;
  }

  async #ensureNas(reason: string, signal?: AbortSignal): Promise<void> {
    if (this.#nas.online()) return;
    try {
      await this.#nas.ensureAvailable(reason, signal);
    } catch (err) {
      if ((err as { code?: string }).code === 'nas_unavailable') throw new AuthError('nas_unavailable', (err as Error).message, WAKE_RETRY_AFTER_S);
      throw err;
    }
  }

  #forwardOf(path: string, req: ClientRequest) {
    return { method: 'POST' as const, path, headers: req.headers, body: req.rawBody, clientIp: req.ip, signal: req.signal };
  }
}
