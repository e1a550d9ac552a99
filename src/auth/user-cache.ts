// The users the Pi knows, in the daemon's LevelDB, sublevel `auth` (JSON values):
//   user!<id>        UserRecord: the user as BaluHost last described it (login, refresh and /auth/me answers; pairing
//                    answers and verified tokens fill in what they carry), or a local user made with `balupi user add`
//   name!<username>  → id
//   tfa!<username>   BaluHost asked this user for a second factor at the last sign-in
//   revoked!<jti>    a refresh token BaluHost called revoked, until it expires (so the Pi does not revive it offline)
// Local users get ids from LOCAL_ID_BASE up: a token the Pi issues for one can never name a BaluHost account.
import type { AbstractLevel } from 'abstract-level';
import type { User } from './tokens.ts';

export const LOCAL_ID_BASE = 1_000_001;

export interface UserRecord {
  id: number;
  username: string;
  role: 'admin' | 'user';
  source: 'baluhost' | 'local';
  /** BaluHost's UserPublic fields as last received (kept as sent; unknown extra fields too). */
  profile: Record<string, unknown>;
  /** scrypt hash (src/auth/passwords.ts): local users always, BaluHost users after a sign-in BaluHost confirmed. */
  passwordHash?: string;
  updatedAt: number;
}

type Json = AbstractLevel<any, string, any>;

const userKey = (id: number) => `user!${String(id).padStart(12, '0')}`;
const asRole = (r: unknown): 'admin' | 'user' | null => (r === 'admin' || r === 'user' ? r : null);

/** BaluHost's UserPublic, in its field order: what /auth/me and the `user` of a token answer carry. */
export function userPublic(r: UserRecord): Record<string, unknown> {
  // BaluHost sends "" when it has no creation time.
  const out: Record<string, unknown> = { username: '', email: null, id: 0, role: 'user', is_active: true, smb_enabled: false, created_at: '', updated_at: null };
  return Object.assign(out, r.profile, { id: r.id, username: r.username, role: r.role });
}

/** What `user list` shows: never the hash. */
export interface UserSummary {
  id: number;
  username: string;
  role: 'admin' | 'user';
  source: 'baluhost' | 'local';
  email: string | null;
  /** Whether this user can sign in at the Pi without the NAS. */
  offline_sign_in: boolean;
}

export function userSummary(r: UserRecord): UserSummary {
  const email = r.profile.email;
  return { id: r.id, username: r.username, role: r.role, source: r.source, email: typeof email === 'string' && email ? email : null, offline_sign_in: !!r.passwordHash };
}

export class UserCache {
  readonly #db: Json;
  readonly #now: () => number;

  constructor(parent: AbstractLevel<any, any, any>, opts: { now?: () => number } = {}) {
    this.#db = parent.sublevel<string, any>('auth', { valueEncoding: 'json' });
    this.#now = opts.now ?? Date.now;
  }

  async get(id: number): Promise<UserRecord | null> {
    return ((await this.#db.get(userKey(id))) as UserRecord | undefined) ?? null;
  }

  async byName(username: string): Promise<UserRecord | null> {
    const id = (await this.#db.get(`name!${username}`)) as number | undefined;
    return id === undefined ? null : this.get(id);
  }

  /**
   * Remembers a user object BaluHost sent (UserPublic from login/refresh/me, or the smaller `user` of a pairing
   * answer). `authoritative`: it is a full UserPublic and replaces what was kept; otherwise it only adds fields.
   * Returns null (and keeps nothing) for objects without a numeric id, a username and a known role.
   */
  async rememberFromBaluHost(user: unknown, authoritative: boolean): Promise<UserRecord | null> {
    if (!user || typeof user !== 'object') return null;
    const u = user as Record<string, unknown>;
    const id = typeof u.id === 'number' && Number.isSafeInteger(u.id) ? u.id : null;
    const role = asRole(u.role);
    if (id === null || typeof u.username !== 'string' || !u.username || !role) return null;
    const old = await this.get(id);
    if (old?.source === 'local') return old;
    const nameOwner = await this.byName(u.username);
    // A local user keeps its name: sign-ins under it are checked locally (README: local users).
    if (nameOwner && nameOwner.id !== id && nameOwner.source === 'local') return null;
    const profile = authoritative ? { ...u } : { ...u, ...old?.profile };
    const rec: UserRecord = { id, username: u.username, role, source: 'baluhost', profile, updatedAt: this.#now() };
    if (old?.passwordHash && old.username === rec.username) rec.passwordHash = old.passwordHash;
    await this.#put(rec, old);
    return rec;
  }

  /** Remembers the user a verified access token names, unless the Pi knows that id already. */
  async rememberFromToken(user: User): Promise<UserRecord> {
    const old = await this.get(user.id);
    if (old) return old;
    const rec: UserRecord = { id: user.id, username: user.username, role: user.role, source: 'baluhost', profile: {}, updatedAt: this.#now() };
    if (!(await this.byName(user.username))) await this.#put(rec, null);
    return rec;
  }

  async setPasswordHash(id: number, hash: string | null): Promise<void> {
    const rec = await this.get(id);
    if (!rec) return;
    if (hash === null) delete rec.passwordHash;
    else rec.passwordHash = hash;
    await this.#db.put(userKey(id), rec);
  }

  async markInactive(id: number): Promise<void> {
    const rec = await this.get(id);
    if (!rec || rec.source === 'local') return;
    rec.profile = { ...rec.profile, is_active: false };
    delete rec.passwordHash;
    await this.#db.put(userKey(id), rec);
  }

  /** BaluHost says the user no longer exists: forget it, its password hash with it. */
  async forget(id: number): Promise<void> {
    const rec = await this.get(id);
    if (!rec || rec.source === 'local') return;
    const ops: { type: 'del'; key: string }[] = [{ type: 'del', key: userKey(id) }];
    if ((await this.#db.get(`name!${rec.username}`)) === id) ops.push({ type: 'del', key: `name!${rec.username}` });
    await this.#db.batch(ops);
  }

  async setTwoFactor(username: string, on: boolean): Promise<void> {
    if (on) await this.#db.put(`tfa!${username}`, true);
    else await this.#db.del(`tfa!${username}`);
  }

  async twoFactor(username: string): Promise<boolean> {
    return (await this.#db.get(`tfa!${username}`)) === true;
  }

  async revoke(jti: string, expSeconds: number): Promise<void> {
    await this.#db.put(`revoked!${jti}`, expSeconds);
  }

  async isRevoked(jti: string): Promise<boolean> {
    return (await this.#db.get(`revoked!${jti}`)) !== undefined;
  }

  /** Drops revocations of tokens that have expired anyway. */
  async pruneRevoked(): Promise<number> {
    const nowS = this.#now() / 1000;
    const dead: string[] = [];
    for await (const [key, exp] of this.#db.iterator({ gte: 'revoked!', lt: 'revoked!\xff' })) {
      if (typeof exp !== 'number' || exp < nowS) dead.push(key);
    }
    if (dead.length) await this.#db.batch(dead.map((key) => ({ type: 'del' as const, key })));
    return dead.length;
  }

  async list(): Promise<UserRecord[]> {
    const out: UserRecord[] = [];
    for await (const rec of this.#db.values({ gte: 'user!', lt: 'user!\xff' })) out.push(rec as UserRecord);
    return out;
  }

  /** Creates a local user; throws UserExistsError if the name is taken (by a local or a known BaluHost user). */
  async addLocal(username: string, role: 'admin' | 'user', passwordHash: string, email: string | null): Promise<UserRecord> {
    if (await this.byName(username)) throw new UserExistsError(username);
    const local = (await this.list()).filter((r) => r.source === 'local');
    const id = Math.max(LOCAL_ID_BASE - 1, ...local.map((r) => r.id)) + 1;
    const now = this.#now();
    const rec: UserRecord = {
      id, username, role, source: 'local', passwordHash, updatedAt: now,
      profile: { username, email, id, role, is_active: true, smb_enabled: false, created_at: new Date(now).toISOString().replace('Z', '+00:00'), updated_at: null },
    };
    await this.#put(rec, null);
    return rec;
  }

  /** Removes a local user; returns it, or null if there is no local user of that name. */
  async removeLocal(username: string): Promise<UserRecord | null> {
    const rec = await this.byName(username);
    if (!rec || rec.source !== 'local') return null;
    await this.#db.batch([{ type: 'del', key: userKey(rec.id) }, { type: 'del', key: `name!${username}` }]);
    return rec;
  }

  async #put(rec: UserRecord, old: UserRecord | null): Promise<void> {
    const ops: ({ type: 'put'; key: string; value: unknown } | { type: 'del'; key: string })[] = [
      { type: 'put', key: userKey(rec.id), value: rec },
      { type: 'put', key: `name!${rec.username}`, value: rec.id },
    ];
    // A renamed user: its old name no longer leads to it.
    if (old && old.username !== rec.username && (await this.#db.get(`name!${old.username}`)) === rec.id) {
      ops.push({ type: 'del', key: `name!${old.username}` });
    }
    await this.#db.batch(ops);
  }
}

export class UserExistsError extends Error {
  override name = 'UserExistsError';
  readonly code = 'user_exists';
  constructor(username: string) {
    super(`a user named "${username}" exists already`);
  }
}
