// BLAKE3 for the worker threads (store/chunk-worker.js, src/sync/root-file-worker.js): the implementation the main
// thread chose (hasher.ts: 'native' or 'wasm'; same digests either way). Plain JavaScript, as the workers are.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** @returns {{ create(): { update(d: Uint8Array): void, digest(): Buffer, dispose(): void }, hash(d: Uint8Array): Buffer }} */
export function workerHasher(name) {
  if (name === 'native') {
    const mod = require('@napi-rs/blake-hash');
    return {
      create() {
        const h = new mod.Blake3Hasher();
        return { update: (d) => void h.update(d), digest: () => h.digestBuffer(), dispose() {} };
      },
      hash: (d) => mod.blake3(d),
    };
  }
  const mod = require('blake3-wasm');
  return {
    create() {
      const h = mod.createHash();
      let done = false;
      return {
        update: (d) => void h.update(d),
        digest: () => ((done = true), h.digest()),
        dispose: () => void (done || h.dispose()),
      };
    },
    hash: (d) => mod.hash(d),
  };
}
