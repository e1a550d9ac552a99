// Whole-file hashes of pushed large files, taken as their chunks arrive. A commit checks that a version's chunks hash
// to its whole-file hash, which for a file staged around the page cache meant reading it all back from disk (a pushed
// gigabyte: ~1 s longer and ~2 s of system time on the dev VM). When a staging file's chunks arrive in order from its
// start, each checked against its own hash, hashing them in a row as they pass makes that check: a commit whose chunk
// list is exactly what arrived needs no read-back. Anything else (a gap, a resumed upload that skipped chunks, a
// repeated chunk sent once) is simply not vouched for, and the commit reads back as before.
//
// Both hashes of a chunk are taken in one go in the store's worker thread (Store.hashSession), whose buffer travels
// there and back: on the hub's event loop, which also serves the uploads, commits and the root writer of a push, they
// cost ~0.7 s per pushed gigabyte.

import { blake3, toHex, type HashSession, type IncrementalHash } from '../../store/index.ts';
import { messageBuffers } from './message-buffers.ts';

/** Staging files hashed at the same time; the oldest is dropped beyond this (an abandoned upload). */
const MAX_STREAMS = 16;
/** Finished files remembered until their commit. */
const MAX_DONE = 64;

/** The hash of each chunk and of their run, in order. */
export interface RunHasher {
  /** The chunk's hash; `data` is the buffer now holding its bytes (the one passed in may be gone). */
  chunk(data: Uint8Array): Promise<{ hash: string; data: Uint8Array }>;
  /** The hash of every chunk passed in so far, in a row; ends the run. */
  digest(): Promise<string>;
  /** Ends the run without a digest. */
  drop(): void;
}

/** A run hashed in the store's worker (each chunk's buffer transferred there and back, nothing copied). */
export function workerRun(session: HashSession): RunHasher {
  return {
    async chunk(data) {
      const length = data.length;
      const { hash, buf } = await session.chunk(messageBuffers.own(data), length);
      messageBuffers.adopt(buf.buffer as ArrayBuffer);
      return { hash, data: buf.subarray(0, length) };
    },
    digest: () => session.digestBlake3(),
    drop: () => session.drop(),
  };
}

/** A run hashed on this thread (no worker). */
export function localRun(): RunHasher {
  const b3 = blake3();
  const whole = b3.create();
  return {
    chunk: async (data) => {
      whole.update(data);
      return { hash: b3.hash(data).toString('hex'), data };
    },
    digest: async () => toHex(whole.digest()),
    drop: () => whole.dispose(),
  };
}

interface Stream {
  /** The offset the next chunk must start at. */
  next: number;
  run: RunHasher;
  /** Over the chunk list (hash and size of each, in order), to compare with a commit's. */
  list: IncrementalHash;
}

export class WholeHashes {
  readonly #open: () => RunHasher;
  readonly #streams = new Map<string, Stream>();
  /** Per staging file whose chunks hashed to its whole-file hash: the digest of their list. */
  readonly #done = new Map<string, string>();

  constructor(open: () => RunHasher = localRun) {
    this.#open = open;
  }

  /**
   * Checks a chunk for `stage` (whose name carries `fileHash`), of a file of `fileSize` bytes, at `offset`: whether its
   * bytes hash to `hash`, and the buffer now holding them. Chunks must come in order: one at offset 0 starts the file
   * afresh; for any other that does not follow on, the file is dropped and undefined returned (the caller checks the
   * chunk itself).
   */
  async check(stage: string, fileHash: string, fileSize: number, offset: number, hash: string, data: Uint8Array): Promise<{ ok: boolean; data: Uint8Array } | undefined> {
    if (offset === 0) {
      this.#drop(stage);
      this.#done.delete(stage);
      this.#streams.set(stage, { next: 0, run: this.#open(), list: blake3().create() });
      while (this.#streams.size > MAX_STREAMS) this.#drop(this.#streams.keys().next().value!);
    }
    const s = this.#streams.get(stage);
    if (!s || s.next !== offset) return void this.#drop(stage);
    // Taken before the first await: the next chunk may be checked before this one's hash is back.
    s.next += data.length;
    s.list.update(listEntry(hash, data.length));
    const out = await s.run.chunk(data);
    const ok = out.hash === hash;
    if (this.#streams.get(stage) !== s) return { ok, data: out.data }; // dropped or begun afresh meanwhile
    if (!ok) this.#drop(stage);
    else if (s.next >= fileSize) {
      this.#streams.delete(stage);
      const list = toHex(s.list.digest());
      if (s.next === fileSize && (await s.run.digest()) === fileHash) {
        this.#done.set(stage, list);
        while (this.#done.size > MAX_DONE) this.#done.delete(this.#done.keys().next().value!);
      } else s.run.drop();
    }
    return { ok, data: out.data };
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
    s.run.drop();
    s.list.dispose();
  }
}

function listEntry(hash: string, size: number): Buffer {
  return Buffer.from(`${hash}:${size}\n`);
}
