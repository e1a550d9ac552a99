// Stores with a backing folder (the hub's root) for the store's tests of it: backing.test.ts, lost-bytes.test.ts.
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileSource, openStore, type FileRecord, type Store } from '../../store/index.ts';
import { SMALL_CHUNKS, source, withTempDir } from './temp-store.ts';

export interface Hub {
  store: Store;
  root: string;
  dir: string;
  /** Chunk files under the store's chunks/ directory. */
  chunkFiles(): Promise<number>;
  /** Writes a file into the root the way the root writer does (temp + rename). */
  put(name: string, data: Buffer): Promise<void>;
  /** The hub ingesting its own file. */
  ingestOwn(name: string, data: Buffer, baseVersion?: number): Promise<FileRecord>;
}

export async function withHub(fn: (h: Hub) => Promise<void>, opts: { cacheMaxBytes?: number } = {}): Promise<void> {
  await withTempDir(async (top) => {
    const root = path.join(top, 'root');
    const dir = path.join(top, 'store');
    await fs.mkdir(root);
    const store = await openStore({ dir, chunkParams: SMALL_CHUNKS, backingDir: root, ...opts });
    const put = async (name: string, data: Buffer): Promise<void> => {
      const abs = path.join(root, name);
      await fs.mkdir(path.dirname(abs), { recursive: true });
      await fs.writeFile(abs + '.tmp', data);
      await fs.rename(abs + '.tmp', abs);
    };
    const hub: Hub = {
      store,
      root,
      dir,
      async chunkFiles() {
        let n = 0;
        for (const fan of await fs.readdir(path.join(dir, 'chunks'))) n += (await fs.readdir(path.join(dir, 'chunks', fan))).length;
        return n;
      },
      put,
      async ingestOwn(name, data, baseVersion) {
        await put(name, data);
        return (await hub.store.ingest(name, fileSource(path.join(root, name)), {}, { located: true, ...(baseVersion === undefined ? {} : { baseVersion }) })).file;
      },
    };
    try {
      await fn(hub);
    } finally {
      await hub.store.close().catch(() => {});
    }
  });
}

/** A peer's version of `data`: its chunks stored the way sync receives them, then committed. */
export async function commitFromPeer(store: Store, name: string, data: Buffer, baseVersion: number): Promise<FileRecord> {
  return withTempDir(async (d) => {
    const peer = await openStore({ dir: d, chunkParams: SMALL_CHUNKS });
    try {
      const rec = (await peer.ingest('x', source(data))).file;
      for (const c of rec.chunks) await store.putChunk(c.hash, await peer.getChunk(c.hash), { clean: true });
      return store.commitFile(name, { size: rec.size, mtimeMs: rec.mtimeMs, mode: rec.mode, chunks: rec.chunks, hash: rec.hash }, { baseVersion });
    } finally {
      await peer.close();
    }
  });
}

/** Stores the first `count` (default: all) of a file's chunks, cut from its bytes `data`, as a peer's upload does. */
export async function putChunksOf(store: Store, chunks: { hash: string; size: number }[], data: Buffer, count = chunks.length): Promise<void> {
  let at = 0;
  for (const [i, c] of chunks.entries()) {
    if (i < count) await store.putChunk(c.hash, data.subarray(at, at + c.size), { clean: true });
    at += c.size;
  }
}
