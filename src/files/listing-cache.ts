// Folder listings kept in memory between changes. BaluApp re-lists whole trees on every folder sync and BaluDesk
// polls; building a listing reads every record of the folder from LevelDB (decoding chunk lists it does not need),
// the explicit folders and the ids, which made GET /api/files/list about 7x slower than answering the same JSON from
// memory (bench/files.ts). A listing is dropped as soon as anything below its folder changes: a committed version
// (store 'change' event) drops the folder of the file and every ancestor (their sub-folder sizes and times moved);
// folder and id changes made by FileTree drop theirs explicitly. A listing built while a change happened is not kept.
//
// Bounds: MAX_FOLDERS listings, least recently used dropped first; folders with more than MAX_ENTRIES entries are
// never kept (they are rare, and would cost memory out of proportion).

import { parentOf } from './paths.ts';

export interface ListedEntry {
  name: string;
  path: string;
  type: 'file' | 'dir';
  /** Bytes (folders: everything below). */
  size: number;
  mtimeMs: number;
  /** SHA-256 of a file, null if unknown or a folder. */
  checksum: string | null;
  id: number;
  /** Precomputed for the answer: `modified_at` (UTC, Z) and `mime_type`. */
  modifiedAt: string;
  mimeType: string | null;
}

const MAX_FOLDERS = 256;
const MAX_ENTRIES = 5_000;

export class ListingCache {
  private readonly map = new Map<string, ListedEntry[]>();
  /** Bumped by every drop: a listing built across a bump may be stale and is not kept. */
  private generation = 0;

  get version(): number {
    return this.generation;
  }

  get(dir: string): ListedEntry[] | undefined {
    const hit = this.map.get(dir);
    if (hit) {
      this.map.delete(dir);
      this.map.set(dir, hit);
    }
    return hit;
  }

  /** Keeps a listing (in answer order: folders first, then by lower-cased name) built since `version` was read, unless something changed meanwhile. */
  set(dir: string, entries: ListedEntry[], version: number): void {
    if (version !== this.generation || entries.length > MAX_ENTRIES) return;
    this.map.set(dir, entries);
    if (this.map.size > MAX_FOLDERS) this.map.delete(this.map.keys().next().value!);
  }

  /** Something at `path` changed: its folder and every folder above it list differently now. */
  changed(path: string): void {
    this.generation += 1;
    if (this.map.size === 0) return;
    for (let dir = parentOf(path); ; dir = parentOf(dir)) {
      this.map.delete(dir);
      if (dir === '') break;
    }
  }

  /** A whole subtree moved or went: `path`, everything below it and everything above it. */
  subtreeChanged(path: string): void {
    this.changed(path);
    for (const dir of [...this.map.keys()]) if (dir === path || dir.startsWith(path + '/')) this.map.delete(dir);
  }
}
