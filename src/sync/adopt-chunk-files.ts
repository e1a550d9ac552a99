// A one-time migration of the hub's data directory: a store from before the hub kept each byte once (in its root
// folder) has chunk files for files already in the folder. They go once the folder is known to hold those bytes.

import type { Store, WrittenFile } from '../../store/index.ts';
import type { SyncState } from './state.ts';
import { matches, type DiskIndex } from './disk-index.ts';
import { safePath, statFile } from './root-files.ts';

/**
 * Each file whose disk entry says it holds its current version is reported as written, with every chunk read back
 * from it first (verify), so only chunk files the folder really holds go. Once per data directory (the sync state
 * remembers it). Returns the files reported and the bytes freed. Stops early (and runs again at the next start) when
 * `signal` aborts.
 */
export async function adoptChunkFiles(
  o: { store: Store; disk: DiskIndex; state: SyncState; root: string },
  signal?: AbortSignal,
): Promise<{ files: number; bytes: number }> {
  const { store, disk, state } = o;
  const out = { files: 0, bytes: 0 };
  if ((await state.getNumber('rootChunkFilesAdopted')) === 1) return out;
  const before = store.stats().storedBytes;
  let batch: WrittenFile[] = [];
  const flush = async (): Promise<void> => {
    if (batch.length === 0) return;
    out.files += (await store.noteWritten(batch)).filter(Boolean).length;
    batch = [];
  };
  if (before > 0) {
    for await (const rec of store.filesUnder('')) {
      if (signal?.aborted) return out;
      if (rec.state !== 'local') continue;
      const known = await disk.get(rec.path);
      const abs = await safePath(o.root, rec.path).catch(() => null); // e.g. below a symlink now: left as it is
      if (known?.v !== rec.version || !abs || !matches(await statFile(abs), known)) continue;
      batch.push({ path: rec.path, version: rec.version, verify: true });
      if (batch.length >= 64) await flush();
    }
    await flush();
  }
  await state.setNumber('rootChunkFilesAdopted', 1);
  out.bytes = before - store.stats().storedBytes;
  return out;
}
