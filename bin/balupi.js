#!/usr/bin/env -S node --max-semi-space-size=1
// The daemon and CLI are TypeScript run by Node 24's type stripping. If this shim was started by an older
// system Node (e.g. `./node_modules/.bin/balupi` outside npm), re-run it under the project's own Node 24.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { existsSync } from 'node:fs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(root, 'src', 'cli.ts');
const major = Number(process.versions.node.split('.')[0]);
if (major >= 24) {
  const { main } = await import(cli);
  process.exitCode = await main(process.argv.slice(2));
} else {
  const own = join(root, 'node_modules', 'node', 'bin', 'node');
  if (!existsSync(own)) {
    console.error(`balupi needs Node 24 (this is ${process.version}); run \`npm ci\` in ${root} first`);
    process.exit(1);
  }
  // the same Node options as the shebang (src/node-flags.ts says why)
  const r = spawnSync(own, ['--max-semi-space-size=1', cli, ...process.argv.slice(2)], { stdio: 'inherit' });
  process.exit(r.status ?? 1);
}
