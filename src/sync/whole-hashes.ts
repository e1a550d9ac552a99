// Whole-file hashes of pushed large files, taken as their chunks arrive. A commit checks that a version's chunks hash
// to its whole-file hash, which for a file staged around the page cache meant reading it all back from disk (a pushed
// gigabyte: ~1 s longer and ~2 s of system time on the dev VM). When a staging file's chunks arrive in order from its
// start, each already checked against its own hash, hashing them in a row as they pass makes that check: a commit
// whose chunk list is exactly what arrived needs no read-back. Anything else (a gap, a resumed upload that skipped
// chunks, a repeated chunk sent once) is simply not vouched for, and the commit reads back as before.

import { blake3, toHex, type IncrementalHash } from '../../store/index.ts';

/** Staging files hashed at the same time; the oldest is dropped beyond this (an abandoned upload). */
const MAX_STREAMS = 16;
/** Finished files remembered until their commit. */
const MAX_DONE = 64;

interface Stream {
  /** The offset the next chunk must start at. */
  next: number;
  whole: IncrementalHash;
  /** Over the chunk list (hash and size of each, in order), to compare with a commit's. */
  list: IncrementalHash;
}

export class WholeHashes {
  readonly #streams = new Map<string, Stream>();
  /** Per staging file whose chunks hashed to its whole-file hash: the digest of their list. */
  readonly #done = new Map<string, string>();

  /**
   * A checked chunk for `stage` (whose name carries `fileHash`), of a file of `fileSize` bytes, at `offset`. Chunks
   * must come in order: one at offset 0 starts the file afresh, any other that does not follow on drops it.
   */
  add(stage: string, fileHash: string, fileSize: number, offset: number, hash: string, data: Uint8Array): void {
    let s = this.#streams.get(stage);
    if (offset === 0) {
      this.#drop(stage);
      s = { next: 0, whole: blake3().create(), list: blake3().create() };
      this.#streams.set(stage, s);
      this.#done.delete(stage);
      while (this.#streams.size > MAX_STREAMS) this.#drop(this.#streams.keys().next().value!);
    }
    if (!s || s.next !== offset) return this.#drop(stage);
    s.whole.update(data);
    s.list.update(listEntry(hash, data.length));
    s.next += data.length;
    if (s.next < fileSize) return;
    const whole = toHex(s.whole.digest());
    const list = toHex(s.list.digest());
    this.#drop(stage);
    if (s.next !== fileSize || whole !== fileHash) return;
    this.#done.set(stage, list);
    while (this.#done.size > MAX_DONE) this.#done.delete(this.#done.keys().next().value!);
  }

  /** Whether the chunks listed arrived for `stage`, in this order, and hashed to its whole-file hash. */
  vouches(stage: string, chunks: readonly { hash: string; size: number }[]): boolean {
    const want = this.#done.get(stage);
    if (want === undefined) return false;
    const list = blake3().create();
    try {
      for (const c of chunks) list.update(listEntry(c.hash, c.size));
      return toHex(list.digest()) === want;
    } finally {
      list.dispose();
    }
  }

  #drop(stage: string): void {
    const s = this.#streams.get(stage);
    if (!s) return;
    this.#streams.delete(stage);
    s.whole.dispose();
    s.list.dispose();
  }
}

function listEntry(hash: string, size: number): Buffer {
  return Buffer.from(`${hash}:${size}\n`);
}
