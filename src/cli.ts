// The `balupi` entry point. It only sets what must be set before anything else loads, then loads the command line
// (commands/main.ts) dynamically: modules imported statically here would be compiled before this module's first line
// runs, outside the compile cache.
import { enableCompileCache } from 'node:module';

// The daemon's disk work (O_DSYNC chunk writes, fsyncs, LevelDB reads and writes) all runs on libuv's thread pool. With
// its default of 4 threads a few fsyncs in flight stall every index read queued behind them (sync of many small files
// measured ~20 % faster with 16). Read by libuv at the pool's first use, which comes after this line.
process.env.UV_THREADPOOL_SIZE ??= '16';

// Most of a start is compiling the daemon's modules (type stripping included): Node's compile cache (in the OS temp
// directory, keyed by content) keeps the compiled code between starts. With it on before the command line's modules
// load (config.ts and yaml included), a daemon is listening ~0.1 s sooner than when it was turned on after them
// (bench/SYNC-RESULTS.md, sixth round). A cache that cannot be written is skipped silently.
enableCompileCache();

export async function main(argv: string[]): Promise<number> {
  return (await import('./commands/main.ts')).main(argv);
}

if (import.meta.main) {
  process.exitCode = await main(process.argv.slice(2));
}
