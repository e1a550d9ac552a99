// Child process for crash.test.ts: ingests and deletes files in a loop until it is SIGKILLed. Before each operation
// it appends a "begin" line to a journal, after the store returned a "done" line (appendFileSync: the page cache
// survives SIGKILL), so the parent knows what was committed and what was in flight when the kill landed.
//
// usage: node crash-worker.ts <storeDir> <journal>

import fs from 'node:fs';
import { randomBytes, randomInt } from 'node:crypto';
import { Readable } from 'node:stream';
import { blake3, openStore } from '../../store/index.ts';

const [dir, journal] = process.argv.slice(2) as [string, string];
const store = await openStore({ dir, chunkParams: { minSize: 16384, avgSize: 65536, maxSize: 262144 } });
const hasher = blake3();
const log = (entry: object): void => fs.appendFileSync(journal, JSON.stringify(entry) + '\n');
// Shared material so files have chunks in common (refcounts, shared chunks across deletes).
const bases = [randomBytes(1_500_000), randomBytes(800_000)];
const live = new Set<string>();
for await (const e of store.changesSince(0)) {
  if (e.deleted) live.delete(e.path);
  else live.add(e.path);
}
process.stdout.write('ready\n');
for (let n = 0; ; n++) {
  const paths = [...live];
  if (paths.length > 0 && randomInt(10) < 3) {
    const path = paths[randomInt(paths.length)]!;
    log({ op: 'begin', kind: 'delete', path });
    await store.delete(path);
    live.delete(path);
    log({ op: 'done', kind: 'delete', path });
  } else {
    const path = `dir${randomInt(3)}/file${randomInt(8)}.bin`;
    const base = bases[randomInt(bases.length)]!;
    const data = Buffer.concat([base.subarray(0, randomInt(base.length)), randomBytes(randomInt(400_000))]);
    const hash = hasher.hash(data).toString('hex');
    log({ op: 'begin', kind: 'ingest', path, hash });
    const pieces: Buffer[] = [];
    for (let off = 0; off < data.length; off += 65536) pieces.push(data.subarray(off, off + 65536));
    await store.ingest(path, Readable.from(pieces));
    live.add(path);
    log({ op: 'done', kind: 'ingest', path, hash });
  }
  process.stdout.write(`op ${n}\n`);
}
