// The accounts part of the BaluHost stand-in (test/emulators/baluhost.ts): users, tokens and device pairing, in
// BaluHost's exact shapes (backend/app/api/routes/auth.py, mobile.py, desktop_pairing.py, sync.py; reference
// ../shared/reference/baluhost-api.md §2, §8). Tokens are signed the way PyJWT signs them: header
// {"alg":"HS256","typ":"JWT"} and the payload as json.dumps(payload, separators=(",",":")) in BaluHost's claim
// order — written here independently of src/auth/tokens.ts, so a test can compare the Pi's tokens with these.
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { jwtVerify } from 'jose';
import { pyDumps, type PyValue } from './baluhost.ts';

export interface EmulatedUser {
  id: number;
  username: string;
  password: string;
  role: 'admin' | 'user';
  email: string | null;
  /** TOTP enabled: login answers requires_2fa; verify-2fa accepts TOTP_CODE. */
  totp: boolean;
  is_active: boolean;
  smb_enabled: boolean;
  created_at: string;
  updated_at: string | null;
}

export const TOTP_CODE = '123456';

export interface Reply {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

const b64 = (s: string | Buffer) => Buffer.from(s).toString('base64url');
const err = (status: number, detail: unknown, headers?: Record<string, string>): Reply => ({ status, body: { detail }, headers });
/** Mobile registration's hand-formatted time: YYYY-MM-DDTHH:MM:SS.mmmZ. */
const mobileTime = (ms: number) => new Date(ms).toISOString();

export class BaluHostAccounts {
  readonly secret: string;
  readonly users = new Map<string, EmulatedUser>();
  /** jtis of stored refresh tokens (mobile registration only, as in BaluHost), and whether revoked. */
  readonly refreshTokens = new Map<string, { userId: number; revoked: boolean }>();
  readonly #registrationTokens = new Map<string, { userId: number; used: boolean; expiresAt: number; validityDays: number }>();
  readonly #pairings = new Map<string, { userCode: string; deviceId: string; deviceName: string; platform: string; userId: number | null; expiresAt: number }>();
  readonly #desktops = new Map<string, { userId: number; name: string }>();
  #nextId = 1;

  constructor(secret: string) {
    this.secret = secret;
  }

  addUser(u: Partial<EmulatedUser> & { username: string; password: string }): EmulatedUser {
    const user: EmulatedUser = {
      id: this.#nextId++, role: 'user', email: null, totp: false, is_active: true, smb_enabled: false,
      created_at: '2026-02-01T10:00:00+00:00', updated_at: null, ...u,
    };
    this.users.set(user.username, user);
    return user;
  }

  byId(id: number): EmulatedUser | undefined {
    return [...this.users.values()].find((u) => u.id === id);
  }

  /** backend/app/core/security.py through PyJWT. */
  sign(payload: Map<string, PyValue>): string {
    const head = b64('{"alg":"HS256","typ":"JWT"}');
    const body = b64(pyDumps(payload, { compact: true }));
    const sig = createHmac('sha256', Buffer.from(this.secret, 'utf8')).update(`${head}.${body}`).digest('base64url');
    return `${head}.${body}.${sig}`;
  }

  accessToken(u: EmulatedUser, now = Date.now()): string {
    const iat = Math.floor(now / 1000);
    return this.sign(new Map<string, PyValue>([['sub', String(u.id)], ['username', u.username], ['role', u.role], ['type', 'access'], ['exp', iat + 900], ['iat', iat]]));
  }

  /** A refresh token; `store` as mobile registration does (desktop pairing does not, so BaluHost calls it revoked). */
  refreshToken(u: EmulatedUser, opts: { ttlS?: number; store?: boolean; now?: number } = {}): string {
    const iat = Math.floor((opts.now ?? Date.now()) / 1000);
    const jti = randomUUID();
    if (opts.store ?? true) this.refreshTokens.set(jti, { userId: u.id, revoked: false });
    return this.sign(new Map<string, PyValue>([['sub', String(u.id)], ['jti', jti], ['type', 'refresh'], ['exp', iat + (opts.ttlS ?? 7 * 86400)], ['iat', iat]]));
  }

  /** POST /api/mobile/token/generate, done by an admin in BaluHost's web UI. */
  registrationToken(username: string, validityDays = 90): string {
    const token = `reg_${randomBytes(24).toString('base64url')}`;
    this.#registrationTokens.set(token, { userId: this.users.get(username)!.id, used: false, expiresAt: Date.now() + 300_000, validityDays });
    return token;
  }

  /** The user approves BaluDesk's code in BaluHost's web UI. */
  approveDesktop(userCode: string, username: string): void {
    const p = [...this.#pairings.values()].find((x) => x.userCode === userCode);
    if (!p) throw new Error(`no pairing with code ${userCode}`);
    p.userId = this.users.get(username)!.id;
  }

  userPublic(u: EmulatedUser) {
    return { username: u.username, email: u.email, id: u.id, role: u.role, is_active: u.is_active, smb_enabled: u.smb_enabled, created_at: u.created_at, updated_at: u.updated_at };
  }

  async #verify(token: string, type: string): Promise<Record<string, unknown> | null> {
    try {
      const { payload } = await jwtVerify(token, new TextEncoder().encode(this.secret), { algorithms: ['HS256'] });
      return payload.type === type ? payload : null;
    } catch {
      return null;
    }
  }

  /** backend/app/api/deps.py get_current_user. */
  async #currentUser(headers: IncomingHttpHeaders): Promise<EmulatedUser | Reply> {
    const m = /^Bearer (.+)$/.exec(headers.authorization ?? '');
    if (!m) return err(401, 'No authentication token provided', { 'www-authenticate': 'Bearer' });
    const p = await this.#verify(m[1]!, 'access');
    if (!p) return err(401, 'Could not validate credentials', { 'www-authenticate': 'Bearer' });
    const u = this.byId(Number(p.sub));
    if (!u) return err(401, 'User no longer exists');
    if (!u.is_active) return err(401, 'User account is inactive');
    return u;
  }

  /** Routes this part answers; null for paths it does not know. `body` is the parsed JSON (undefined if none). */
  async handle(method: string, path: string, headers: IncomingHttpHeaders, body: any): Promise<Reply | null> {
    const needs = (...keys: string[]): Reply | null => {
      if (!body || typeof body !== 'object' || Array.isArray(body)) {
        return err(422, [{ type: 'model_attributes_type', loc: ['body'], msg: 'Input should be a valid dictionary or object to extract fields from', input: String(body) }]);
      }
      const missing = keys.filter((k) => typeof body[k] !== 'string');
      return missing.length ? err(422, missing.map((k) => ({ type: 'missing', loc: ['body', k], msg: 'Field required', input: JSON.stringify(body) }))) : null;
    };
    const token = (u: EmulatedUser) => ({ status: 200, body: { access_token: this.accessToken(u), token_type: 'bearer', user: this.userPublic(u) } });
    const key = `${method} ${path}`;
    switch (key) {
      case 'POST /api/auth/login': {
        const bad = needs('username', 'password');
        if (bad) return bad;
        const u = this.users.get(body.username);
        if (!u || u.password !== body.password) return err(401, 'Invalid credentials');
        if (u.totp) {
          const iat = Math.floor(Date.now() / 1000);
          const pending = this.sign(new Map<string, PyValue>([['sub', String(u.id)], ['type', '2fa_pending'], ['exp', iat + 300], ['iat', iat]]));
          return { status: 200, body: { requires_2fa: true, pending_token: pending, token_type: '2fa_pending' } };
        }
        return token(u);
      }
      case 'POST /api/auth/verify-2fa': {
        const bad = needs('pending_token', 'code');
        if (bad) return bad;
        const p = await this.#verify(body.pending_token, '2fa_pending');
        if (!p) return err(401, 'Invalid or expired 2FA token');
        const u = this.byId(Number(p.sub));
        if (!u) return err(401, 'User not found');
        return body.code === TOTP_CODE ? token(u) : err(401, 'Invalid 2FA code');
      }
      case 'POST /api/auth/refresh': {
        const bad = needs('refresh_token');
        if (bad) return bad;
        const p = await this.#verify(body.refresh_token, 'refresh');
        if (!p) return err(401, 'Invalid refresh token');
        // token_service.is_token_revoked: an unknown jti counts as revoked.
        if (p.jti && (this.refreshTokens.get(String(p.jti))?.revoked ?? true)) return err(401, 'Refresh token has been revoked');
        const u = this.byId(Number(p.sub));
        if (!u) return err(401, 'Invalid refresh token');
        if (!u.is_active) return err(401, 'User account is inactive');
        return token(u);
      }
      case 'GET /api/auth/me': {
        const u = await this.#currentUser(headers);
        return 'status' in u ? u : { status: 200, body: this.userPublic(u) };
      }
      case 'POST /api/mobile/register': {
        const bad = needs('token');
        if (bad) return bad;
        const info = body.device_info ?? body.deviceInfo ?? {};
        const reg = this.#registrationTokens.get(body.token);
        if (!reg) return err(401, 'Invalid registration token');
        if (reg.used) return err(401, 'Registration token already used');
        if (reg.expiresAt < Date.now()) return err(401, 'Registration token expired');
        reg.used = true;
        const u = this.byId(reg.userId)!;
        const now = Date.now();
        return {
          status: 200,
          body: {
            access_token: this.accessToken(u),
            refresh_token: this.refreshToken(u, { ttlS: reg.validityDays * 86400 }),
            token_type: 'bearer',
            user: { id: u.id, username: u.username, email: u.email ?? '', role: u.role, created_at: mobileTime(Date.parse(u.created_at)), is_active: u.is_active },
            device: {
              id: randomUUID(), user_id: u.id, device_name: info.device_name ?? info.deviceName, device_type: info.device_type ?? info.deviceType,
              device_model: info.device_model ?? info.deviceModel ?? null, last_seen: mobileTime(now), is_active: true,
            },
          },
        };
      }
      case 'POST /api/desktop-pairing/device-code': {
        const bad = needs('device_id', 'device_name', 'platform');
        if (bad) return bad;
        const deviceCode = randomBytes(24).toString('base64url');
        const userCode = String(100000 + (randomBytes(4).readUInt32BE() % 900000));
        this.#pairings.set(deviceCode, { userCode, deviceId: body.device_id, deviceName: body.device_name, platform: body.platform, userId: null, expiresAt: Date.now() + 600_000 });
        return { status: 200, body: { device_code: deviceCode, user_code: userCode, verification_url: `http://${headers.host}/devices?pair=1`, expires_in: 600, interval: 5 } };
      }
      case 'POST /api/desktop-pairing/poll': {
        const bad = needs('device_code');
        if (bad) return bad;
        const p = this.#pairings.get(body.device_code);
        if (!p) return err(404, 'Invalid device code');
        if (p.expiresAt < Date.now()) return { status: 200, body: { status: 'expired' } };
        if (p.userId === null) return { status: 200, body: { status: 'authorization_pending' } };
        this.#pairings.delete(body.device_code);
        const u = this.byId(p.userId)!;
        return {
          status: 200,
          body: {
            status: 'approved', access_token: this.accessToken(u), refresh_token: this.refreshToken(u, { store: false }), token_type: 'bearer',
            user: { id: u.id, username: u.username, email: u.email, role: u.role },
          },
        };
      }
      case 'POST /api/sync/register-desktop': {
        const u = await this.#currentUser(headers);
        if ('status' in u) return u;
        const bad = needs('device_id');
        if (bad) return bad;
        const existing = this.#desktops.get(body.device_id);
        const name = body.device_name ?? existing?.name ?? 'Desktop';
        this.#desktops.set(body.device_id, { userId: u.id, name });
        return { status: 200, body: { device_id: body.device_id, device_name: name, status: existing ? 'already_registered' : 'registered', change_token: null } };
      }
      default:
        return null;
    }
  }
}
