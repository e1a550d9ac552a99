// Writes into the hub's root while someone else writes the same path (a person or program on the NAS): the hub puts
// a file in place, or removes one, only if the path still holds what it saw when it began (src/sync/put-in-place.js).
// Each test makes the other writer act at a precise point of the hub's write, through the real parts (the store's read
// stream, the staging file's preparation, the small-file writer), and checks that their file survives and the hub's
// version is kept beside it as a conflict copy, with no temp file left.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import fsSync from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { randomBytes } from 'node:crypto';
import pino from 'pino';
import { HubRoot } from '../../src/sync/hub-root.ts';
import { DiskIndex } from '../../src/sync/disk-index.ts';
import { PathLocks } from '../../src/sync/locks.ts';
import { TEMP_PREFIX } from '../../src/sync/root-files.ts';
import { hashToBytes } from '../../src/sync/wire.ts';
import { openStore, type Store } from '../../store/index.ts';
import { bytes } from './in-process.ts';
import { blake } from './peers.ts';
import { setup, withRootAndDb } from './hub-root-fixtures.ts';
import { readAll } from '../store/temp-store.ts';

/**
 * Runs `act` (someone on the NAS) the first time the hub's write reads the store's stream of `path`: its temp file is
 * open by then. The stream's read is wrapped rather than listened to: a 'data' listener would set it flowing before
 * the hub's write reads it.
 */
function onFirstRead(store: Store, path: string, act: () => void): { happened: () => boolean } {
  const openRead = store.openRead.bind(store);
  let done = false;
  store.openRead = async (...args: Parameters<typeof openRead>) => {
    const opened = await openRead(...args);
    if (!done && args[0] === path) {
      const stream = opened.stream;
      const read = stream.read.bind(stream);
      stream.read = (size?: number) => {
        if (!done) {
          done = true;
          act();
        }
        return read(size);
      };
    }
    return opened;
  };
  return { happened: () => done };
}

test("a file someone writes while the hub writes a peer's version there is never replaced: both survive, no temp file stays", async () => {
  await setup(async (n, hub, root) => {
    // A large file (written from the store's stream): the hub saw the old file, then someone on the NAS saves an edit
    // of it while the peer's version streams into the temp file.
    const f = path.join(root, 'report.bin');
    await fs.writeFile(f, 'the old report');
    await hub.refresh('report.bin');
    const base = await n.store.stat('report.bin');
    const peer = randomBytes(400_000);
    const staged = await n.store.ingest('.stage', Readable.from([peer]), { mtimeMs: base.mtimeMs + 1000 });
    await n.store.commitFile('report.bin', { size: peer.length, mtimeMs: base.mtimeMs + 1000, mode: 0o644, chunks: staged.file.chunks, hash: staged.file.hash }, { baseVersion: base.version });
    // The edit lands when the hub's write first reads the stream (its temp file is open by then), and is newer than
    // the peer's version.
    const edit = onFirstRead(n.store, 'report.bin', () => {
      fsSync.writeFileSync(f, 'saved on the NAS during the write');
      const t = (base.mtimeMs + 60_000) / 1000;
      fsSync.utimesSync(f, t, t);
    });
    await hub.materialize('report.bin');
    assert.ok(edit.happened(), 'the edit happened during the write');
    assert.equal(await fs.readFile(f, 'utf8'), 'saved on the NAS during the write', 'the newer edit keeps the path');
    const copies = (await fs.readdir(root)).filter((x) => x.includes('sync-conflict'));
    assert.equal(copies.length, 1, 'the peer version is kept as a conflict copy');
    assert.ok((await fs.readFile(path.join(root, copies[0]!))).equals(peer));
    assert.equal((await n.state.listConflicts()).length, 1);
    assert.deepEqual((await fs.readdir(root)).filter((x) => x.startsWith(TEMP_PREFIX)), [], 'no temp file left');

    // A new small file a peer pushed with its bytes: someone creates the same path just before the hub puts it there.
    const data = Buffer.from('pushed by a peer');
    const hash = await blake(data);
    const userFile = path.join(root, 'new.txt');
    const smallFiles = (hub as unknown as { smallFiles: { writeBytes: (...a: unknown[]) => Promise<unknown> } }).smallFiles;
    const writeBytes = smallFiles.writeBytes.bind(smallFiles);
    smallFiles.writeBytes = (...a: unknown[]) => {
      fsSync.writeFileSync(userFile, 'created on the NAS first');
      return writeBytes(...a);
    };
    const file = { path: 'new.txt', size: data.length, mtimeMs: 1_600_000_000_000, mode: 0o644, hash, sha256: null, chunks: [{ hash, size: data.length }], version: 0, seq: 0, deleted: false };
    const [rec] = await hub.commitNew([{ file, base: 0, data }]);
    assert.equal(rec, undefined, 'not taken: the commit goes the usual way, which reads the new file first');
    assert.equal(await fs.readFile(userFile, 'utf8'), 'created on the NAS first');
    assert.equal(await n.store.record('new.txt'), undefined, 'nothing recorded for the path');
    assert.deepEqual((await fs.readdir(root)).filter((x) => x.startsWith(TEMP_PREFIX)), [], 'no temp file left');
  });
});

test('a directory where a peer puts a file is left alone (logged once), not replaced, not written in vain', async () => {
  await setup(async (n, _hub, root) => {
    const warnings: { path?: string; msg?: string }[] = [];
    const log = pino({ level: 'warn' }, { write: (line: string) => void warnings.push(JSON.parse(line)) });
    const hub = new HubRoot({ store: n.store, state: n.state, disk: new DiskIndex(n.db), locks: new PathLocks(), root, log });
    await fs.mkdir(path.join(root, 'photos'));
    await n.store.ingest('photos', bytes('a file named like the directory'), { mtimeMs: 1_600_000_000_000 });
    await hub.materialize('photos');
    assert.ok((await fs.stat(path.join(root, 'photos'))).isDirectory());
    assert.deepEqual(warnings.map((w) => [w.path, w.msg]), [['photos', 'hub root: a directory or link stands where this file goes; left as it is']]);
    assert.deepEqual((await fs.readdir(root)).filter((x) => x.startsWith(TEMP_PREFIX)), [], 'no temp file left');
  });
});

test("a pushed large file's staging file is not put over a file someone created at its path meanwhile: both survive, the staging file is used after all", async () => {
  await withRootAndDb('balupi-hub-stage-race-', async ({ dir, root, hubOf }) => {
    const store = await openStore({ dir: path.join(dir, 'store'), backingDir: root });
    try {
      const hub = await hubOf(store);
      // A 9 MiB file uploaded into its staging file and committed, as a pi's push leaves it.
      const data = randomBytes(9 * 1024 * 1024);
      const fileHash = await blake(data);
      const place = (offset: number) => ({ path: 'docs/big.bin', fileSize: BigInt(data.length), fileHash: hashToBytes(fileHash), offset: BigInt(offset) });
      const w = hub.staging!.writer();
      const writes = [];
      for (let off = 0; off < data.length; off += 1024 * 1024) {
        const piece = data.subarray(off, off + 1024 * 1024);
        writes.push({ stage: w.stageOf(place(off), piece.length)!, hash: await blake(piece), data: piece, offset: off, fileSize: data.length });
      }
      await w.write(writes);
      await w.close();
      const mtimeMs = Date.now() - 60_000;
      await store.commitFile('docs/big.bin', { size: data.length, mtimeMs, mode: 0o644, chunks: writes.map((x) => ({ hash: x.hash, size: x.data.length })), hash: fileHash }, { baseVersion: 0 });
      // Someone on the NAS saves a file at that path while the hub prepares the staging file (newer than the push).
      const target = path.join(root, 'docs', 'big.bin');
      const locatedAt = store.locatedAt.bind(store);
      let created = false;
      store.locatedAt = async (...a: Parameters<typeof locatedAt>) => {
        if (!created) {
          created = true;
          fsSync.writeFileSync(target, 'saved on the NAS');
        }
        return locatedAt(...a);
      };
      await hub.materialize('docs/big.bin');
      assert.ok(created, 'the file appeared while the staging file was being put in place');
      assert.equal(await fs.readFile(target, 'utf8'), 'saved on the NAS', 'the newer file keeps the path');
      const copies = (await fs.readdir(path.join(root, 'docs'))).filter((x) => x.includes('sync-conflict'));
      assert.equal(copies.length, 1);
      assert.ok((await fs.readFile(path.join(root, 'docs', copies[0]!))).equals(data), 'the pushed file survives as the conflict copy');
      assert.deepEqual((await fs.readdir(path.join(root, 'docs'))).filter((x) => x.startsWith(TEMP_PREFIX) && !x.includes('stage')), [], 'no temp file left');
      assert.deepEqual((await store.fsck()).problems, []);
    } finally {
      await store.close();
    }
  });
});

test("a peer's version the hub had just written into its root, edited there before the hub recorded the write: a later edit, not a conflict copy without bytes", async () => {
  await setup(async (n, hub, root) => {
    const file = path.join(root, 'doc.txt');
    await fs.writeFile(file, 'version one, from the NAS');
    await hub.refresh('doc.txt');
    // A pi's version: its chunks arrive, it is committed, and the root writer puts it in place and notes it...
    const v2 = Buffer.from('version two, pushed by a pi');
    const h2 = await blake(v2);
    await n.store.putChunk(h2, v2, { clean: true });
    const rec2 = await n.store.commitFile('doc.txt', { size: v2.length, mtimeMs: 2_000_000, mode: 0o644, chunks: [{ hash: h2, size: v2.length }], hash: h2 }, { baseVersion: 1 });
    await fs.writeFile(file, v2);
    await n.store.noteWritten([{ path: 'doc.txt', version: rec2.version }]);
    // ...but before it records the write in its disk index, someone saves over the file.
    await fs.writeFile(file, 'version three, saved on the NAS right after');
    await hub.refresh('doc.txt');
    const now = await n.store.record('doc.txt');
    assert.equal((await n.store.read('doc.txt').then(readAll)).toString(), 'version three, saved on the NAS right after');
    assert.equal(now?.state, 'local');
    assert.deepEqual((await n.store.list('')).map((e) => e.name).filter((x) => x.includes('conflict')), [], 'no copy of version two, whose bytes the save overwrote');
    assert.deepEqual((await n.store.fsck()).problems, [], 'and no record of bytes that are gone');
  });
});

test("the folder of a peer's new file removed on the NAS while the hub writes the file into it: the write is looked at again and made, no temp file stays", async () => {
  // Found by bench/soak-sync.ts (seed 236): the rename of the temp file failed with ENOENT (the folder went, and the
  // temp file with it), the root writer logged it and went on, and the version was never written into the root.
  await setup(async (n, hub, root) => {
    const dir = path.join(root, 'd');
    await fs.mkdir(dir);
    await fs.writeFile(path.join(dir, 'other.txt'), 'another file of the folder');
    await hub.refresh('d/other.txt');
    const peer = randomBytes(400_000);
    const staged = await n.store.ingest('.stage', Readable.from([peer]), { mtimeMs: 1_600_000_000_000 });
    await n.store.commitFile('d/report.bin', { size: peer.length, mtimeMs: 1_600_000_000_000, mode: 0o644, chunks: staged.file.chunks, hash: staged.file.hash }, { baseVersion: 0 });
    // the folder, its other file and the hub's temp file in it
    const removal = onFirstRead(n.store, 'd/report.bin', () => fsSync.rmSync(dir, { recursive: true }));
    await hub.materialize('d/report.bin');
    assert.ok(removal.happened(), 'the folder went during the write');
    assert.ok((await fs.readFile(path.join(dir, 'report.bin'))).equals(peer), "the peer's new file is in the root");
    assert.deepEqual(await fs.readdir(dir), ['report.bin'], 'no temp file left, and the removed file not brought back');
  });
});
