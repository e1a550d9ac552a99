// `npm run bench`: runs every benchmark in bench/ one after another (each prints its figures and its ratio against
// a baseline measured in the same run). `npm run bench -- store` runs only bench/store.ts.
import { readdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

const dir = new URL('.', import.meta.url).pathname;
const only = process.argv.slice(2);
const benches = readdirSync(dir)
  .filter((f) => f.endsWith('.ts') && f !== 'run.ts' && !f.startsWith('_'))
  .filter((f) => only.length === 0 || only.includes(f.replace(/\.ts$/, '')));
if (benches.length === 0) {
  console.error(only.length ? `no benchmark named ${only.join(', ')} in bench/` : 'no benchmarks in bench/');
  process.exit(1);
}
let failed = 0;
for (const f of benches) {
  console.log(`\n=== bench/${f}`);
  const r = spawnSync(process.execPath, ['--expose-gc', dir + f], { stdio: 'inherit' });
  if (r.status !== 0) failed++;
}
process.exit(failed ? 1 : 0);
