// A store in a fresh temp directory for each test, removed afterwards.

import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { openStore } from '../../store/index.ts';
import type { Store, StoreOptions } from '../../store/index.ts';

export const SMALL_CHUNKS = { minSize: 4096, avgSize: 16384, maxSize: 65536 };

export async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'balupi-store-'));
  try {
    return await fn(dir);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

export async function withStore<T>(opts: Partial<StoreOptions>, fn: (store: Store, dir: string) => Promise<T>): Promise<T> {
  return withTempDir(async (root) => {
    const dir = path.join(root, 'store');
    const store = await openStore({ dir, ...opts });
    try {
      return await fn(store, dir);
    } finally {
      await store.close();
    }
  });
}

export async function readAll(stream: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const p of stream) parts.push(Buffer.from(p));
  return Buffer.concat(parts);
}

/** A stream of `data` in pieces of irregular sizes, like a network upload. */
export function source(data: Uint8Array, maxPiece = 100_000): Readable {
  const pieces: Buffer[] = [];
  for (let off = 0; off < data.length; ) {
    const n = 1 + Math.floor(Math.random() * maxPiece);
    pieces.push(Buffer.from(data.subarray(off, off + n)));
    off += n;
  }
  return Readable.from(pieces);
}

/** Deterministic pseudo-random bytes (xorshift32), for content that must be regenerated elsewhere. */
export function prngBytes(len: number, seed: number): Buffer {
  const b = Buffer.alloc(len);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < len; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
}
