// Local users over the daemon's unix socket <dataDir>/balupi.sock, for `balupi user add|list|rm` while the daemon
// holds the LevelDB lock. The CLI hashes the password itself: only the hash crosses the socket.
import type { FastifyPluginAsync } from 'fastify';
import { UserExistsError, userSummary, type UserCache } from '../auth/user-cache.ts';

export interface LocalUserRoutesOptions {
  users: UserCache;
}

export const localUserRoutes: FastifyPluginAsync<LocalUserRoutesOptions> = async (app, { users }) => {
  app.get('/local/users', async () => ({ users: (await users.list()).map(userSummary) }));

  app.post<{ Body: { username: string; role: 'admin' | 'user'; email: string | null; password_hash: string } }>('/local/users', {
    schema: {
      body: {
        type: 'object',
        required: ['username', 'role', 'password_hash'],
        properties: {
          username: { type: 'string' },
          role: { enum: ['admin', 'user'] },
          email: { type: ['string', 'null'] },
          password_hash: { type: 'string', pattern: '^scrypt\\$' },
        },
      },
    },
  }, async (req, reply) => {
    try {
      const rec = await users.addLocal(req.body.username, req.body.role, req.body.password_hash, req.body.email ?? null);
      return reply.code(201).send(userSummary(rec));
    } catch (err) {
      if (err instanceof UserExistsError) return reply.code(409).send({ error: { code: err.code, message: err.message } });
      throw err;
    }
  });

  app.delete<{ Params: { name: string } }>('/local/users/:name', async (req, reply) => {
    const rec = await users.removeLocal(req.params.name);
    if (!rec) return reply.code(404).send({ error: { code: 'not_found', message: `no local user named "${req.params.name}"` } });
    return userSummary(rec);
  });
};
