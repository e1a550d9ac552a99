// Changes to a file that write no bytes: deleting it, moving it to another path, pinning it. Each is one transaction
// on the file's current record through commit.ts (a delete or a move is a new version the change feed sees; a pin is
// a local fact); they live here so that store.ts stays the facade that validates and delegates.

import type { Engine } from './engine.ts';
import type { FileRecord } from './records.ts';
import { checkBase, currentRecord, setPinned, writeVersion } from './commit.ts';
import { validateName } from './names.ts';
import { StoreError } from './errors.ts';

/** Store.delete. */
export async function deleteFile(e: Engine, path: string, opts: { baseVersion?: number; sync?: boolean } = {}): Promise<FileRecord> {
  validateName(path);
  return e.track(() =>
    e.transact(async (tx) => {
      const prev = await e.idx.getFile(path);
      if (!prev) throw new StoreError('not_found', `no such file: ${path}`, { details: { path } });
      checkBase(path, prev, opts.baseVersion);
      return writeVersion(e, tx, path, prev, { size: 0, mtimeMs: e.now(), mode: prev.mode, hash: '', sha256: null, chunks: [], deleted: true, state: 'local' });
    }, { sync: opts.sync ?? true }),
  );
}

/** Store.rename. */
export async function renameFile(e: Engine, from: string, to: string, opts: { sync?: boolean } = {}): Promise<FileRecord> {
  validateName(from);
  validateName(to);
  return e.track(() =>
    e.transact(async (tx) => {
      const src = await e.idx.getFile(from);
      if (!src) throw new StoreError('not_found', `no such file: ${from}`, { details: { path: from } });
      if (from === to) return src;
      const dst = await currentRecord(e, to);
      const moved = await writeVersion(e, tx, to, dst, {
        size: src.size, mtimeMs: src.mtimeMs, mode: src.mode, hash: src.hash, sha256: src.sha256, chunks: src.chunks, deleted: false, state: src.state,
        pinned: src.pinned || (dst !== undefined && !dst.deleted && dst.pinned),
      });
      await writeVersion(e, tx, from, src, { size: 0, mtimeMs: e.now(), mode: src.mode, hash: '', sha256: null, chunks: [], deleted: true, state: 'local' });
      return moved;
    }, { sync: opts.sync ?? true }),
  );
}

/** Store.pin. */
export async function pinFile(e: Engine, path: string, pinned: boolean, opts: { sync?: boolean } = {}): Promise<FileRecord> {
  validateName(path);
  return e.track(() =>
    e.transact(async (tx) => {
      const rec = await e.idx.getFile(path);
      if (!rec) throw new StoreError('not_found', `no such file: ${path}`, { details: { path } });
      return setPinned(e, tx, rec, pinned);
    }, { sync: opts.sync ?? true }),
  );
}
