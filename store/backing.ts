// The store's backing folder (StoreOptions.backingDir; the hub's root): files there may hold chunk bytes in place of
// chunk files, so the hub keeps each byte once. A location (chunk, path, offset) is recorded only while that file
// holds those bytes there: when the hub ingests its own file (ingest's `located`), and once the root writer has
// written a version (noteWritten). When the file at a path stops holding a version, its locations go, and chunks
// other files still need are copied out first. Every read is verified, so a file changed behind the store's back
// costs an error, never wrong bytes.

import type { Engine } from './engine.ts';
import type { Tx } from './indexes.ts';
import type { ChunkRef, FileRecord } from './records.ts';
import { hasBytes } from './records.ts';
import { validateName } from './names.ts';
import { StoreError } from './errors.ts';

/** Where each distinct chunk first occurs in a file. */
export function firstOffsets(chunks: ChunkRef[]): Map<string, number> {
  const out = new Map<string, number>();
  let pos = 0;
  for (const c of chunks) {
    if (!out.has(c.hash)) out.set(c.hash, pos);
    pos += c.size;
  }
  return out;
}

export interface Leaving {
  hash: string;
  size: number;
  /** Where the file at the path held it until now. */
  offset: number;
}

/**
 * The file at `path` in the backing folder stops holding its old version: its locations go. Only where the new
 * version is not on disk yet (a peer's commit, written there later) and has the same chunk at the same offset does
 * a location stay, as it is right both before and after that write. Returns the locations that went while the old
 * file may still be on disk, so that chunks other files still need can be copied out of it (keepBytes).
 */
export function releaseLocations(tx: Tx, path: string, prev: FileRecord, next: FileRecord | undefined, located: boolean): Leaving[] {
  const offsets = next ? firstOffsets(next.chunks) : new Map<string, number>();
  const leaving: Leaving[] = [];
  for (const c of new Set(prev.chunks.map((c) => c.hash))) {
    const offset = tx.location(c, path);
    if (offset === undefined) continue;
    if (!located && offsets.get(c) === offset) continue;
    tx.setLocation(c, path, undefined);
    if (!located) leaving.push({ hash: c, size: tx.chunk(c)!.size, offset });
  }
  return leaving;
}

/**
 * A chunk still referenced whose last location just went gets a chunk file, copied out of the old file while that is
 * still on disk (verified on the way). If the old file was changed behind the store's back, the bytes are gone: the
 * row stays without them, reads of the files that need it fail as corrupt, and fsck reports it.
 */
export async function keepBytes(engine: Engine, tx: Tx, path: string, l: Leaving): Promise<void> {
  const row = tx.chunk(l.hash);
  if (!row || row.present) return;
  if (hasBytes(row) && (await heldElsewhere(engine, tx, path, l.hash, row.size))) return;
  const data = await readBacking(engine, path, l.offset, l.hash, l.size);
  if (!data) return;
  await engine.writes.write(l.hash, data);
  await engine.files.syncDirsOf([l.hash]);
  tx.setChunk(l.hash, { ...row, present: true });
}

export interface WrittenFile {
  path: string;
  version: number;
  /**
   * The file was put at `path` by renaming this file of the backing folder (a staging file, see noteStaged): the
   * locations recorded there go, in the same transaction.
   */
  from?: string;
  /**
   * Read each chunk that still has a chunk file back from the file before that goes (for a file found on disk rather
   * than just written: same size and mtime do not prove the same bytes). A chunk that does not match keeps its file.
   */
  verify?: boolean;
}

/**
 * The backing folder's files at these paths now hold these versions (the root writer wrote them): their chunks are
 * located there from now on and their chunk files go, all in one transaction. Per item: false, changing nothing, if
 * the path is at another version or not local. Resolves once the chunk files are gone, or with `awaitUnlinks: false`
 * once the transaction is durable (the unlinks follow, one at a time: the hub's root writer, whose cursor follows
 * these notes, must not wait for a burst of them).
 */
export async function noteWritten(engine: Engine, items: WrittenFile[], opts: { awaitUnlinks?: boolean } = {}): Promise<boolean[]> {
  for (const it of items) validateName(it.path);
  if (engine.backingDir === undefined) throw new StoreError('invalid_argument', 'this store has no backing folder');
  return engine.track(() =>
    engine.transact(async (tx) => {
      const out: boolean[] = [];
      for (const { path, version, verify, from } of items) {
        const rec = await engine.idx.getFile(path);
        out.push(rec?.version === version && rec.state === 'local');
        if (!out.at(-1)) continue;
        const offsets = firstOffsets(rec!.chunks);
        await tx.load(offsets.keys());
        for (const [hash, offset] of offsets) {
          if (from !== undefined) tx.setLocation(hash, from, undefined);
          const row = tx.chunk(hash)!;
          if (row.present && verify && !(await readBacking(engine, path, offset, hash, row.size))) continue;
          tx.setLocation(hash, path, offset);
          if (!row.present) continue;
          // The unlink runs once the (synced) transaction is durable: no row may still count on the file after a crash.
          tx.setChunk(hash, { ...tx.chunk(hash)!, present: false });
          tx.afterCommit(() => (opts.awaitUnlinks === false ? void engine.writes.unlinkUnheld(hash).catch(() => {}) : engine.writes.unlinkUnheld(hash)));
        }
      }
      return out;
    }),
  );
}

/**
 * Whether another file of the backing folder still holds the chunk (read back). A location counts only while its file
 * holds the bytes, but the store hears of a change some time after it: a file moved away from a path the hub has not
 * yet read as gone still has its location there. Trusted, the leaving file's bytes were dropped, and the chunk
 * with them.
 */
async function heldElsewhere(engine: Engine, tx: Tx, path: string, hash: string, size: number): Promise<boolean> {
  for (const loc of await engine.idx.locationsOf(hash)) {
    if (loc.path === path || tx.location(hash, loc.path) === undefined) continue;
    if (await readBacking(engine, loc.path, loc.offset, hash, size)) return true;
  }
  return false;
}

/** The chunk's bytes if the backing file at `path` holds them at `offset` (verified), else null. */
export async function readBacking(engine: Engine, path: string, offset: number, hash: string, size: number): Promise<Buffer | null> {
  try {
    return await engine.readLocation({ path, offset }, hash, size);
  } catch {
    return null;
  }
}

export interface StagedChunk {
  hash: string;
  size: number;
  /** Where the staging file holds it. */
  offset: number;
}

/**
 * Chunks written (and made durable) at these offsets of a staging file in the backing folder: a file a peer's upload
 * fills for one version of one path, put in place by renaming it once that version is committed (the hub's write-once
 * push). From now on they count as held, like chunks in chunk files: have/want answers so and a resumed upload skips
 * them. A chunk new to the store gets a row as putChunks would give it (unreferenced, staged now: gc drops it and its
 * locations if no commit claims it). Rows are not synced here: the receiver flushes before it acknowledges.
 */
export async function noteStaged(engine: Engine, path: string, chunks: StagedChunk[]): Promise<void> {
  validateName(path);
  if (engine.backingDir === undefined) throw new StoreError('invalid_argument', 'this store has no backing folder');
  await engine.track(() =>
    engine.transact(
      async (tx) => {
        await tx.load(chunks.map((c) => c.hash));
        for (const c of chunks) {
          const row = tx.chunk(c.hash);
          if (row && row.size !== c.size) throw new StoreError('invalid_argument', `chunk ${c.hash} has ${row.size} bytes, not ${c.size}`);
          if (!row) tx.setChunk(c.hash, { size: c.size, refs: 0, localRefs: 0, present: false, stagedAt: engine.now() });
          tx.setLocation(c.hash, path, c.offset);
        }
      },
      { sync: false },
    ),
  );
}

/** Where the backing file at `path` holds each of `hashes` according to the index (undefined: not recorded there). */
export async function locatedAt(engine: Engine, path: string, hashes: string[]): Promise<(number | undefined)[]> {
  const keys = hashes.map((h) => h + path);
  return (await engine.idx.locs.getMany(keys)) as (number | undefined)[];
}

/**
 * Every backing-folder path whose name `matches` (a test on the last path segment) that has locations, with its
 * chunks: one pass over the location keys (for the hub's start-up sweep of staging files).
 */
export async function locatedPaths(engine: Engine, matches: (name: string) => boolean): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  for await (const key of engine.idx.locs.keys()) {
    const path = key.slice(64);
    if (!matches(path.slice(path.lastIndexOf('/') + 1))) continue;
    const list = out.get(path) ?? [];
    list.push(key.slice(0, 64));
    out.set(path, list);
  }
  return out;
}

/**
 * Forgets the locations at `path` of these chunks (its file is gone or no longer wanted). A chunk left without bytes
 * keeps its row: a file that still needs it is missing bytes, which have/want then says, so a peer sends it again.
 */
export async function forgetLocations(engine: Engine, path: string, hashes: string[]): Promise<void> {
  validateName(path);
  await engine.track(() =>
    engine.transact(async (tx) => {
      await tx.load(hashes);
      for (const h of hashes) if (tx.chunk(h)) tx.setLocation(h, path, undefined);
    }),
  );
}
