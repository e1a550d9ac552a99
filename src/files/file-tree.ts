// The tree BaluHost's clients see: the store's files, the explicit folders beside them (folders.ts), stable integer
// ids (file-ids.ts) and recursive folder sizes (folder-sizes.ts). Every file operation of the facade that is not a
// byte transfer lives here: what is at a path, a folder's entries, delete, mkdir, rename/move. Paths are store names
// (src/files/paths.ts turned the client's path into one and checked the jail).

import type { ClassicLevel } from 'classic-level';
import type { DirEntry, FileRecord, Store } from '../../store/index.ts';
import { isStoreError } from '../../store/index.ts';
import { FileIds } from './file-ids.ts';
import { Folders } from './folders.ts';
import { FolderSizes } from './folder-sizes.ts';
import { ListingCache, type ListedEntry } from './listing-cache.ts';
import { FilesError, fileNotFound } from './errors.ts';
import { PathError, parentOf } from './paths.ts';
import { guessMediaType } from './content-type.ts';

/** A time as BaluHost's clients parse it: UTC ISO-8601 with Z (never before the epoch). */
export const utcIso = (ms: number): string => new Date(Number.isFinite(ms) && ms > 0 ? ms : 0).toISOString();

export type Node = { type: 'file'; path: string; record: FileRecord } | { type: 'dir'; path: string; createdMs: number | null };

export interface Entry {
  name: string;
  path: string;
  type: 'file' | 'dir';
  /** Files only. */
  record?: DirEntry;
  /** Explicit folders only: when it was created. */
  createdMs?: number;
}

/** Store errors that mean "this name cannot exist" become BaluHost's 400 "Invalid path". */
export function asFacadeError(err: unknown): unknown {
  if (isStoreError(err, 'invalid_name')) return new PathError('invalid_path', 'Invalid path');
  if (isStoreError(err, 'path_conflict')) return new FilesError('path_conflict', 'A file and a folder cannot have the same path');
  return err;
}

export class FileTree {
  readonly store: Store;
  readonly ids: FileIds;
  readonly folders: Folders;
  readonly sizes: FolderSizes;
  private readonly listings = new ListingCache();
  private readonly onChange: (rec: FileRecord) => void;

  constructor(opts: { store: Store; db: ClassicLevel<string, string>; now?: () => number }) {
    this.store = opts.store;
    this.ids = new FileIds(opts.db);
    this.folders = new Folders(opts.db, opts.now);
    this.sizes = new FolderSizes(opts.store);
    this.onChange = (rec) => this.listings.changed(rec.path);
    this.store.on('change', this.onChange);
  }

  close(): void {
    this.store.off('change', this.onChange);
    this.sizes.close();
  }

  /** A folder's entries with sizes, times, checksums and ids (cached until something below changes); null if `dir` is not a folder. */
  async listing(dir: string): Promise<ListedEntry[] | null> {
    const hit = this.listings.get(dir);
    if (hit) return hit;
    const version = this.listings.version;
    if ((await this.node(dir))?.type !== 'dir') return null;
    const entries = await this.entries(dir);
    const ids = await this.ids.idsOf(entries.map((e) => e.path));
    const out = await Promise.all(
      entries.map(async (e, i): Promise<ListedEntry> => {
        if (e.type === 'file') {
          const r = e.record!;
          const mtimeMs = r.mtimeMs ?? 0;
          return { name: e.name, path: e.path, type: 'file', size: r.size ?? 0, mtimeMs, checksum: r.sha256 ?? null, id: ids[i]!, modifiedAt: utcIso(mtimeMs), mimeType: guessMediaType(e.name) };
        }
        const facts = await this.sizes.get(e.path);
        const mtimeMs = Math.max(facts.mtimeMs, e.createdMs ?? 0);
        return { name: e.name, path: e.path, type: 'dir', size: facts.size, mtimeMs, checksum: null, id: ids[i]!, modifiedAt: utcIso(mtimeMs), mimeType: null };
      }),
    );
    // BaluHost's order: folders first, then by lower-cased name.
    out.sort((a, b) => {
      if (a.type !== b.type) return a.type === 'dir' ? -1 : 1;
      const x = a.name.toLowerCase();
      const y = b.name.toLowerCase();
      return x < y ? -1 : x > y ? 1 : 0;
    });
    this.listings.set(dir, out, version);
    return out;
  }

  /** What is at `path`: a live file, a folder (explicit, or implied by files below it), or nothing. */
  async node(path: string): Promise<Node | undefined> {
    if (path === '') return { type: 'dir', path, createdMs: null };
    try {
      const rec = await this.store.record(path);
      if (rec && !rec.deleted) return { type: 'file', path, record: rec };
      const folder = await this.folders.get(path);
      if (folder) return { type: 'dir', path, createdMs: folder.createdMs };
      for await (const r of this.store.filesUnder(path)) if (r.path !== path) return { type: 'dir', path, createdMs: null };
      return undefined;
    } catch (err) {
      throw asFacadeError(err);
    }
  }

  /** The entries of a folder (files, implied and explicit sub-folders), unsorted; [] if it is not a folder. */
  async entries(dir: string): Promise<Entry[]> {
    let stored: DirEntry[] = [];
    try {
      stored = await this.store.list(dir);
    } catch (err) {
      if (!isStoreError(err, 'not_found')) throw asFacadeError(err);
    }
    // list() of a file name answers the file itself: a file is not a folder.
    if (stored.length === 1 && stored[0]!.path === dir && stored[0]!.type === 'file') return [];
    const out: Entry[] = stored.map((e) => (e.type === 'file' ? { name: e.name, path: e.path, type: 'file', record: e } : { name: e.name, path: e.path, type: 'dir' }));
    const byName = new Map(out.map((e, i) => [e.name, i]));
    for (const f of await this.folders.children(dir)) {
      const i = byName.get(f.name);
      if (i === undefined) out.push({ name: f.name, path: f.path, type: 'dir', createdMs: f.createdMs });
      else if (out[i]!.type === 'dir') out[i]!.createdMs = f.createdMs;
    }
    return out;
  }

  /** mkdir -p. A file at the path or at an ancestor is a conflict. */
  async mkdir(path: string): Promise<void> {
    for (let p = path; p !== ''; p = parentOf(p)) {
      const n = await this.node(p);
      if (n?.type === 'file') throw new FilesError('path_conflict', `Cannot create folder: ${p} is a file`);
      if (n?.type === 'dir') break; // its ancestors are folders too
    }
    await this.folders.create(path);
    this.listings.changed(path);
  }

  /** Makes the folder a new file goes into exist as an explicit folder, so it stays when the file goes. */
  async ensureParent(path: string): Promise<void> {
    const parent = parentOf(path);
    if (parent !== '' && !(await this.folders.get(parent))) {
      await this.folders.create(parent);
      this.listings.changed(parent);
    }
  }

  /** Deletes a file or a folder with everything below it. Nothing there is not an error (BaluHost answers 200). */
  async remove(path: string): Promise<void> {
    try {
      let deleted = 0;
      for await (const r of this.store.filesUnder(path)) {
        await this.store.delete(r.path, { sync: false }).catch((err: unknown) => {
          if (!isStoreError(err, 'not_found')) throw err; // deleted meanwhile: fine
        });
        deleted += 1;
      }
      if (deleted > 0) await this.store.flush();
      await this.folders.removeTree(path);
      await this.ids.forget(path);
      this.listings.subtreeChanged(path);
    } catch (err) {
      throw asFacadeError(err);
    }
  }

  /**
   * Renames or moves a file or a folder: every file gets a new version at its new path with the same chunks and a
   * tombstone at the old one (no byte is copied; sync sees delete + add). An existing file at a target is replaced.
   */
  async move(from: string, to: string): Promise<void> {
    if (from === to) return;
    const node = await this.node(from);
    if (!node) throw fileNotFound();
    if (to.startsWith(from + '/')) throw new FilesError('path_conflict', 'Cannot move a folder into itself');
    try {
      if (node.type === 'file') {
        if ((await this.node(to))?.type === 'dir') throw new FilesError('path_conflict', `Cannot replace folder ${to} with a file`);
        await this.ensureParent(to);
        await this.store.rename(from, to);
      } else {
        const target = await this.node(to);
        if (target?.type === 'file') throw new FilesError('path_conflict', `Cannot replace file ${to} with a folder`);
        let moved = 0;
        for await (const r of this.store.filesUnder(from)) {
          await this.store.rename(r.path, to + r.path.slice(from.length), { sync: false });
          moved += 1;
        }
        if (moved > 0) await this.store.flush();
        await this.folders.moveTree(from, to);
      }
      await this.ids.move(from, to);
      this.listings.subtreeChanged(from);
      this.listings.subtreeChanged(to);
    } catch (err) {
      throw asFacadeError(err);
    }
  }
}
