// Recursive folder sizes for listings (BaluHost's FileItem.size of a directory is `get_folder_size`, a walk of the
// whole subtree on every listing). Here a folder's size and latest change are computed once, by one range scan over
// the store's records below it, and then kept exact by the store's change events: every committed version adds its
// size and subtracts the size of the version it replaced at each cached ancestor. A listing therefore costs a scan
// only for folders not seen since the daemon started (or pushed out of the cache); after that it is a map lookup.
//
// Bounds: at most MAX_ENTRIES folders are cached (least recently used go first); memory is a few hundred bytes each.
// The first listing of a huge tree still scans it once (BaluHost scans it every time). A scan that overlaps a change
// below its folder is used for that one answer but not cached, so the cache never holds a stale sum.

import type { FileRecord, Store } from '../../store/index.ts';
import { parentOf } from './paths.ts';

export interface FolderFacts {
  /** Bytes of every file below. */
  size: number;
  /** Latest modification below: newest file mtime or the time of the newest change (a deletion included). */
  mtimeMs: number;
}

const MAX_ENTRIES = 4096;

export class FolderSizes {
  private readonly store: Store;
  private readonly cache = new Map<string, FolderFacts>();
  /** Folders being scanned now -> set when a change below them arrives during the scan. */
  private readonly scanning = new Map<string, { changed: boolean }[]>();
  private readonly onChange: (rec: FileRecord, prev?: FileRecord) => void;

  constructor(store: Store) {
    this.store = store;
    this.onChange = (rec, prev) => this.apply(rec, prev);
    store.on('change', this.onChange);
  }

  close(): void {
    this.store.off('change', this.onChange);
  }

  /** Size and latest change of everything below `dir` ('' = the whole store). */
  async get(dir: string): Promise<FolderFacts> {
    const hit = this.cache.get(dir);
    if (hit) {
      // Re-insert: Map order is the LRU order.
      this.cache.delete(dir);
      this.cache.set(dir, hit);
      return { ...hit };
    }
    const mark = { changed: false };
    const marks = this.scanning.get(dir) ?? [];
    marks.push(mark);
    this.scanning.set(dir, marks);
    const facts: FolderFacts = { size: 0, mtimeMs: 0 };
    try {
      for await (const r of this.store.filesUnder(dir)) {
        if (r.path === dir) continue; // `dir` is a file: not a folder
        facts.size += r.size;
        if (r.mtimeMs > facts.mtimeMs) facts.mtimeMs = r.mtimeMs;
      }
    } finally {
      marks.splice(marks.indexOf(mark), 1);
      if (marks.length === 0) this.scanning.delete(dir);
    }
    if (!mark.changed) {
      this.cache.set(dir, { ...facts });
      if (this.cache.size > MAX_ENTRIES) this.cache.delete(this.cache.keys().next().value!);
    }
    return facts;
  }

  private apply(rec: FileRecord, prev: FileRecord | undefined): void {
    const delta = (rec.deleted ? 0 : rec.size) - (prev && !prev.deleted ? prev.size : 0);
    for (let dir = parentOf(rec.path); ; dir = parentOf(dir)) {
      for (const mark of this.scanning.get(dir) ?? []) mark.changed = true;
      const facts = this.cache.get(dir);
      if (facts) {
        facts.size += delta;
        if (rec.mtimeMs > facts.mtimeMs) facts.mtimeMs = rec.mtimeMs;
      }
      if (dir === '') break;
    }
  }
}
