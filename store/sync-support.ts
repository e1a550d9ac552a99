// What the sync layer needs from the store beyond reading and writing files: a stable id for this index (sequence
// numbers are only comparable within one index), a file's hotness, turning a 'remote' file 'local' once its chunks
// were fetched, walking the records under a directory, reading or leasing a chunk's bytes, holding a chunk file for
// another thread, and marking chunks the hub acknowledged.

import { randomBytes } from 'node:crypto';
import type { Engine } from './engine.ts';
import { readNow } from './indexes.ts';
import type { ChunkRow, FileRecord } from './records.ts';
import { decodeFile, hasBytes } from './records.ts';
import { decayedCount } from './cache-policy.ts';
import { promote, renumber } from './commit.ts';
import { validateDir, validateName } from './names.ts';
import { checkHexHash } from './hasher.ts';
import { StoreError } from './errors.ts';

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
  return decayedCount(readNow(engine.idx.heat, path), engine.now());
}

/**
 * remote -> local for each of `paths` whose current version now has every chunk present (after the sync layer fetched
 * them), all in one index transaction. Not a new version: nothing enters the change feed, unless `announce` (a hub's
 * version that got its lost bytes back, lost-bytes.ts) gives it a new sequence number. Returns each path's record
 * (unchanged if it was local already or is incomplete; undefined if there is none).
 */
export async function promoteIfComplete(engine: Engine, paths: string[], opts: { sync?: boolean; announce?: boolean } = {}): Promise<(FileRecord | undefined)[]> {
  const distinct = [...new Set(paths.map((p) => validateName(p)))];
  return engine.track(() =>
    engine.transact(async (tx) => {
      const out = new Map<string, FileRecord | undefined>();
      for (const path of distinct) {
        const rec = await engine.idx.getFile(path);
        if (rec && rec.state !== 'local' && (await engine.idx.getChunks(rec.chunks.map((c) => c.hash))).every(hasBytes)) {
          const local = await promote(engine, tx, rec);
          out.set(path, opts.announce ? renumber(engine, tx, rec, local) : local);
        } else {
          out.set(path, rec);
        }
      }
      return paths.map((p) => out.get(p));
    }, { sync: opts.sync ?? true }),
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

export type PutOutcome = 'stored' | 'present' | 'rejected';

/**
 * Received buffers already hashed by checkChunk, with the hash they matched. A receiver hashes each chunk as it
 * arrives, while the batch before it is being written; putChunks then does not hash that buffer again (one use).
 */
const checked = new WeakMap<Uint8Array, string>();

/** Whether `data` hashes to `hash`; if so, putChunks takes this very buffer for that hash without hashing it again. */
export async function checkChunk(engine: Engine, hash: string, data: Uint8Array): Promise<boolean> {
  const ok = data.length > 0 && (await engine.files.hashSliced(data)) === hash;
  if (ok) checked.set(data, hash);
  return ok;
}

/**
 * Stores a batch of chunks received from a peer: each is hashed first (unless checkChunk passed that very buffer) and
 * a chunk whose bytes do not match its name is 'rejected' (nothing of it is written); the others are written
 * concurrently (ChunkWrites.writeBatch: the small ones flushed together by one syncfs) and their rows committed in one
 * transaction. Same guarantees as putChunk, a fraction of the flushes. `sync: false` leaves the rows' durability to a
 * later flush() (the chunk files themselves are always fsynced).
 */
export async function putChunks(engine: Engine, chunks: { hash: string; data: Uint8Array }[], opts: { clean?: boolean; sync?: boolean; maxChunkBytes: number }): Promise<PutOutcome[]> {
  for (const c of chunks) checkHexHash(c.hash);
  return engine.track(async () => {
    const out: PutOutcome[] = new Array(chunks.length).fill('rejected');
    const held = [...new Set(chunks.map((c) => c.hash))];
    for (const h of held) engine.holds.acquire(h);
    let reserved = 0;
    try {
      const good = new Map<string, Uint8Array>();
      for (let i = 0; i < chunks.length; i++) {
        const { hash, data } = chunks[i]!;
        if (!(data instanceof Uint8Array) || data.length === 0 || data.length > opts.maxChunkBytes) continue;
        const seen = checked.get(data);
        checked.delete(data);
        if (seen !== hash && (await engine.files.hashSliced(data)) !== hash) continue;
        out[i] = 'stored';
        good.set(hash, data);
      }
      const hashes = [...good.keys()];
      const rows = await engine.idx.getChunks(hashes);
      const toWrite = hashes.filter((_, i) => !hasBytes(rows[i]));
      const bytes = toWrite.reduce((s, h) => s + good.get(h)!.length, 0);
      await engine.reserve(bytes);
      reserved = bytes;
      await engine.writes.writeBatch(toWrite.map((h) => ({ hash: h, data: good.get(h)! })));
      const stored = await engine.transact(async (tx) => {
        await tx.load(toWrite);
        const now = new Set<string>();
        for (const h of toWrite) {
          const row = tx.chunk(h);
          if (hasBytes(row)) continue;
          const size = good.get(h)!.length;
          tx.setChunk(h, row ? { ...row, present: true } : { size, refs: 0, localRefs: 0, present: true, stagedAt: engine.now() });
          if (!row && !opts.clean) tx.setDirty(h, size, true);
          now.add(h);
        }
        return now;
      }, { sync: opts.sync ?? true });
      engine.unreserve(reserved);
      reserved = 0;
      chunks.forEach((c, i) => {
        if (out[i] === 'stored' && !stored.has(c.hash)) out[i] = 'present';
      });
      // A hash listed twice in one batch is stored once: later copies count as present.
      const seen = new Set<string>();
      chunks.forEach((c, i) => {
        if (out[i] === 'stored' && seen.has(c.hash)) out[i] = 'present';
        seen.add(c.hash);
      });
      await engine.maybeEvict();
      return out;
    } finally {
      engine.unreserve(reserved);
      for (const h of held) engine.holds.release(h);
    }
  });
}

/** Store.getChunk, leaseChunk: checks the hash, holds the chunk while `read` runs, refuses a chunk that is not here. */
export async function readPresentChunk<T>(e: Engine, hash: string, read: (row: ChunkRow) => Promise<T>): Promise<T> {
  checkHexHash(hash);
  e.assertOpen();
  e.holds.acquire(hash);
  try {
    const row = await e.idx.getChunk(hash);
    if (!row || !hasBytes(row)) throw new StoreError('not_found', `chunk ${hash} is not in the store`, { details: { hash } });
    return await read(row); // the row goes along: the engine needs it too (where the bytes are)
  } finally {
    e.holds.release(hash);
  }
}

/** Store.holdChunkFile. */
export async function holdChunkFile(e: Engine, hash: string): Promise<{ file: string; size: number; release: () => void } | undefined> {
  checkHexHash(hash);
  e.assertOpen();
  e.holds.acquire(hash);
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    e.holds.release(hash);
  };
  try {
    const row = await e.idx.getChunk(hash);
    if (!row?.present) {
      release();
      return undefined;
    }
    return { file: e.files.pathOf(hash), size: row.size, release };
  } catch (err) {
    release();
    throw err;
  }
}

/** Store.markClean. */
export async function markClean(e: Engine, hashes: string[], opts: { sync?: boolean } = {}): Promise<number> {
  const n = await e.track(() =>
    e.transact(async (tx) => {
      await tx.load(hashes);
      let cleaned = 0;
      for (const h of new Set(hashes)) {
        if (!tx.isDirty(h)) continue;
        tx.setDirty(h, 0, false);
        cleaned += 1;
      }
      return cleaned;
    }, { sync: opts.sync ?? true }),
  );
  await e.maybeEvict();
  return n;
}
