// Node/V8 options the daemon is meant to run with. They must be given when the process starts (V8 sizes its heap
// then; v8.setFlagsFromString afterwards has no effect), so every launcher spells them out: bin/balupi.js (shebang and
// re-run), `npm start`, deploy/balupi.service, the test and bench helpers. test/node-flags.test.ts keeps them in step.
//
// --max-semi-space-size=1 (MiB): Node's HTTP/2 session hands every socket read to JavaScript in a new buffer. They die
// at once, but their memory is only returned by the next young-generation GC; with V8's default young generation
// (up to 16 MiB per semi-space) those come seldom while a chunk stream allocates little else, so the dead buffers pile
// up as external memory and V8 answers with full mark-compacts: ~30 per GB received. With 1 MiB, cheap scavenges
// return them first: a pull of 1 GB took 5.7-6.3 s instead of 7.0-8.2 s, the pi's GC threads 0.9-1.1 s of CPU
// instead of 2.0-2.4 s (bench/SYNC-RESULTS.md, fourth round).
export const NODE_FLAGS = ['--max-semi-space-size=1'] as const;

/** The flags of NODE_FLAGS this process was started without (on the command line or in NODE_OPTIONS). */
export function missingNodeFlags(execArgv: readonly string[] = process.execArgv, nodeOptions = process.env.NODE_OPTIONS ?? ''): string[] {
  const given = [...execArgv, ...nodeOptions.split(/\s+/)];
  return NODE_FLAGS.filter((f) => !given.includes(f));
}
