// BLAKE3 (32-byte digests) behind one small interface, with two implementations that must produce the same digests:
//
//   native  @napi-rs/blake-hash (Rust blake3 crate, prebuilt for linux x64/arm64/armv7): SIMD, ~4 GB/s on the dev VM
//   wasm    blake3-wasm@2.1.5 (scalar WebAssembly):                                     ~0.4 GB/s on the dev VM
//
// (bench/store.ts measures both.) On the Pi 3B+ the CPU is the scarce resource, so the native one is preferred. It is
// loaded lazily and checked against a published test vector before use; if the addon is missing for the platform or
// disagrees, the store silently keeps working on the wasm build. blake3-wasm@3 cannot be installed (see DESIGN.md).

import { createRequire } from 'node:module';
import { StoreError } from './errors.ts';

export const HASH_BYTES = 32;

export interface IncrementalHash {
  update(data: Uint8Array): void;
  /** 32-byte digest; the hasher must not be used afterwards. */
  digest(): Buffer;
  /** Releases resources of a hasher abandoned before digest() (the wasm build holds WebAssembly memory). */
  dispose(): void;
}

export interface Blake3 {
  readonly name: 'native' | 'wasm';
  create(): IncrementalHash;
  hash(data: Uint8Array): Buffer;
}

interface NativeModule {
  Blake3Hasher: new () => { update(input: Uint8Array): unknown; digestBuffer(): Buffer };
  blake3(input: Uint8Array): Buffer;
}

interface WasmModule {
  createHash(): { update(input: Uint8Array): unknown; digest(): Buffer; dispose(): void };
  hash(input: Uint8Array): Buffer;
}

const require = createRequire(import.meta.url);

// BLAKE3 of the empty input, from BLAKE3-team/BLAKE3 test_vectors/test_vectors.json (input_len 0).
const EMPTY_DIGEST = 'af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262';

let nativeImpl: Blake3 | null | undefined;
let nativeLoadError: unknown;
let wasmImpl: Blake3 | undefined;

function loadNative(): Blake3 | null {
  if (nativeImpl !== undefined) return nativeImpl;
  try {
    const mod = require('@napi-rs/blake-hash') as NativeModule;
    const impl: Blake3 = {
      name: 'native',
      create() {
        const h = new mod.Blake3Hasher();
        return {
          update(data) {
            h.update(data);
          },
          digest: () => h.digestBuffer(),
          dispose() {},
        };
      },
      hash: (data) => mod.blake3(data),
    };
    if (impl.hash(new Uint8Array(0)).toString('hex') !== EMPTY_DIGEST) throw new Error('native BLAKE3 self-check failed');
    nativeImpl = impl;
  } catch (err) {
    nativeLoadError = err;
    nativeImpl = null;
  }
  return nativeImpl;
}

function loadWasm(): Blake3 {
  if (wasmImpl) return wasmImpl;
  const mod = require('blake3-wasm') as WasmModule;
  wasmImpl = {
    name: 'wasm',
    create() {
      const h = mod.createHash();
      let done = false;
      return {
        update(data) {
          h.update(data);
        },
        digest() {
          done = true;
          return h.digest(); // digest() also frees the WebAssembly state
        },
        dispose() {
          if (!done) h.dispose();
          done = true;
        },
      };
    },
    hash: (data) => mod.hash(data),
  };
  return wasmImpl;
}

export type Blake3Choice = 'auto' | 'native' | 'wasm';

/** 'auto' = native if it loads and passes its self-check, else wasm. Asking for 'native' explicitly throws if absent. */
export function blake3(choice: Blake3Choice = 'auto'): Blake3 {
  if (choice === 'wasm') return loadWasm();
  const native = loadNative();
  if (native) return native;
  if (choice === 'native') throw new Error('native BLAKE3 is not available', { cause: nativeLoadError });
  return loadWasm();
}

/** Why the native implementation is not in use (for `stats`/logs), or null when it is. */
export function nativeBlake3Problem(): string | null {
  loadNative();
  return nativeImpl ? null : String((nativeLoadError as Error | undefined)?.message ?? nativeLoadError);
}

export function toHex(digest: Uint8Array): string {
  return Buffer.from(digest.buffer, digest.byteOffset, digest.byteLength).toString('hex');
}

const HEX_HASH = /^[0-9a-f]{64}$/;
export function isHexHash(s: unknown): s is string {
  return typeof s === 'string' && HEX_HASH.test(s);
}

/** Refuses anything but a BLAKE3 hex hash (a chunk's name) as 'invalid_argument'. */
export function checkHexHash(s: unknown): asserts s is string {
  if (!isHexHash(s)) throw new StoreError('invalid_argument', `not a BLAKE3 hex hash: ${JSON.stringify(s)}`);
}
