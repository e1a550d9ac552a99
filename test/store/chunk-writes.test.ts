// ChunkWrites on real chunk files in a temp directory: a chunk is never written twice at once, never unlinked while it
// is written or held, and a failed batch leaves nothing marked as being written. The only thing injected is the
// opener of temp files (ChunkIo.openTemp, the store's own seam for a full disk), used here to hold a write open at a
// chosen point or to fail it.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import fsCb from 'node:fs';
import path from 'node:path';
import { blake3, isStoreError } from '../../store/index.ts';
import { ChunkFiles } from '../../store/chunk-files.ts';
import { ChunkHolds } from '../../store/holds.ts';
import { ChunkWrites } from '../../store/chunk-writes.ts';
import { openFd } from '../../store/fd-calls.ts';
import { syncFileSystem } from '../../store/syncfs.ts';
import { withTempDir } from './temp-store.ts';

const b3 = blake3();
const chunk = (size = 20_000) => {
  const data = randomBytes(size);
  return { hash: b3.hash(data).toString('hex'), data };
};

/** Temp-file opens, counted per chunk; a chunk's open can be held back (gate) or made to fail (full disk). */
class Opener {
  readonly opens = new Map<string, number>();
  readonly #gates = new Map<string, { reached: () => void; open: Promise<void> }>();
  readonly #full = new Set<string>();

  /** Holds the next open of `hash`'s temp file until the returned `release` is called; `reached` resolves when it waits. */
  gate(hash: string): { reached: Promise<void>; release: () => void } {
    let reached!: () => void;
    let release!: () => void;
    const r = new Promise<void>((res) => (reached = res));
    this.#gates.set(hash.slice(0, 16), { reached, open: new Promise<void>((res) => (release = res)) });
    return { reached: r, release };
  }

  failWithFullDisk(hash: string): void {
    this.#full.add(hash.slice(0, 16));
  }

  readonly openTemp = async (tmp: string, dsync: boolean): Promise<number> => {
    const key = path.basename(tmp).slice(0, 16);
    this.opens.set(key, (this.opens.get(key) ?? 0) + 1);
    const gate = this.#gates.get(key);
    if (gate) {
      this.#gates.delete(key);
      gate.reached();
      await gate.open;
    }
    if (this.#full.has(key)) throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
    const { O_WRONLY, O_CREAT, O_EXCL, O_DSYNC } = fsCb.constants;
    return openFd(tmp, O_WRONLY | O_CREAT | O_EXCL | (dsync ? O_DSYNC : 0));
  };

  #flushGate: { reached: () => void; open: Promise<void> } | undefined;

  /** Holds the next batch flush (syncfs) until `release`: its chunk files are renamed into place, not yet durable. */
  gateFlush(): { reached: Promise<void>; release: () => void } {
    let reached!: () => void;
    let release!: () => void;
    const r = new Promise<void>((res) => (reached = res));
    this.#flushGate = { reached, open: new Promise<void>((res) => (release = res)) };
    return { reached: r, release };
  }

  readonly syncFs = async (dir: string): Promise<void> => {
    const gate = this.#flushGate;
    this.#flushGate = undefined;
    if (gate) {
      gate.reached();
      await gate.open;
    }
    return syncFileSystem(dir);
  };

  count(hash: string): number {
    return this.opens.get(hash.slice(0, 16)) ?? 0;
  }
}

async function withWrites(fn: (w: { writes: ChunkWrites; files: ChunkFiles; holds: ChunkHolds; opener: Opener; unwanted: Set<string> }) => Promise<void>): Promise<void> {
  await withTempDir(async (dir) => {
    const opener = new Opener();
    const files = new ChunkFiles(dir, b3, { openTemp: opener.openTemp, syncFs: opener.syncFs });
    await files.init();
    const holds = new ChunkHolds();
    const unwanted = new Set<string>();
    const writes = new ChunkWrites(files, holds, 4, (h) => unwanted.has(h));
    await fn({ writes, files, holds, opener, unwanted });
  });
}

async function onDisk(files: ChunkFiles, hash: string): Promise<Buffer | null> {
  return fs.readFile(files.pathOf(hash)).catch(() => null);
}

describe('ChunkWrites', () => {
  test('two writes of the same chunk at once: one writes it, the other waits for that write and reports it did not write', async () => {
    await withWrites(async ({ writes, files, opener }) => {
      const c = chunk();
      const gate = opener.gate(c.hash);
      const first = writes.write(c.hash, c.data);
      await gate.reached;
      assert.equal(writes.isBeingWritten(c.hash), true);
      const second = writes.write(c.hash, c.data);
      gate.release();
      assert.deepEqual(await Promise.all([first, second]), [true, false]);
      assert.equal(opener.count(c.hash), 1, 'the chunk file was opened for writing once');
      assert.deepEqual(await onDisk(files, c.hash), c.data);
      assert.equal(writes.isBeingWritten(c.hash), false);
    });
  });

  test('a batch writes its own chunks once (a hash listed twice included), waits for a chunk another write has in flight, and returns only what it wrote', async () => {
    await withWrites(async ({ writes, files, opener }) => {
      const [a, b, c] = [chunk(), chunk(70_000), chunk()];
      const gate = opener.gate(c.hash);
      const other = writes.write(c.hash, c.data);
      await gate.reached;
      let batchDone = false;
      let cThereWhenBatchDone: boolean | undefined;
      const batch = writes.writeBatch([a, b, c, a]).then((r) => {
        batchDone = true;
        cThereWhenBatchDone = fsCb.existsSync(files.pathOf(c.hash));
        return r;
      });
      // The batch's own chunks are written while c's writer is still held.
      while (opener.count(b.hash) === 0 || opener.count(a.hash) === 0) await new Promise<void>((r) => setImmediate(r));
      assert.equal(batchDone, false, 'the batch cannot answer before the chunk it waits for is written');
      gate.release();
      assert.deepEqual((await batch).sort(), [a.hash, b.hash].sort());
      assert.equal(cThereWhenBatchDone, true, 'when the batch answers, the chunk it waited for is in place');
      assert.equal(await other, true);
      for (const x of [a, b, c]) {
        assert.equal(opener.count(x.hash), 1, 'each chunk opened once');
        assert.deepEqual(await onDisk(files, x.hash), x.data);
        assert.equal(writes.isBeingWritten(x.hash), false);
      }
    });
  });

  test('a batch whose chunk another write has in flight fails when that write fails: it never answers as if the chunk were in place', async () => {
    await withWrites(async ({ writes, files, opener }) => {
      const [a, c] = [chunk(), chunk()];
      const gate = opener.gate(c.hash);
      opener.failWithFullDisk(c.hash);
      const other = writes.write(c.hash, c.data);
      await gate.reached;
      const batch = writes.writeBatch([a, c]);
      gate.release();
      await assert.rejects(other, (err: unknown) => isStoreError(err, 'no_space'));
      await assert.rejects(batch, (err: unknown) => isStoreError(err, 'no_space'));
      assert.equal(await onDisk(files, c.hash), null);
      assert.deepEqual(await onDisk(files, a.hash), a.data, 'its own chunk is written (unreferenced, for gc if nothing takes it)');
    });
  });

  test('a held chunk is unlinked only once its last hold goes, and only if the index still does not want it', async () => {
    await withWrites(async ({ writes, files, holds, unwanted }) => {
      const [gone, kept] = [chunk(), chunk()];
      for (const c of [gone, kept]) {
        await writes.write(c.hash, c.data);
        holds.acquire(c.hash);
        holds.acquire(c.hash);
        await writes.unlinkUnheld(c.hash);
      }
      assert.ok(await onDisk(files, gone.hash), 'held: still there');
      unwanted.add(gone.hash); // `kept` was wanted again meanwhile (re-ingested, say)
      for (const c of [gone, kept]) holds.release(c.hash);
      await writes.unlinksDone();
      assert.ok(await onDisk(files, gone.hash), 'one hold left: still there');
      for (const c of [gone, kept]) holds.release(c.hash);
      await writes.unlinksDone();
      assert.equal(await onDisk(files, gone.hash), null, 'unlinked after its last hold');
      assert.deepEqual(await onDisk(files, kept.hash), kept.data, 'wanted again: kept');
    });
  });

  test('an unlink asked for while a batch has its chunk renamed into place but not yet flushed does not remove it', async () => {
    await withWrites(async ({ writes, files, opener }) => {
      const c = chunk();
      const gate = opener.gateFlush();
      const writing = writes.writeBatch([c]);
      await gate.reached;
      assert.ok(await onDisk(files, c.hash), 'renamed into place, waiting for its flush');
      await writes.unlinkUnheld(c.hash);
      await writes.unlinksDone();
      gate.release();
      assert.deepEqual(await writing, [c.hash]);
      assert.deepEqual(await onDisk(files, c.hash), c.data);
    });
  });

  test('a batch that hits a full disk fails with no_space, leaves no chunk marked as being written, and the chunk can be written later', async () => {
    await withWrites(async ({ writes, files, opener }) => {
      const [a, b] = [chunk(), chunk()];
      opener.failWithFullDisk(b.hash);
      await assert.rejects(writes.writeBatch([a, b]), (err: unknown) => isStoreError(err, 'no_space'));
      assert.equal(writes.isBeingWritten(a.hash), false);
      assert.equal(writes.isBeingWritten(b.hash), false);
      assert.equal(await onDisk(files, b.hash), null, 'nothing of the failed chunk under its name');
      assert.deepEqual(await fs.readdir(files.tmpDir), [], 'no temp file left');
      const retry = new ChunkWrites(new ChunkFiles(path.dirname(files.chunkDir), b3), new ChunkHolds(), 4, () => true);
      assert.deepEqual(await retry.writeBatch([b]), [b.hash]);
      assert.deepEqual(await onDisk(files, b.hash), b.data);
    });
  });
});
