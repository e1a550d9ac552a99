// Recovery after a crash, fsck and gc. The index is the truth: a crash can leave only garbage behind (temp files,
// chunk files no row claims, files of evicted/deleted chunks whose unlink did not happen), never a record pointing
// at missing bytes, because records are committed only after their chunks are durable. Recovery removes that
// garbage; fsck re-hashes every chunk and cross-checks every index; gc removes garbage while the store runs.

import { isLostLocation, type Engine } from './engine.ts';
import type { ChunkRow, Counters } from './records.ts';
import { hasBytes, zeroCounters } from './records.ts';
import { decodeChunk, decodeFile } from './records.ts';
import { isHexHash } from './hasher.ts';
import { isEvictionCandidate } from './cache-policy.ts';
import { isStoreError } from './errors.ts';
import { seqKey } from './indexes.ts';
import fs from 'node:fs/promises';

export interface Problem {
  kind: string;
  path?: string;
  hash?: string;
  detail: string;
}

export interface FsckReport {
  ok: boolean;
  problems: Problem[];
  files: number;
  chunks: number;
  bytesVerified: number;
}

export interface GcReport {
  tempFiles: number;
  orphanFiles: number;
  orphanBytes: number;
  stagedChunks: number;
  stagedBytes: number;
}

const SCAN_BATCH = 512;

/** Chunk files on disk that the index does not want (no row, or a row saying the bytes are gone). */
async function* unwantedChunkFiles(engine: Engine): AsyncGenerator<{ file: string; hash: string | null; size: number }> {
  let batch: { file: string; hash: string | null; size: number }[] = [];
  const flush = async function* (): AsyncGenerator<{ file: string; hash: string | null; size: number }> {
    const named = batch.filter((b) => b.hash !== null);
    const rows = await engine.idx.getChunks(named.map((b) => b.hash!));
    const wanted = new Set(named.filter((_, i) => rows[i]?.present).map((b) => b.hash));
    for (const b of batch) if (!wanted.has(b.hash)) yield b;
    batch = [];
  };
  for await (const entry of engine.files.scan()) {
    batch.push(entry);
    if (batch.length >= SCAN_BATCH) yield* flush();
  }
  yield* flush();
}

/** At open after an unclean shutdown (and always for temp files). No operation is running yet. */
export async function recover(engine: Engine, full: boolean): Promise<{ tempFiles: number; orphanFiles: number }> {
  const temps = await engine.files.cleanTemp();
  let orphanFiles = 0;
  if (full) {
    for await (const f of unwantedChunkFiles(engine)) {
      await fs.rm(f.file, { force: true, recursive: true });
      orphanFiles += 1;
    }
  }
  return { tempFiles: temps.files, orphanFiles };
}

export async function gc(engine: Engine): Promise<GcReport> {
  const report: GcReport = { tempFiles: 0, orphanFiles: 0, orphanBytes: 0, stagedChunks: 0, stagedBytes: 0 };
  await engine.lock.run(async () => {
    engine.assertOpen();
    report.tempFiles = (await engine.files.cleanTemp()).files;
    for await (const f of unwantedChunkFiles(engine)) {
      if (f.hash && (engine.holds.has(f.hash) || engine.writes.isBeingWritten(f.hash))) continue;
      await fs.rm(f.file, { force: true, recursive: true });
      report.orphanFiles += 1;
      report.orphanBytes += f.size;
    }
  });
  // The chunk rows are scanned outside the write lock (a hub's million rows took seconds, and every upload and commit
  // waited); each candidate is checked again under the lock, in the transaction that drops it.
  const cutoff = engine.now() - engine.stagedGraceMs;
  const stale = (row: ChunkRow, hash: string): boolean => row.refs === 0 && (row.stagedAt ?? 0) <= cutoff && !engine.holds.has(hash);
  const candidates: string[] = [];
  await engine.track(async () => {
    for await (const [hash, j] of engine.idx.chunks.iterator()) if (stale(decodeChunk(j), hash)) candidates.push(hash);
  });
  for (let i = 0; i < candidates.length; i += SCAN_BATCH) {
    const part = candidates.slice(i, i + SCAN_BATCH);
    engine.assertOpen();
    await engine.transact(async (tx) => {
      await tx.load(part);
      for (const h of part) {
        const row = tx.chunk(h);
        if (!row || !stale(row, h)) continue;
        await tx.dropLocations(h);
        tx.setChunk(h, undefined);
        report.stagedChunks += 1;
        if (row.present) {
          report.stagedBytes += row.size;
          tx.afterCommit(() => engine.writes.unlinkUnheld(h));
        }
      }
    });
  }
  return report;
}

/**
 * A chunk's backing-folder locations: as many as its row counts, each re-hashed. A file there that no longer holds
 * the bytes is reported (the hub's watcher brings its new version in; until then reads use other places, if any).
 * Returns the bytes verified.
 */
async function checkLocations(engine: Engine, hash: string, row: ChunkRow, add: (p: Problem) => void): Promise<number> {
  const locs = await engine.idx.locationsOf(hash);
  if (locs.length !== (row.locs ?? 0)) add({ kind: 'location', hash, detail: `row counts ${row.locs ?? 0} locations, the index has ${locs.length}` });
  if (row.at && !locs.some((l) => l.path === row.at!.path && l.offset === row.at!.offset)) {
    add({ kind: 'location', hash, detail: `row's hint ${row.at.path} at ${row.at.offset} is not one of its locations` });
  }
  if (locs.length > 0 && engine.backingDir === undefined) {
    add({ kind: 'location', hash, detail: 'the store has locations but no backing folder' });
    return 0;
  }
  let verified = 0;
  for (const l of locs) {
    try {
      await engine.readLocation(l, hash, row.size);
      verified += row.size;
    } catch (err) {
      if (!isLostLocation(err)) throw err;
      add({ kind: 'location', hash, path: l.path, detail: `${l.path} at ${l.offset} no longer holds the chunk: ${(err as Error).message}` });
    }
  }
  return verified;
}

export async function fsck(engine: Engine): Promise<FsckReport> {
  return engine.lock.run(async () => {
    engine.assertOpen();
    const problems: Problem[] = [];
    const add = (p: Problem): void => void problems.push(p);
    const expect = new Map<string, { size: number; refs: number; localRefs: number }>();
    const count: Counters = zeroCounters();
    const idx = engine.idx;
    let maxSeq = 0;
    const seqs = new Map<number, string>();

    // 1. Records: shape, sizes, expected references, change-feed entries, eviction index.
    for (const [sub, deleted] of [
      [idx.files, false],
      [idx.tombs, true],
    ] as const) {
      for await (const [path, j] of sub.iterator()) {
        const r = decodeFile(path, j);
        maxSeq = Math.max(maxSeq, r.seq);
        if (seqs.has(r.seq)) add({ kind: 'change_feed', path, detail: `seq ${r.seq} also used by ${seqs.get(r.seq)}` });
        seqs.set(r.seq, path);
        if (r.deleted !== deleted) add({ kind: 'bad_record', path, detail: `deleted flag ${r.deleted} in the wrong sublevel` });
        if ((await idx.changes.get(seqKey(r.seq))) !== path) add({ kind: 'change_feed', path, detail: `no change entry for seq ${r.seq}` });
        if (deleted) continue;
        count.files += 1;
        count.logicalBytes += r.size;
        if (r.state === 'local') {
          count.localFiles += 1;
          count.localBytes += r.size;
        }
        let sum = 0;
        for (const c of r.chunks) {
          if (!isHexHash(c.hash)) add({ kind: 'bad_record', path, detail: `invalid chunk hash ${JSON.stringify(c.hash)}` });
          sum += c.size;
          const e = expect.get(c.hash) ?? { size: c.size, refs: 0, localRefs: 0 };
          e.refs += 1;
          if (r.state === 'local') e.localRefs += 1;
          if (e.size !== c.size) add({ kind: 'bad_record', path, hash: c.hash, detail: `chunk listed with sizes ${e.size} and ${c.size}` });
          expect.set(c.hash, e);
        }
        if (sum !== r.size) add({ kind: 'size_mismatch', path, detail: `record says ${r.size} bytes, chunks add up to ${sum}` });
        const heat = await idx.heat.get(path);
        if (isEvictionCandidate(r) && (heat?.k === undefined || (await idx.hot.get(heat.k)) !== path)) {
          add({ kind: 'hot_index', path, detail: 'local unpinned file missing from the eviction index' });
        }
      }
    }
    for await (const [key, path] of idx.changes.iterator()) {
      if (seqs.get(Number(key)) !== path) add({ kind: 'change_feed', path, detail: `change entry ${Number(key)} points to no record with that seq` });
    }
    for await (const [key, path] of idx.hot.iterator()) {
      const heat = await idx.heat.get(path);
      if (heat?.k !== key) add({ kind: 'hot_index', path, detail: 'stale eviction-index entry' });
    }

    // 2. Chunk rows against the references, and every present chunk re-hashed from disk.
    let bytesVerified = 0;
    let chunkRows = 0;
    const present = new Set<string>();
    for await (const [hash, j] of idx.chunks.iterator()) {
      const row: ChunkRow = decodeChunk(j);
      chunkRows += 1;
      count.chunks += 1;
      const e = expect.get(hash);
      expect.delete(hash);
      if (!e && row.refs !== 0) add({ kind: 'refcount', hash, detail: `row counts ${row.refs} references, no file has it` });
      if (e && (e.refs !== row.refs || e.localRefs !== row.localRefs)) {
        add({ kind: 'refcount', hash, detail: `row counts ${row.refs}/${row.localRefs} references (all/local), files have ${e.refs}/${e.localRefs}` });
      }
      if (!e && row.refs === 0 && row.stagedAt === undefined) add({ kind: 'refcount', hash, detail: 'unreferenced chunk row that was never staged' });
      if (e && e.size !== row.size) add({ kind: 'size_mismatch', hash, detail: `row says ${row.size} bytes, records say ${e.size}` });
      if (e && e.localRefs > 0 && !hasBytes(row)) add({ kind: 'missing_chunk', hash, detail: 'a local file needs this chunk but it is not present' });
      bytesVerified += await checkLocations(engine, hash, row, add);
      if (!row.present) continue;
      present.add(hash);
      count.storedBytes += row.size;
      try {
        await engine.files.read(hash, row.size, { strict: true });
        bytesVerified += row.size;
      } catch (err) {
        if (!isStoreError(err, 'corrupt_chunk')) throw err;
        add({ kind: 'corrupt_chunk', hash, detail: err.message });
      }
    }
    for await (const key of idx.locs.keys()) {
      const hash = key.slice(0, 64);
      if (!(await idx.chunks.get(hash))) add({ kind: 'location', hash, path: key.slice(64), detail: 'location of a chunk without a row' });
    }
    for (const [hash] of expect) add({ kind: 'missing_chunk', hash, detail: 'referenced by a file but has no chunk row' });

    // 3. Dirty set, counters.
    for await (const [hash, size] of idx.dirty.iterator()) {
      count.dirtyChunks += 1;
      count.dirtyBytes += size;
      if (!(await idx.chunks.get(hash))) add({ kind: 'dirty_set', hash, detail: 'dirty entry without a chunk row' });
    }
    count.seq = engine.counters.seq;
    if (engine.counters.seq < maxSeq) add({ kind: 'counters', detail: `sequence counter ${engine.counters.seq} is below a record's seq ${maxSeq}` });
    for (const k of Object.keys(count) as (keyof Counters)[]) {
      if (count[k] !== engine.counters[k]) add({ kind: 'counters', detail: `${k} is ${engine.counters[k]}, recount gives ${count[k]}` });
    }

    // 4. Disk: files no row wants, temp leftovers.
    for await (const f of unwantedChunkFiles(engine)) {
      if (f.hash && (engine.holds.has(f.hash) || engine.writes.isBeingWritten(f.hash))) continue;
      add({ kind: f.hash ? 'orphan_chunk_file' : 'stray_file', hash: f.hash ?? undefined, detail: f.file });
    }
    for (const t of await engine.files.strayTemps()) add({ kind: 'temp_leftover', detail: t });

    return { ok: problems.length === 0, problems, files: count.files, chunks: chunkRows, bytesVerified };
  });
}
