// Every record from a peer is validated like user input before anything acts on it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { create } from '@bufbuild/protobuf';
import { FileInfoSchema } from '../../src/gen/balupi/sync/v1/sync_pb.js';
import { bytesToHash, fromFileInfo, hashesFrom, sameContent, toFileInfo } from '../../src/sync/wire.ts';

const H = 'ab'.repeat(32);
const good = () => create(FileInfoSchema, { path: 'a/b.txt', size: 10n, mtimeMs: 1_700_000_000_123n, mode: 0o640, hash: Buffer.from(H, 'hex'), chunks: [{ hash: Buffer.from(H, 'hex'), size: 10 }], version: 3n, sequence: 9n });

test('a valid record round-trips through the wire form', () => {
  const r = fromFileInfo(good());
  assert.deepEqual(r, { path: 'a/b.txt', size: 10, mtimeMs: 1_700_000_000_123, mode: 0o640, hash: H, sha256: null, chunks: [{ hash: H, size: 10 }], version: 3, seq: 9, deleted: false });
  assert.deepEqual(fromFileInfo(toFileInfo(r)), r);
  const withSha = { ...r, sha256: 'cd'.repeat(32) };
  assert.deepEqual(fromFileInfo(toFileInfo(withSha)), withSha, 'the SHA-256 travels when known');
  const tomb = fromFileInfo(create(FileInfoSchema, { path: 'gone.txt', deleted: true, version: 4n }));
  assert.equal(tomb.deleted, true);
  assert.equal(tomb.hash, '');
});

test('paths that could escape or alias are refused: .., absolute, NUL, control characters, backslash, empty segments', () => {
  for (const path of ['../x', 'a/../../x', '/etc/passwd', 'a\0b', 'a\nb', 'a\\b', 'a//b', './a', 'a/', '', 'C:/x']) {
    const info = good();
    info.path = path;
    assert.throws(() => fromFileInfo(info), (err: { code?: string }) => err.code === 'invalid_name', JSON.stringify(path));
  }
});

test('hashes must be 32 bytes, sizes must add up, modes must be permission bits, tombstones carry nothing', () => {
  const cases: [string, (i: ReturnType<typeof good>) => void][] = [
    ['short file hash', (i) => (i.hash = new Uint8Array(31))],
    ['SHA-256 of 31 bytes', (i) => (i.sha256 = new Uint8Array(31))],
    ['long chunk hash', (i) => (i.chunks[0]!.hash = new Uint8Array(33))],
    ['sizes do not add up', (i) => (i.size = 11n)],
    ['zero-size chunk', (i) => ((i.chunks[0]!.size = 0), (i.size = 0n))],
    ['mode beyond 0o7777', (i) => (i.mode = 0o10000)],
    ['size beyond 2^53', (i) => (i.size = 2n ** 60n)],
    ['tombstone with chunks', (i) => (i.deleted = true)],
  ];
  for (const [what, mutate] of cases) {
    const info = good();
    mutate(info);
    assert.throws(() => fromFileInfo(info), (err: { code?: string }) => err.code === 'invalid_argument', what);
  }
  assert.throws(() => bytesToHash(new Uint8Array(0)), /32 bytes/);
  assert.throws(() => hashesFrom(Array.from({ length: 10_001 }, () => new Uint8Array(32))), /at most 10000/);
});

test('sameContent compares content, not versions; missing equals deleted', () => {
  assert.equal(sameContent({ hash: H, deleted: false }, { hash: H, deleted: false }), true);
  assert.equal(sameContent({ hash: H, deleted: false }, { hash: 'cd'.repeat(32), deleted: false }), false);
  assert.equal(sameContent(undefined, { hash: '', deleted: true }), true);
  assert.equal(sameContent(undefined, { hash: H, deleted: false }), false);
  assert.equal(sameContent({ hash: H, deleted: true }, { hash: '', deleted: true }), true);
});
