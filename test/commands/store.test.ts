import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import Fastify from 'fastify';
import { blake3, openStore } from '../../store/index.ts';
import type { Store } from '../../store/index.ts';
import { storeCommands } from '../../src/commands/store.ts';
import { localStoreRoutes } from '../../src/routes/local-store.ts';

class Capture extends Writable {
  parts: Buffer[] = [];
  override _write(chunk: Buffer, _enc: string, cb: () => void): void {
    this.parts.push(Buffer.from(chunk));
    cb();
  }
  get bytes(): Buffer {
    return Buffer.concat(this.parts);
  }
  get text(): string {
    return this.bytes.toString('utf8');
  }
}

async function run(dataDir: string, cmd: string, ...args: string[]): Promise<{ code: number; out: Buffer; text: string; err: string }> {
  const stdout = new Capture();
  const stderr = new Capture();
  const code = await storeCommands[cmd]!(args, { dataDir, cacheMaxBytes: null, stdout, stderr });
  return { code, out: stdout.bytes, text: stdout.text, err: stderr.text };
}

async function withDataDir(fn: (dataDir: string, files: string) => Promise<void>): Promise<void> {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'balupi-cmd-'));
  try {
    const files = path.join(root, 'in');
    await fs.mkdir(files);
    const dataDir = path.join(root, 'data');
    await fs.mkdir(dataDir);
    await fn(dataDir, files);
  } finally {
    await fs.rm(root, { recursive: true, force: true });
  }
}

/** Opens the store in this process (taking the LevelDB lock, as a daemon would) and serves the local API on the socket. */
async function withDaemon(dataDir: string, fn: (store: Store) => Promise<void>): Promise<void> {
  const store = await openStore({ dir: path.join(dataDir, 'store') });
  const app = Fastify();
  await app.register(localStoreRoutes, { store });
  await app.listen({ path: path.join(dataDir, 'balupi.sock') });
  try {
    await fn(store);
  } finally {
    await app.close();
    await store.close();
  }
}

/** The same scenario through whichever path the commands choose. */
async function exerciseCommands(dataDir: string, files: string): Promise<void> {
  const a = randomBytes(3_000_000);
  const b = randomBytes(10_000);
  await fs.writeFile(path.join(files, 'a.bin'), a);
  await fs.writeFile(path.join(files, 'b.txt'), b);
  await fs.writeFile(path.join(files, 'empty'), '');

  const ing = await run(dataDir, 'ingest', path.join(files, 'a.bin'), path.join(files, 'b.txt'), path.join(files, 'empty'), '--json');
  assert.equal(ing.code, 0, ing.err);
  const results = JSON.parse(ing.text) as Record<string, unknown>[];
  assert.deepEqual(results.map((r) => [r.path, r.size, r.hash, r.new_bytes]), [
    ['a.bin', a.length, blake3().hash(a).toString('hex'), a.length],
    ['b.txt', b.length, blake3().hash(b).toString('hex'), b.length],
    ['empty', 0, blake3().hash(Buffer.alloc(0)).toString('hex'), 0],
  ]);
  assert.ok((results[0]!.chunks as number) >= 1 && results[0]!.new_chunks === results[0]!.chunks);

  const again = await run(dataDir, 'ingest', path.join(files, 'a.bin'), '--as', 'docs/copy of a.bin');
  assert.equal(again.code, 0, again.err);
  assert.match(again.text, /^docs\/copy of a\.bin\t3000000 bytes\tblake3 [0-9a-f]{64}\t\d+ chunks \(0 new, 0 B new\)\n$/);

  const catA = await run(dataDir, 'cat', 'docs/copy of a.bin');
  assert.equal(catA.code, 0, catA.err);
  assert.ok(catA.out.equals(a), 'cat writes exactly the stored bytes');

  const ls = await run(dataDir, 'ls', '--json');
  assert.deepEqual((JSON.parse(ls.text) as { name: string; type: string }[]).map((e) => `${e.type}:${e.name}`), ['file:a.bin', 'file:b.txt', 'dir:docs', 'file:empty']);
  const lsText = await run(dataDir, 'ls', 'docs');
  assert.match(lsText.text, /^\s+3000000 {2}\d{4}-\d\d-\d\d \d\d:\d\d:\d\d {2}local {7}copy of a\.bin\n$/);

  const st = JSON.parse((await run(dataDir, 'stats', '--json')).text) as Record<string, number>;
  assert.equal(st.files, 4);
  assert.equal(st.logical_bytes, 2 * a.length + b.length);
  assert.equal(st.stored_bytes, a.length + b.length);
  assert.equal(st.dirty_bytes, a.length + b.length);
  assert.ok(Math.abs(st.dedup_ratio! - (2 * a.length + b.length) / (a.length + b.length)) < 1e-9);
  assert.match((await run(dataDir, 'stats')).text, /dedup ratio +2\.00/);

  const rm = await run(dataDir, 'rm', 'a.bin');
  assert.equal(rm.code, 0, rm.err);
  assert.equal(rm.text, 'removed a.bin\n');
  const missing = await run(dataDir, 'cat', 'a.bin');
  assert.equal(missing.code, 1);
  assert.match(missing.err, /no such file: a\.bin \[not_found\]/);

  const fsck = await run(dataDir, 'fsck');
  assert.equal(fsck.code, 0, fsck.text + fsck.err);
  assert.match(fsck.text, /^fsck: ok \(3 files, \d+ chunks/);
  const gc = JSON.parse((await run(dataDir, 'gc', '--json')).text) as Record<string, number>;
  assert.deepEqual(gc, { temp_files: 0, orphan_files: 0, orphan_bytes: 0, staged_chunks: 0, staged_bytes: 0 });
}

/** Flips a byte in one chunk file of `name`; returns how many bytes of the file precede that chunk. */
async function corrupt(store: Store, dataDir: string, name: string, k: number): Promise<number> {
  const rec = await store.stat(name);
  const c = rec.chunks[k]!;
  const p = path.join(dataDir, 'store', 'chunks', c.hash.slice(0, 2), c.hash);
  const bytes = await fs.readFile(p);
  bytes[7]! ^= 0xff;
  await fs.writeFile(p, bytes);
  return rec.chunks.slice(0, k).reduce((s, x) => s + x.size, 0);
}

describe('store commands, direct', () => {
  test('ingest / cat / ls / rm / stats / fsck / gc on a data directory nobody else holds', async () => {
    await withDataDir(exerciseCommands);
  });

  test('bad input: directories, bad names, --as with several files, unknown flags, missing arguments', async () => {
    await withDataDir(async (dataDir, files) => {
      await fs.writeFile(path.join(files, 'x'), 'x');
      const dir = await run(dataDir, 'ingest', files);
      assert.equal(dir.code, 1);
      assert.match(dir.err, /is not a regular file/);
      const bad = await run(dataDir, 'ingest', path.join(files, 'x'), '--as', '../escape');
      assert.equal(bad.code, 1);
      assert.match(bad.err, /invalid name "\.\.\/escape".*\[invalid_name\]/);
      const nul = await run(dataDir, 'ingest', path.join(files, 'x'), '--as', 'a\0b');
      assert.equal(nul.code, 1);
      assert.match(nul.err, /NUL/);
      assert.equal((await run(dataDir, 'ingest', path.join(files, 'x'), path.join(files, 'x'), '--as', 'y')).code, 2);
      const unknown = await run(dataDir, 'ls', '--bogus');
      assert.equal(unknown.code, 2);
      assert.match(unknown.err, /usage: balupi ls/);
      assert.equal((await run(dataDir, 'cat')).code, 2);
      assert.equal((await run(dataDir, 'ingest')).code, 2);
      assert.deepEqual(JSON.parse((await run(dataDir, 'ls', '--json')).text), [], 'nothing was stored');
    });
  });

  test('fsck exits 1 and lists a corrupted chunk; cat of that file fails after writing only correct bytes', async () => {
    await withDataDir(async (dataDir, files) => {
      const data = randomBytes(9_000_000);
      await fs.writeFile(path.join(files, 'big'), data);
      assert.equal((await run(dataDir, 'ingest', path.join(files, 'big'))).code, 0);
      const store = await openStore({ dir: path.join(dataDir, 'store') });
      const before = await corrupt(store, dataDir, 'big', 1);
      const hash = (await store.stat('big')).chunks[1]!.hash;
      await store.close();
      const fsck = await run(dataDir, 'fsck', '--json');
      assert.equal(fsck.code, 1);
      const report = JSON.parse(fsck.text) as { ok: boolean; problems: { kind: string; hash: string }[] };
      assert.equal(report.ok, false);
      assert.deepEqual(report.problems.map((p) => [p.kind, p.hash]), [['corrupt_chunk', hash]]);
      const text = await run(dataDir, 'fsck');
      assert.match(text.text, new RegExp(`corrupt_chunk\\t${hash}`));
      const cat = await run(dataDir, 'cat', 'big');
      assert.equal(cat.code, 1);
      assert.match(cat.err, /corrupt_chunk/);
      assert.ok(cat.out.length <= before && cat.out.equals(data.subarray(0, cat.out.length)));
    });
  });
});

describe('store commands through a running daemon', () => {
  test('with the store locked by the daemon, every command works over <dataDir>/balupi.sock', async () => {
    await withDataDir(async (dataDir, files) => {
      await withDaemon(dataDir, async (store) => {
        await exerciseCommands(dataDir, files);
        assert.equal(store.stats().files, 3, 'the commands changed the daemon\'s store');
      });
    });
  });

  test('through the daemon, a corrupted chunk fails cat with exit 1 after only correct bytes, and fsck reports it', async () => {
    await withDataDir(async (dataDir, files) => {
      const data = randomBytes(9_000_000);
      await fs.writeFile(path.join(files, 'big'), data);
      await withDaemon(dataDir, async (store) => {
        assert.equal((await run(dataDir, 'ingest', path.join(files, 'big'))).code, 0);
        const before = await corrupt(store, dataDir, 'big', 2);
        const cat = await run(dataDir, 'cat', 'big');
        assert.equal(cat.code, 1);
        assert.match(cat.err, /the daemon stopped the transfer after \d+ of 9000000 bytes/);
        assert.ok(cat.out.length <= before, `${cat.out.length} bytes written, the corrupt chunk starts at ${before}`);
        assert.ok(cat.out.equals(data.subarray(0, cat.out.length)));
        assert.equal((await run(dataDir, 'fsck')).code, 1);
        const bad = await run(dataDir, 'rm', 'no/such');
        assert.equal(bad.code, 1);
        assert.match(bad.err, /\[not_found\]/);
      });
    });
  });

  test('store locked and no daemon on the socket: exit 2 with a message naming the data directory', async () => {
    await withDataDir(async (dataDir) => {
      const holder = await openStore({ dir: path.join(dataDir, 'store') });
      try {
        const r = await run(dataDir, 'stats');
        assert.equal(r.code, 2);
        assert.ok(r.err.includes(dataDir), r.err);
        assert.match(r.err, /locked by another process, and no balupi daemon answers on .*balupi\.sock/);
      } finally {
        await holder.close();
      }
    });
  });
});
