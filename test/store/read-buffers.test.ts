// The pool of buffers chunk reads are leased into: a buffer serves the chunks of its size class (powers of two from
// 64 KiB), so a small chunk does not take a 4 MiB buffer nor a large one wait for a small one, and idle buffers are
// kept only up to the cap (the rest are left to the GC).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReadBuffers } from '../../store/read-buffers.ts';

test('buffers come in size classes and are reused within their class', () => {
  const pool = new ReadBuffers(8 * 1024 * 1024);
  const small = pool.take(10_000);
  assert.equal(small.byteLength, 64 * 1024, 'a 10 kB chunk takes a 64 KiB buffer');
  const large = pool.take(3 * 1024 * 1024 + 1);
  assert.equal(large.byteLength, 4 * 1024 * 1024);
  assert.equal(pool.take(1024 * 1024).byteLength, 1024 * 1024, 'exactly a power of two stays in its class');
  pool.give(small);
  pool.give(large);
  assert.equal(pool.take(50_000), small, 'a small chunk gets the idle small buffer back');
  assert.equal(pool.take(4 * 1024 * 1024), large, 'a large chunk gets the idle large buffer back');
  assert.equal(pool.inUse, 3);
});

test('idle buffers are kept up to the cap; a buffer given back beyond it is not kept', () => {
  const pool = new ReadBuffers(5 * 1024 * 1024);
  const [a, b] = [pool.take(4 * 1024 * 1024), pool.take(4 * 1024 * 1024)];
  pool.give(a);
  pool.give(b); // 8 MiB idle would pass the 5 MiB cap
  assert.equal(pool.take(4 * 1024 * 1024), a);
  assert.notEqual(pool.take(4 * 1024 * 1024), b, 'the second was not kept: a new buffer');
  assert.equal(pool.inUse, 2);
});
