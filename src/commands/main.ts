// The `balupi` command line: global options (--config, --data-dir), then one sub-command. Configuration is loaded
// here, once, and passed down. User errors (bad settings, bad arguments) print one clear line and exit 2, never a
// stack. Started through src/cli.ts, which turns the compile cache on before this module is loaded.
import { ConfigError, loadConfig } from '../config.ts';
import { UsageError, type CommandContext } from './context.ts';
import { VERSION } from '../version.ts';

type Command = { summary: string; run: (args: string[], ctx: CommandContext) => Promise<number> };

const COMMANDS: Record<string, Command> = {
  serve: {
    summary: 'run the daemon (REST on BALUPI_PORT, gRPC on BALUPI_GRPC_PORT)',
    run: async (_args, ctx) => (await import('./serve.ts')).serve(ctx),
  },
  token: {
    summary: 'print an access token: token --user NAME [--id N] [--user-role admin|user] [--ttl 15m]',
    run: async (args, ctx) => (await import('./token.ts')).token(args, ctx),
  },
  user: {
    summary: 'local users: user add NAME [--admin] [--email E] [--password-stdin] | user list [--json] | user rm NAME',
    run: async (args, ctx) => (await import('./user.ts')).user(args, ctx),
  },
  ...storeCommandEntries(),
  status: {
    summary: 'sync status: hub connection, sequence positions, upload queue, bytes pending [--json]',
    run: async (args, ctx) => (await import('./sync.ts')).status(args, ctx),
  },
  pin: {
    summary: 'keep a file (or every file under a directory) on this disk, fetching its bytes: pin NAME',
    run: async (args, ctx) => (await import('./sync.ts')).pin(args, ctx, true),
  },
  unpin: {
    summary: 'let a pinned file be evicted again: unpin NAME',
    run: async (args, ctx) => (await import('./sync.ts')).pin(args, ctx, false),
  },
  conflicts: {
    summary: 'list resolved sync conflicts and where the losing versions were kept [--json]',
    run: async (args, ctx) => (await import('./sync.ts')).conflicts(args, ctx),
  },
  sync: {
    summary: 'sync --once: one full exchange with the hub, then exit (for scripts) [--json]',
    run: async (args, ctx) => (await import('./sync.ts')).syncCommand(args, ctx),
  },
  'forget-peer': {
    summary: 'on a hub: forget a pi that will not come back, so that versions only it might have sent stop waiting: forget-peer ID [--json]',
    run: async (args, ctx) => (await import('./sync.ts')).forgetPeer(args, ctx),
  },
  version: {
    summary: 'print the version (also --version, -V)',
    run: async (_args, ctx) => {
      ctx.stdout.write(`balupi ${VERSION}\n`);
      return 0;
    },
  },
};

/** The store's commands (ingest, cat, ls, rm, fsck, gc, stats) run on the data directory, or through the daemon's
 *  local API when a running daemon holds it. */
function storeCommandEntries(): Record<string, Command> {
  const summaries: Record<string, string> = {
    ingest: 'store files: ingest PATH... [--as NAME] [--json]',
    cat: 'write a stored file to stdout: cat NAME',
    ls: 'list a stored directory: ls [DIR] [--json]',
    rm: 'delete a stored file: rm NAME [--json]',
    fsck: 're-hash every chunk and check every reference [--json]',
    gc: 'remove unreferenced chunks and leftovers [--json]',
    stats: 'files, bytes, chunks, dedup ratio, dirty bytes, budget use [--json]',
  };
  return Object.fromEntries(
    Object.entries(summaries).map(([name, summary]) => [
      name,
      {
        summary,
        run: async (args: string[], ctx: CommandContext) => {
          const { storeCommands } = await import('./store.ts');
          return storeCommands[name]!(args, { dataDir: ctx.config.dataDir, cacheMaxBytes: ctx.config.cacheMaxBytes, stdout: ctx.stdout, stderr: ctx.stderr });
        },
      },
    ]),
  );
}

function help(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  return [
    `balupi ${VERSION}: cache, sync peer and energy monitor in front of the BaluHost NAS`,
    '',
    'usage: balupi [--config FILE] [--data-dir DIR] [--role pi|hub] [--root DIR] <command> [options]',
    '',
    ...Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`),
    '',
    'Settings come from BALUPI_* environment variables or a YAML file; see README.md.',
  ].join('\n');
}

const GLOBAL_VALUE_OPTIONS = { '--config': 'config', '--data-dir': 'dataDir', '--role': 'role', '--root': 'root' } as const;

/** Splits the global options off (wherever they stand) and turns them into BALUPI_* overrides, so that config.ts
 *  stays the one reader of settings. Everything else is left, in order, for the sub-command. */
function globalOptions(argv: string[], env: NodeJS.ProcessEnv) {
  const found: Partial<Record<'config' | 'dataDir' | 'role' | 'root', string>> = {};
  const rest: string[] = [];
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      rest.push(...argv.slice(i));
      break;
    }
    const [flag, inline] = arg.startsWith('--') && arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const key = GLOBAL_VALUE_OPTIONS[flag as keyof typeof GLOBAL_VALUE_OPTIONS];
    if (key) {
      const value = inline ?? argv[++i];
      if (value === undefined) throw new UsageError(`${flag} needs a value`);
      found[key] = value;
    } else if (arg === '--help' || arg === '-h') {
      help = true;
    } else {
      rest.push(arg);
    }
  }
  const overrides: NodeJS.ProcessEnv = { ...env };
  if (found.dataDir !== undefined) overrides.BALUPI_DATA_DIR = found.dataDir;
  if (found.role !== undefined) overrides.BALUPI_ROLE = found.role;
  if (found.root !== undefined) overrides.BALUPI_HUB_ROOT = found.root;
  return { env: overrides, configFile: found.config, help, rest };
}

export async function main(argv: string[], io = { stdout: process.stdout, stderr: process.stderr, env: process.env }): Promise<number> {
  let parsed;
  try {
    parsed = globalOptions(argv, io.env);
  } catch (err) {
    io.stderr.write(`balupi: ${(err as Error).message}\n`);
    return 2;
  }
  const [first, ...args] = parsed.rest;
  // `--version` and `-V` as most command lines take them, in the command's place
  const name = first === '--version' || first === '-V' ? 'version' : first;
  if (!name || parsed.help || name === 'help') {
    (name && name !== 'help' ? io.stderr : io.stdout).write(help() + '\n');
    return name || parsed.help ? 0 : 2;
  }
  const command = COMMANDS[name];
  if (!command) {
    io.stderr.write(`balupi: unknown command "${name}"\n\n${help()}\n`);
    return 2;
  }
  try {
    const config = loadConfig(parsed.env, parsed.configFile);
    return await command.run(args, { config, stdout: io.stdout, stderr: io.stderr });
  } catch (err) {
    if (err instanceof ConfigError || err instanceof UsageError || (err as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      io.stderr.write(`balupi: ${(err as Error).message}\n`);
      return 2;
    }
    throw err;
  }
}

