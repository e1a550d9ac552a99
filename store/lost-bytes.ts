// A version whose bytes went before the hub wrote them out. The hub acknowledges a peer's version when it has every
// chunk, and some may be held only by a file of its root (the unchanged part of an edited file, the old name of a
// renamed one). Changed or removed on the NAS before the root writer wrote the version, that file takes them along,
// while the peer still has them. Such a version becomes 'remote' — on a hub: waiting for a peer to send its bytes
// again — under a new sequence number, so that the change feed tells the peers (FileInfo.incomplete); once every chunk
// is here again, promoteIfComplete with `announce` makes it local under another new sequence number.

import type { Engine } from './engine.ts';
import { readNow } from './indexes.ts';
import type { FileRecord } from './records.ts';
import { hasBytes } from './records.ts';
import { readBacking } from './backing.ts';
import { bumpHeat, isEvictionCandidate, putHeat } from './cache-policy.ts';
import { renumber } from './commit.ts';
import { validateName } from './names.ts';

/** Locations of `hashes` (chunks without a chunk file) whose backing file no longer holds the bytes there. */
async function staleLocations(engine: Engine, hashes: string[]): Promise<{ hash: string; path: string }[]> {
  const rows = await engine.idx.getChunks(hashes);
  const stale: { hash: string; path: string }[] = [];
  for (let i = 0; i < hashes.length; i++) {
    const row = rows[i];
    if (!row || row.present || !row.locs) continue;
    for (const l of await engine.idx.locationsOf(hashes[i]!)) {
      if (!(await readBacking(engine, l.path, l.offset, hashes[i]!, row.size))) stale.push({ hash: hashes[i]!, path: l.path });
    }
  }
  return stale;
}

/**
 * Reads back every backing-folder location of these chunks that have no chunk file and forgets those that no longer
 * hold their bytes (the watcher would, once it reads the file's change; a commit must not wait for that). Returns the
 * chunks left without bytes.
 */
export async function forgetStaleLocations(engine: Engine, hashes: string[]): Promise<string[]> {
  const distinct = [...new Set(hashes)];
  const stale = await staleLocations(engine, distinct);
  return engine.track(() =>
    engine.transact(async (tx) => {
      await tx.load(distinct);
      for (const s of stale) tx.setLocation(s.hash, s.path, undefined);
      return distinct.filter((h) => !hasBytes(tx.chunk(h)));
    }),
  );
}

/**
 * forgetStaleLocations for the chunks of `path`'s `version`; if one is then without bytes, that version (if still
 * current and local) becomes 'remote' under a new sequence number. Chunk files it has stay. Returns the record
 * afterwards.
 */
export async function demoteIfLost(engine: Engine, path: string, version: number): Promise<FileRecord | undefined> {
  validateName(path);
  const rec = await engine.idx.getFile(path);
  if (!rec || rec.version !== version || rec.state !== 'local') return rec;
  const hashes = [...new Set(rec.chunks.map((c) => c.hash))];
  const stale = await staleLocations(engine, hashes);
  return engine.track(() =>
    engine.transact(async (tx) => {
      await tx.load(hashes);
      for (const s of stale) tx.setLocation(s.hash, s.path, undefined);
      const now = await engine.idx.getFile(path);
      if (!now || now.version !== version || now.state !== 'local' || now.chunks.every((c) => hasBytes(tx.chunk(c.hash)))) return now;
      for (const c of now.chunks) {
        const row = tx.chunk(c.hash)!;
        row.localRefs -= 1;
        tx.setChunk(c.hash, row);
      }
      tx.counters.localFiles -= 1;
      tx.counters.localBytes -= now.size;
      const heat = readNow(engine.idx.heat, path);
      const next = renumber(engine, tx, now, { ...now, state: 'remote' });
      putHeat(tx, path, heat, heat ?? bumpHeat(undefined, engine.now()), isEvictionCandidate(next));
      return next;
    }),
  );
}
