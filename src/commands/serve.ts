// `balupi serve`: runs the daemon until SIGTERM/SIGINT, then shuts down gracefully within 10 s and exits 0. An
// unexpected error (a defect) shuts it down the same way and exits 1.
import { startDaemon } from '../daemon.ts';
import { createLogger } from '../log.ts';
import { missingNodeFlags } from '../node-flags.ts';
import type { CommandContext } from './context.ts';

/** systemd's default stop timeout is 90 s, but the issue promises 10 s: give in-flight work most of it. */
const SHUTDOWN_LIMIT_MS = 9_500;

export async function serve(ctx: CommandContext): Promise<number> {
  const log = createLogger(ctx.config, ctx.stdout);
  if (ctx.config.configFile) log.info({ file: ctx.config.configFile }, 'configuration file read');
  const missing = missingNodeFlags();
  if (missing.length > 0) log.warn({ missing }, 'node started without the options balupi is meant to run with (see src/node-flags.ts): transfers use more CPU');
  let daemon;
  try {
    daemon = await startDaemon(ctx.config, log);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    // Listening and data-directory problems are the user's to fix: say which, without a stack.
    if (e.code === 'EADDRINUSE' || e.code === 'EACCES' || e.code === 'EADDRNOTAVAIL' || e.code === 'LEVEL_DATABASE_NOT_OPEN') {
      const cause = (e.cause as Error | undefined)?.message;
      ctx.stderr.write(`balupi: cannot start: ${e.message}${cause ? ` (${cause})` : ''}\n`);
      return 1;
    }
    throw err;
  }
  const stop = await new Promise<{ signal: NodeJS.Signals } | { fatal: unknown }>((resolve) => {
    process.once('SIGTERM', () => resolve({ signal: 'SIGTERM' }));
    process.once('SIGINT', () => resolve({ signal: 'SIGINT' }));
    // A defect that leaves a rejection unhandled or an exception uncaught: say what it was in the log, close the
    // listeners and the store in order (instead of Node's default exit in the middle of whatever was being written),
    // and exit 1 so that systemd (Restart=on-failure) starts a fresh process. Later ones during the shutdown are only
    // logged.
    let failed = false;
    const fatal = (err: unknown) => {
      if (failed) return void log.error({ err }, 'another unexpected error while shutting down');
      failed = true;
      resolve({ fatal: err });
    };
    process.on('unhandledRejection', fatal);
    process.on('uncaughtException', fatal);
  });
  const code = 'fatal' in stop ? 1 : 0;
  if ('fatal' in stop) log.fatal({ err: stop.fatal }, 'unexpected error (a defect): shutting down');
  else log.info({ signal: stop.signal }, 'shutting down: no new connections, finishing requests in flight');
  const forced = setTimeout(() => {
    log.warn('shutdown took too long; exiting with requests still open');
    process.exit(code);
  }, SHUTDOWN_LIMIT_MS);
  forced.unref();
  await daemon.close();
  clearTimeout(forced);
  log.info('stopped');
  return code;
}
