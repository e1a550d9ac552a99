// `balupi user add NAME [--admin] [--email E] [--password-stdin]`, `user list [--json]`, `user rm NAME`: local users,
// who sign in at the Pi without a NAS (and keep their name even when one is configured). The password is read from
// stdin (one line; a terminal gets a prompt without echo) and only its scrypt hash is stored.
import { parseArgs } from 'node:util';
import { hashPassword, passwordProblem, usernameProblem } from '../auth/passwords.ts';
import { UserExistsError } from '../auth/user-cache.ts';
import { openUserAccess } from './user-access.ts';
import { UsageError, type CommandContext } from './context.ts';

export interface UserIo {
  stdin: NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (on: boolean) => unknown };
}

export async function user(args: string[], ctx: CommandContext, io: UserIo = { stdin: process.stdin }): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === 'add') return add(rest, ctx, io);
  if (sub === 'list' || sub === 'ls') return list(rest, ctx);
  if (sub === 'rm' || sub === 'remove') return remove(rest, ctx);
  throw new UsageError('user needs a sub-command: add NAME [--admin] [--email E] [--password-stdin] | list [--json] | rm NAME');
}

async function add(args: string[], ctx: CommandContext, io: UserIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { admin: { type: 'boolean', default: false }, email: { type: 'string' }, 'password-stdin': { type: 'boolean', default: false } },
  });
  const [name, ...extra] = positionals;
  if (!name || extra.length) throw new UsageError('user add needs exactly one NAME');
  const nameProblem = usernameProblem(name);
  if (nameProblem) throw new UsageError(`user name "${name}" ${nameProblem}`);
  const password = await readPassword(io, ctx, values['password-stdin']);
  const problem = passwordProblem(password);
  if (problem) throw new UsageError(`the password ${problem}`);
  const access = await openUserAccess(ctx.config.dataDir);
  try {
    const u = await access.add(name, values.admin ? 'admin' : 'user', await hashPassword(password), values.email ?? null);
    ctx.stdout.write(`added ${u.role} "${u.username}" (id ${u.id})${access.via === 'daemon' ? ' through the running daemon' : ''}\n`);
    return 0;
  } catch (err) {
    if (err instanceof UserExistsError) {
      ctx.stderr.write(`balupi: ${err.message}\n`);
      return 1;
    }
    throw err;
  } finally {
    await access.close();
  }
}

async function list(args: string[], ctx: CommandContext): Promise<number> {
  const { values } = parseArgs({ args, options: { json: { type: 'boolean', default: false } } });
  const access = await openUserAccess(ctx.config.dataDir);
  try {
    const users = await access.list();
    if (values.json) {
      ctx.stdout.write(JSON.stringify({ users }, null, 2) + '\n');
      return 0;
    }
    if (!users.length) ctx.stdout.write('no users yet (balupi user add NAME)\n');
    for (const u of users) {
      const offline = u.source === 'local' ? '' : u.offline_sign_in ? '  signs in while the NAS sleeps' : '  needs the NAS to sign in';
      ctx.stdout.write(`${String(u.id).padStart(8)}  ${u.username.padEnd(24)} ${u.role.padEnd(6)} ${u.source}${offline}\n`);
    }
    return 0;
  } finally {
    await access.close();
  }
}

async function remove(args: string[], ctx: CommandContext): Promise<number> {
  const { positionals } = parseArgs({ args, allowPositionals: true, options: {} });
  if (positionals.length !== 1) throw new UsageError('user rm needs exactly one NAME');
  const access = await openUserAccess(ctx.config.dataDir);
  try {
    const u = await access.remove(positionals[0]!);
    if (!u) {
      ctx.stderr.write(`balupi: no local user named "${positionals[0]}"\n`);
      return 1;
    }
    ctx.stdout.write(`removed "${u.username}" (id ${u.id}); tokens issued to it are refused from now on at refresh\n`);
    return 0;
  } finally {
    await access.close();
  }
}

/** One line from stdin; on a terminal (without --password-stdin) a prompt on stderr, typed characters not echoed. */
async function readPassword(io: UserIo, ctx: CommandContext, fromStdin: boolean): Promise<string> {
  const { stdin } = io;
  if (stdin.isTTY && !fromStdin && stdin.setRawMode) {
    ctx.stderr.write('Password: ');
    stdin.setRawMode(true);
    try {
      let typed = '';
      for await (const chunk of stdin) {
        for (const ch of chunk.toString()) {
          if (ch === '\r' || ch === '\n') return typed;
          if (ch === '\u0003') throw new UsageError('cancelled');
          if (ch === '\u007f') typed = typed.slice(0, -1);
          else typed += ch;
        }
      }
      return typed;
    } finally {
      stdin.setRawMode(false);
      ctx.stderr.write('\n');
    }
  }
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of stdin) {
    const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk);
    size += b.length;
    if (size > 4096) throw new UsageError('the password on stdin is longer than 4096 bytes');
    parts.push(b);
  }
  const text = Buffer.concat(parts).toString('utf8');
  const line = text.split(/\r?\n/)[0] ?? '';
  if (!line) throw new UsageError('no password on stdin (pipe it in, e.g. printf %s "$PW" | balupi user add NAME --password-stdin)');
  return line;
}
