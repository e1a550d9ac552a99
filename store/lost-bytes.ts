// A version whose bytes went before the hub wrote them out. The hub acknowledges a peer's version when it has every
// chunk, and some may be held only by a file of its root (the unchanged part of an edited file, the old name of a
// renamed one). Changed or removed on the NAS before the root writer wrote the version, that file takes them along,
// while the peer still has them. So do bytes of a chunk file that no longer match its name: the root writer links small
// files to their chunk files, and a file saved over in place before the chunk file went changed both. Such a version
// becomes 'remote' (on a hub: waiting for a peer to send its bytes again) under a new sequence number, so that the
// change feed tells the peers (FileInfo.incomplete); once every chunk is here again, promoteIfComplete with
// `announce` makes it local under another new sequence number.

import type { Engine } from './engine.ts';
import { readNow, type Tx } from './indexes.ts';
import type { FileRecord } from './records.ts';
import { hasBytes } from './records.ts';
import { readBacking } from './backing.ts';
import { bumpHeat, demote, isEvictionCandidate, putHeat } from './cache-policy.ts';
import { renumber } from './commit.ts';
import { validateName } from './names.ts';
import { isStoreError } from './errors.ts';

/**
 * Where the bytes of `hashes` are recorded but not found: locations whose file no longer holds them, and chunk files
 * whose bytes no longer match their name (a root file linked to one was saved over in place, or the disk rotted).
 */
interface Gone {
  locations: { hash: string; path: string }[];
  files: string[];
}

async function findGone(engine: Engine, hashes: string[]): Promise<Gone> {
  const rows = await engine.idx.getChunks(hashes);
  const gone: Gone = { locations: [], files: [] };
  for (let i = 0; i < hashes.length; i++) {
    const [hash, row] = [hashes[i]!, rows[i]];
    if (!row) continue;
    if (row.present) {
      try {
        await engine.files.read(hash, row.size);
      } catch (err) {
        if (!isStoreError(err, 'corrupt_chunk')) throw err;
        gone.files.push(hash);
      }
    }
    if (!row.locs) continue;
    for (const l of await engine.idx.locationsOf(hash)) {
      if (!(await readBacking(engine, l.path, l.offset, hash, row.size))) gone.locations.push({ hash, path: l.path });
    }
  }
  return gone;
}

/** Forgets what findGone found, in `tx` (whose rows for those hashes are loaded); the chunk files go once it commits. */
function forget(engine: Engine, tx: Tx, gone: Gone): void {
  for (const l of gone.locations) tx.setLocation(l.hash, l.path, undefined);
  for (const hash of gone.files) {
    tx.setChunk(hash, { ...tx.chunk(hash)!, present: false });
    tx.afterCommit(() => engine.writes.unlinkUnheld(hash));
  }
}

/**
 * Reads back every place these chunks' bytes are recorded (chunk files, backing-folder locations) and forgets those
 * that no longer hold them (the watcher would, once it reads a file's change; a commit must not wait for that).
 * Returns the chunks left without bytes.
 */
export async function forgetGoneBytes(engine: Engine, hashes: string[]): Promise<string[]> {
  const distinct = [...new Set(hashes)];
  const gone = await findGone(engine, distinct);
  return engine.track(() =>
    engine.transact(async (tx) => {
      await tx.load(distinct);
      forget(engine, tx, gone);
      return distinct.filter((h) => !hasBytes(tx.chunk(h)));
    }),
  );
}

/**
 * forgetGoneBytes for the chunks of `path`'s `version`; if one is then without bytes, that version (if still
 * current and local) becomes 'remote' under a new sequence number. Chunk files it has stay. Returns the record
 * afterwards.
 */
export async function demoteIfLost(engine: Engine, path: string, version: number): Promise<FileRecord | undefined> {
  validateName(path);
  const rec = await engine.idx.getFile(path);
  if (!rec || rec.version !== version || rec.state !== 'local') return rec;
  const hashes = [...new Set(rec.chunks.map((c) => c.hash))];
  const gone = await findGone(engine, hashes);
  return engine.track(() =>
    engine.transact(async (tx) => {
      await tx.load(hashes);
      forget(engine, tx, gone);
      const now = await engine.idx.getFile(path);
      if (!now || now.version !== version || now.state !== 'local' || now.chunks.every((c) => hasBytes(tx.chunk(c.hash)))) return now;
      const heat = readNow(engine.idx.heat, path);
      const next = renumber(engine, tx, now, demote(engine, tx, now, { keepBytes: true }));
      putHeat(tx, path, heat, heat ?? bumpHeat(undefined, engine.now()), isEvictionCandidate(next));
      return next;
    }),
  );
}
