// What the store lists: a directory's entries, and the change feed (the records changed after a sequence number,
// then, followed, every later change as it is committed).

import type { Engine } from './engine.ts';
import type { FileRecord, FileState } from './records.ts';
import { decodeFile } from './records.ts';
import { seqKey } from './indexes.ts';
import { validateDir } from './names.ts';
import { StoreError } from './errors.ts';

export interface DirEntry {
  name: string;
  path: string;
  type: 'file' | 'dir';
  size?: number;
  mtimeMs?: number;
  mode?: number;
  hash?: string;
  sha256?: string | null;
  version?: number;
  state?: FileState;
  pinned?: boolean;
}

/** A file's entry in a listing, under `name`. */
const fileEntry = (name: string, r: FileRecord): DirEntry => ({
  name,
  path: r.path,
  type: 'file',
  size: r.size,
  mtimeMs: r.mtimeMs,
  mode: r.mode,
  hash: r.hash,
  sha256: r.sha256,
  version: r.version,
  state: r.state,
  pinned: r.pinned,
});

/** Immediate children of a directory ('' = root), files and sub-directories, in name order. */
export async function listDir(engine: Engine, dir?: string): Promise<DirEntry[]> {
  const d = validateDir(dir);
  const prefix = d === '' ? '' : d + '/';
  // '0' is the character after '/', so [d/, d0) is exactly the keys under d/.
  const it = engine.idx.files.iterator(d === '' ? {} : { gte: prefix, lt: d + '0' });
  const out: DirEntry[] = [];
  try {
    for (;;) {
      const entry = await it.next();
      if (!entry) break;
      const [key, j] = entry;
      const rest = key.slice(prefix.length);
      const slash = rest.indexOf('/');
      if (slash < 0) {
        out.push(fileEntry(rest, decodeFile(key, j)));
      } else {
        const name = rest.slice(0, slash);
        out.push({ name, path: prefix + name, type: 'dir' });
        it.seek(prefix + name + '0'); // skip the whole sub-tree
      }
    }
  } finally {
    await it.close();
  }
  if (d !== '' && out.length === 0) {
    const r = await engine.idx.getFile(d);
    if (!r) throw new StoreError('not_found', `no such directory: ${d}`, { details: { path: d } });
    out.push(fileEntry(d.slice(d.lastIndexOf('/') + 1), r));
  }
  return out;
}

/** Records (live and tombstones) changed after `seq`, in seq order; a consistent snapshot. */
export async function* changesSince(engine: Engine, seq: number): AsyncGenerator<FileRecord> {
  const idx = engine.idx;
  const snapshot = idx.snapshot();
  try {
    for await (const [key, path] of idx.changes.iterator({ gt: seqKey(Math.max(0, seq)), snapshot })) {
      const s = Number(key);
      const r = (await idx.getFile(path, snapshot)) ?? (await idx.getTomb(path, snapshot));
      if (r && r.seq === s) yield r;
    }
  } finally {
    await snapshot.close();
  }
}

/** changesSince(seq), then every later change as it is committed, until `signal` aborts or the store closes. */
export async function* followChanges(engine: Engine, seq: number, opts: { signal?: AbortSignal } = {}): AsyncGenerator<FileRecord> {
  const events = engine.events;
  let last = seq;
  while (!opts.signal?.aborted && !engine.closing) {
    let wake!: () => void;
    const woken = new Promise<void>((resolve) => (wake = resolve));
    events.on('change', wake);
    events.on('close', wake);
    opts.signal?.addEventListener('abort', wake, { once: true });
    try {
      for await (const r of changesSince(engine, last)) {
        yield r;
        last = r.seq;
      }
      if (last >= engine.counters.seq) await woken;
    } catch (err) {
      if (engine.closing) return; // the database went away under the iterator: the follow simply ends
      throw err;
    } finally {
      events.off('change', wake);
      events.off('close', wake);
      opts.signal?.removeEventListener('abort', wake);
    }
  }
}
