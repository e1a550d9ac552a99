// `balupi token --user NAME`: prints an access token of BaluHost's shape, signed with the configured or generated
// JWT secret, so a newcomer can call the API at once (curl -H "Authorization: Bearer $(balupi token --user me)").
import { parseArgs } from 'node:util';
import { loadSecrets } from '../auth/secrets.ts';
import { TokenVerifier, parseDuration } from '../auth/tokens.ts';
import { UsageError, type CommandContext } from './context.ts';

export async function token(args: string[], ctx: CommandContext): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      user: { type: 'string' },
      id: { type: 'string', default: '1' },
      'user-role': { type: 'string', default: 'admin' },
      ttl: { type: 'string', default: '15m' },
    },
  });
  if (!values.user) throw new UsageError('token needs --user NAME');
  if (!/^\d+$/.test(values.id)) throw new UsageError(`--id must be a numeric user id, not "${values.id}"`);
  const role = values['user-role'];
  if (role !== 'admin' && role !== 'user') throw new UsageError(`--user-role must be admin or user, not "${role}"`);
  let ttl: number;
  try {
    ttl = parseDuration(values.ttl);
  } catch (err) {
    throw new UsageError(`--ttl: ${(err as Error).message}`);
  }
  const secrets = await loadSecrets(ctx.config.dataDir, ctx.config);
  const jwt = await new TokenVerifier(secrets.jwtSecret).issueAccess({ id: Number(values.id), username: values.user, role }, ttl);
  ctx.stdout.write(jwt + '\n');
  return 0;
}
