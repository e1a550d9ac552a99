// What the sync layer needs from the store beyond reading and writing files: a stable id for this index (sequence
// numbers are only comparable within one index), a file's hotness, turning a 'remote' file 'local' once its chunks
// were fetched, and walking the records under a directory.

import { randomBytes } from 'node:crypto';
import type { Engine } from './engine.ts';
import type { FileRecord } from './records.ts';
import { decodeFile } from './records.ts';
import { decayedCount } from './cache-policy.ts';
import { promote } from './commit.ts';
import { validateDir, validateName } from './names.ts';

/** The index id: 8 random bytes as hex, created with the first open that needs it and kept for the store's life. */
export async function loadIndexId(engine: Engine): Promise<string> {
  const existing = await engine.idx.meta.get('indexId');
  if (typeof existing === 'string') return existing;
  const id = randomBytes(8).toString('hex');
  await engine.idx.putMetaSync('indexId', id);
  return id;
}

/** The decayed access count of a path now (0 if never accessed). */
export async function heatOf(engine: Engine, path: string): Promise<number> {
  validateName(path);
  return decayedCount(await engine.idx.heat.get(path), engine.now());
}

/**
 * remote -> local once every chunk of the current version is present (after the sync layer fetched them). Not a new
 * version: nothing enters the change feed. Returns the record, unchanged if it was local already or is incomplete.
 */
export async function promoteIfComplete(engine: Engine, path: string): Promise<FileRecord | undefined> {
  validateName(path);
  return engine.track(() =>
    engine.transact(async (tx) => {
      const rec = await engine.idx.getFile(path);
      if (!rec || rec.state === 'local') return rec;
      const rows = await engine.idx.getChunks(rec.chunks.map((c) => c.hash));
      if (rows.some((r) => !r?.present)) return rec;
      return promote(engine, tx, rec);
    }),
  );
}

/** Live records at `dir` or below it ('' = everything), in path order. */
export async function* filesUnder(engine: Engine, dir: string): AsyncGenerator<FileRecord> {
  const d = validateDir(dir);
  const range = d === '' ? {} : { gte: d + '/', lt: d + '0' };
  if (d !== '') {
    const self = await engine.idx.getFile(d);
    if (self) yield self;
  }
  for await (const [key, j] of engine.idx.files.iterator(range)) yield decodeFile(key, j);
}
