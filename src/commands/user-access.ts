// How `balupi user` reaches the user list: directly (open <dataDir>/db) or, when a running daemon holds that
// LevelDB, through the daemon's local API on <dataDir>/balupi.sock (src/routes/local-users.ts). Same operations
// either way.
import http from 'node:http';
import { join } from 'node:path';
import { ClassicLevel } from 'classic-level';
import { socketPath } from './store-access.ts';
import { UserCache, UserExistsError, userSummary, type UserSummary } from '../auth/user-cache.ts';

export interface UserAccess {
  readonly via: 'direct' | 'daemon';
  add(username: string, role: 'admin' | 'user', passwordHash: string, email: string | null): Promise<UserSummary>;
  list(): Promise<UserSummary[]>;
  /** null: no local user of that name. */
  remove(username: string): Promise<UserSummary | null>;
  close(): Promise<void>;
}

export async function openUserAccess(dataDir: string): Promise<UserAccess> {
  const db = new ClassicLevel<string, string>(join(dataDir, 'db'), { valueEncoding: 'utf8' });
  try {
    await db.open();
  } catch (err) {
    const e = err as { code?: string; cause?: { code?: string } };
    if (e.code !== 'LEVEL_LOCKED' && e.cause?.code !== 'LEVEL_LOCKED') throw err;
    return daemonAccess(socketPath(dataDir), dataDir);
  }
  const users = new UserCache(db);
  return {
    via: 'direct',
    add: async (username, role, hash, email) => userSummary(await users.addLocal(username, role, hash, email)),
    list: async () => (await users.list()).map(userSummary),
    remove: async (username) => {
      const r = await users.removeLocal(username);
      return r && userSummary(r);
    },
    close: () => db.close(),
  };
}

function daemonAccess(sock: string, dataDir: string): UserAccess {
  const call = (method: string, path: string, body?: unknown) =>
    new Promise<{ status: number; body: any }>((resolve, reject) => {
      const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
      const req = http.request({ socketPath: sock, method, path, headers: payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {} }, (res) => {
        const parts: Buffer[] = [];
        res.on('data', (c: Buffer) => parts.push(c));
        res.on('end', () => {
          try {
            resolve({ status: res.statusCode ?? 500, body: JSON.parse(Buffer.concat(parts).toString('utf8')) });
          } catch {
            reject(new Error(`the daemon answered ${res.statusCode} with a body that is not JSON`));
          }
        });
        res.on('error', reject);
      });
      req.on('error', (err: NodeJS.ErrnoException) =>
        reject(new Error(`the user list in ${dataDir} is locked by another process, and no balupi daemon answers on ${sock} (${err.code ?? err.message})`)));
      req.end(payload);
    });
  const fail = (r: { status: number; body: any }) => new Error(r.body?.error?.message ?? `the daemon answered HTTP ${r.status}`);
  return {
    via: 'daemon',
    async add(username, role, hash, email) {
      const r = await call('POST', '/local/users', { username, role, email, password_hash: hash });
      if (r.status === 409) throw new UserExistsError(username);
      if (r.status !== 201) throw fail(r);
      return r.body;
    },
    async list() {
      const r = await call('GET', '/local/users');
      if (r.status !== 200) throw fail(r);
      return r.body.users;
    },
    async remove(username) {
      const r = await call('DELETE', `/local/users/${encodeURIComponent(username)}`);
      if (r.status === 404) return null;
      if (r.status !== 200) throw fail(r);
      return r.body;
    },
    close: async () => {},
  };
}
