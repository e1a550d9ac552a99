// Reading a chunk on the main thread (ChunkFiles without chunk workers: the store's fallback when no worker can
// serve), against real chunk files altered on disk. Whatever was done to the file, a read returns the chunk's exact
// bytes or fails with corrupt_chunk naming the chunk; never other bytes.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import { blake3, isStoreError } from '../../store/index.ts';
import { ChunkFiles } from '../../store/chunk-files.ts';
import { withTempDir } from './temp-store.ts';

const b3 = blake3();

async function withChunk(fn: (files: ChunkFiles, hash: string, data: Buffer) => Promise<void>): Promise<void> {
  await withTempDir(async (dir) => {
    const files = new ChunkFiles(dir, b3);
    await files.init();
    // larger than one read piece (256 KiB), so the piecewise hashing is exercised
    const data = randomBytes(600_000);
    const hash = b3.hash(data).toString('hex');
    await files.write(hash, data);
    await fn(files, hash, data);
  });
}

const corrupt = (pattern: RegExp, hash: string) => (err: unknown) => isStoreError(err, 'corrupt_chunk') && pattern.test((err as Error).message) && (err as Error).message.includes(hash);

describe('chunk read on this thread', () => {
  test('an intact chunk reads back exactly, with or without its size given, strict or not', async () => {
    await withChunk(async (files, hash, data) => {
      assert.deepEqual(await files.read(hash, data.length), data);
      assert.deepEqual(await files.read(hash), data);
      assert.deepEqual(await files.read(hash, data.length, { strict: true }), data);
    });
  });

  test('one flipped byte on disk: corrupt_chunk with the hash it now has', async () => {
    await withChunk(async (files, hash, data) => {
      const altered = Buffer.from(data);
      altered[400_000]! ^= 0xff;
      await fs.writeFile(files.pathOf(hash), altered);
      await assert.rejects(files.read(hash, data.length), corrupt(/hashes to [0-9a-f]{64}/, hash));
    });
  });

  test('a truncated file: corrupt_chunk with the size found', async () => {
    await withChunk(async (files, hash, data) => {
      await fs.truncate(files.pathOf(hash), 1000);
      await assert.rejects(files.read(hash, data.length), corrupt(/has 1000 bytes on disk, expected 600000/, hash));
    });
  });

  test('a file longer than the chunk: the chunk is served, but a strict reader (fsck) is told', async () => {
    await withChunk(async (files, hash, data) => {
      await fs.appendFile(files.pathOf(hash), Buffer.from('extra'));
      assert.deepEqual(await files.read(hash, data.length), data);
      await assert.rejects(files.read(hash, data.length, { strict: true }), corrupt(/has 600005 bytes on disk, expected 600000/, hash));
    });
  });

  test('a missing file: corrupt_chunk saying so', async () => {
    await withChunk(async (files, hash, data) => {
      await fs.rm(files.pathOf(hash));
      await assert.rejects(files.read(hash, data.length), corrupt(/is missing from disk/, hash));
    });
  });
});
