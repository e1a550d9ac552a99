import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { Chunker, chunkStream, DEFAULT_CHUNK_PARAMS } from '../../store/chunker.ts';
import type { ChunkParams } from '../../store/chunker.ts';

const SMALL: ChunkParams = { minSize: 4096, avgSize: 16384, maxSize: 65536 };

function prng(len: number, seed: number): Buffer {
  const b = Buffer.alloc(len);
  let x = seed >>> 0;
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

/** Chunk lengths from feeding `data` in pieces of the given sizes (cycled). */
function lengths(data: Uint8Array, params: ChunkParams, pieceSizes: number[] = [data.length]): number[] {
  const c = new Chunker(params);
  const out: number[] = [];
  let chunkStart = 0;
  let off = 0;
  let k = 0;
  while (off < data.length) {
    const n = Math.max(1, pieceSizes[k++ % pieceSizes.length]!);
    const piece = data.subarray(off, off + n);
    for (const cut of c.push(piece)) {
      out.push(off + cut - chunkStart);
      chunkStart = off + cut;
    }
    off += piece.length;
  }
  const last = c.finish();
  if (last > 0) out.push(last);
  assert.equal(chunkStart + last, data.length);
  return out;
}

// The specification, written the slow and obvious way: the same gear table (mulberry32 from "BALU"), hash bytes from
// minSize on, stricter mask (avg bits + 2, high bits) below avgSize, looser (avg bits - 2) from avgSize, cut at maxSize.
function referenceLengths(data: Uint8Array, p: ChunkParams): number[] {
  const gear: number[] = [];
  let seed = 0x42414c55;
  for (let i = 0; i < 256; i++) {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = seed;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    gear.push((t ^ (t >>> 14)) >>> 0);
  }
  const bits = Math.log2(p.avgSize);
  const high = (n: number): number => (0xffffffff << (32 - n)) >>> 0;
  const maskS = high(bits + 2);
  const maskL = high(bits - 2);
  const out: number[] = [];
  let start = 0;
  while (start < data.length) {
    const remaining = data.length - start;
    let len = Math.min(p.maxSize, remaining);
    let h = 0;
    for (let j = p.minSize; j < Math.min(p.maxSize, remaining); j++) {
      h = (h * 2 + gear[data[start + j]!]!) % 2 ** 32;
      if ((h & (j < p.avgSize ? maskS : maskL)) >>> 0 === 0) {
        len = j + 1;
        break;
      }
    }
    out.push(len);
    start += len;
  }
  return out;
}

describe('FastCDC chunker', () => {
  test('matches the plain reference implementation of the specification', () => {
    for (const [seed, len] of [[1, 3 << 20], [2, 100_000], [3, 4097], [4, 65536 * 3]] as const) {
      const data = prng(len, seed);
      assert.deepEqual(lengths(data, SMALL), referenceLengths(data, SMALL), `seed ${seed}`);
    }
    const big = randomBytes(12 << 20);
    assert.deepEqual(lengths(big, DEFAULT_CHUNK_PARAMS), referenceLengths(big, DEFAULT_CHUNK_PARAMS));
  });

  test('golden vector: cut points are part of the storage format and must never change', () => {
    const lens = lengths(prng(2 << 20, 1), SMALL);
    assert.equal(lens.length, 108);
    assert.deepEqual(lens.slice(0, 12), [17815, 18452, 16976, 29354, 17378, 20849, 18333, 22339, 19678, 21380, 18696, 11179]);
    const cuts = new Chunker(DEFAULT_CHUNK_PARAMS).push(prng(16 << 20, 7));
    assert.deepEqual(cuts.slice(0, 4), [1390446, 2667329, 3946723, 5070311]);
  });

  test('boundaries do not depend on read sizes (random splits, including 1-byte reads)', () => {
    const data = randomBytes(2 << 20);
    const whole = lengths(data, SMALL);
    for (let trial = 0; trial < 25; trial++) {
      const sizes = Array.from({ length: 17 }, () => {
        const r = Math.random();
        return r < 0.2 ? 1 + Math.floor(Math.random() * 8) : r < 0.6 ? Math.floor(Math.random() * 5000) : Math.floor(Math.random() * 200_000);
      });
      assert.deepEqual(lengths(data, SMALL, sizes), whole, `piece sizes ${sizes.join(',')}`);
    }
    assert.deepEqual(lengths(data.subarray(0, 300_000), SMALL, [1]), lengths(data.subarray(0, 300_000), SMALL));
  });

  test('chunkStream yields the same chunks for any stream piece sizes, with default sizes', async () => {
    const data = randomBytes(24 << 20);
    const collect = async (pieces: Buffer[]): Promise<Buffer[]> => {
      const out: Buffer[] = [];
      for await (const c of chunkStream(Readable.from(pieces))) out.push(Buffer.from(c));
      return out;
    };
    const whole = await collect([data]);
    const split: Buffer[] = [];
    for (let off = 0; off < data.length; ) {
      const n = 1 + Math.floor(Math.random() * 300_000);
      split.push(data.subarray(off, off + n));
      off += n;
    }
    const pieces = await collect(split);
    assert.deepEqual(pieces.map((c) => c.length), whole.map((c) => c.length));
    assert.ok(Buffer.concat(pieces).equals(data), 'concatenated chunks must equal the input');
    for (const c of whole.slice(0, -1)) {
      assert.ok(c.length >= DEFAULT_CHUNK_PARAMS.minSize && c.length <= DEFAULT_CHUNK_PARAMS.maxSize, `chunk of ${c.length} bytes`);
    }
  });

  test('sizes stay within min/max, and zero-filled input (no content boundaries) cuts at maxSize', () => {
    const lens = lengths(randomBytes(4 << 20), SMALL);
    for (const l of lens.slice(0, -1)) assert.ok(l >= SMALL.minSize && l <= SMALL.maxSize, `chunk of ${l}`);
    const mean = lens.reduce((a, b) => a + b, 0) / lens.length;
    assert.ok(mean > SMALL.minSize && mean < SMALL.maxSize / 2, `mean chunk ${mean}`);
    const zeros = lengths(Buffer.alloc(SMALL.maxSize * 3 + 5), SMALL);
    assert.deepEqual(zeros, [SMALL.maxSize, SMALL.maxSize, SMALL.maxSize, 5]);
  });

  test('empty and tiny inputs', async () => {
    assert.deepEqual(lengths(Buffer.alloc(0), SMALL), []);
    assert.deepEqual(lengths(Buffer.from('x'), SMALL), [1]);
    const out: Buffer[] = [];
    for await (const c of chunkStream(Readable.from([] as Buffer[]))) out.push(c);
    assert.equal(out.length, 0);
  });

  test('rejects parameters that would break the masks or bounds', () => {
    assert.throws(() => new Chunker({ minSize: 4096, avgSize: 10000, maxSize: 65536 }), /power of two/);
    assert.throws(() => new Chunker({ minSize: 32768, avgSize: 16384, maxSize: 65536 }), /minSize/);
    assert.throws(() => new Chunker({ minSize: 4096, avgSize: 16384, maxSize: 8192 }), /maxSize/);
  });

  test('chunkStream refuses text pieces (an object-mode or string stream is a caller bug)', async () => {
    await assert.rejects(async () => {
      for await (const _ of chunkStream(Readable.from(['text'], { objectMode: true }) as AsyncIterable<Uint8Array>)) void _;
    }, /binary data/);
  });
});
