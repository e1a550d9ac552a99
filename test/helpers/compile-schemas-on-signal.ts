// Preloaded (--import) into a daemon process by a test: SIGUSR2 compiles every route schema the daemon's apps have
// deferred (src/http/lazy-schemas.ts) and reports the outcome as a JSON log line on stdout. It shares the daemon's
// module instance of lazy-schemas.ts; nothing of the daemon is replaced.
import { compileAllPending } from '../../src/http/lazy-schemas.ts';

process.on('SIGUSR2', () => {
  try {
    process.stdout.write(`${JSON.stringify({ msg: 'route schemas compiled', count: compileAllPending() })}\n`);
  } catch (err) {
    process.stdout.write(`${JSON.stringify({ msg: 'route schema does not compile', error: (err as Error).message })}\n`);
  }
});
