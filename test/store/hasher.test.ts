import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { blake3 } from '../../store/hasher.ts';
import type { Blake3 } from '../../store/hasher.ts';

// Published vectors: BLAKE3-team/BLAKE3 test_vectors/test_vectors.json, "hash" field, first 32 bytes (the default
// output length). Input: byte i = i % 251.
const VECTORS: [number, string][] = [
  [0, 'af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262'],
  [1, '2d3adedff11b61f14c886e35afa036736dcd87a74d27b5c1510225d0f592e213'],
  [1023, '10108970eeda3eb932baac1428c7a2163b0e924c9a9e25b35bba72b28f70bd11'],
  [1024, '42214739f095a406f3fc83deb889744ac00df831c10daa55189b5d121c855af7'],
  [1025, 'd00278ae47eb27b34faecf67b4fe263f82d5412916c1ffd97c8cb7fb814b8444'],
  [2048, 'e776b6028c7cd22a4d0ba182a8bf62205d2ef576467e838ed6f2529b85fba24a'],
  [8193, 'bab6c09cb8ce8cf459261398d2e7aef35700bf488116ceb94a36d0f5f1b7bc3b'],
  [31744, '62b6960e1a44bcc1eb1a611a8d6235b6b4b78f32e7abc4fb4c6cdcce94895c47'],
  [102400, 'bc3e3d41a1146b069abffad3c0d44860cf664390afce4d9661f7902e7943e085'],
];

function vectorInput(len: number): Buffer {
  const b = Buffer.alloc(len);
  for (let i = 0; i < len; i++) b[i] = i % 251;
  return b;
}

const impls: Blake3[] = [blake3('native'), blake3('wasm')];

for (const impl of impls) {
  describe(`BLAKE3 ${impl.name}`, () => {
    test('one-shot digests match the published test vectors', () => {
      for (const [len, hex] of VECTORS) assert.equal(impl.hash(vectorInput(len)).toString('hex'), hex, `input_len ${len}`);
    });

    test('incremental digests match the vectors whatever the update sizes', () => {
      for (const [len, hex] of VECTORS) {
        const input = vectorInput(len);
        const h = impl.create();
        let off = 0;
        let step = 1;
        while (off < len) {
          h.update(input.subarray(off, off + step));
          off += step;
          step = (step * 7 + 3) % 1500 || 1; // irregular split points, crossing BLAKE3's 1024-byte chunk edges
        }
        assert.equal(h.digest().toString('hex'), hex, `input_len ${len}`);
      }
    });

    test('a disposed, never-digested hasher does not break later hashing', () => {
      const h = impl.create();
      h.update(randomBytes(4096));
      h.dispose();
      assert.equal(impl.hash(vectorInput(1024)).toString('hex'), VECTORS[3]![1]);
    });
  });
}

test('native and wasm agree on random inputs of awkward sizes', () => {
  const [native, wasm] = impls as [Blake3, Blake3];
  for (const len of [3, 1000, 4095, 65537, 1_048_577]) {
    const data = randomBytes(len);
    assert.deepEqual(native.hash(data), wasm.hash(data), `length ${len}`);
  }
});

test("'auto' picks the native implementation here (its prebuild exists for linux x64)", () => {
  assert.equal(blake3('auto').name, 'native');
});
