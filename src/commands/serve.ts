// `balupi serve`: runs the daemon until SIGTERM/SIGINT, then shuts down gracefully within 10 s and exits 0.
import { startDaemon } from '../daemon.ts';
import { createLogger } from '../log.ts';
import type { CommandContext } from './context.ts';

/** systemd's default stop timeout is 90 s, but the issue promises 10 s: give in-flight work most of it. */
const SHUTDOWN_LIMIT_MS = 9_500;

export async function serve(ctx: CommandContext): Promise<number> {
  const log = createLogger(ctx.config, ctx.stdout);
  if (ctx.config.configFile) log.info({ file: ctx.config.configFile }, 'configuration file read');
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
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  log.info({ signal }, 'shutting down: no new connections, finishing requests in flight');
  const forced = setTimeout(() => {
    log.warn('shutdown took too long; exiting with requests still open');
    process.exit(0);
  }, SHUTDOWN_LIMIT_MS);
  forced.unref();
  await daemon.close();
  clearTimeout(forced);
  log.info('stopped');
  return 0;
}
