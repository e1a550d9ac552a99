// The pool of chunk-size buffers that received gRPC messages are read into (grpc-frames.ts), kept apart from the
// framing because its users reach well past it: transfer.ts gives the buffers back once chunks are stored,
// whole-hashes.ts lends them to the store's hash worker, and commit-batch-call.ts lays the Pi's requests out in them.

/**
 * Buffers for received messages of chunk size, reused once the receiver has stored the chunk (transfer.ts gives them
 * back after each stored batch). Receiving 1 GB otherwise allocates 1 GB of fresh buffers, which V8 collects with
 * full mark-sweeps (external memory): on the Pi's side of a pull that was ~10 % of the main thread and more than a
 * core-second of GC threads. The Pi's CommitBatch requests come from here too (commit-batch-call.ts). Smaller messages
 * take ordinary buffers; a buffer not given back is simply collected.
 */
class MessageBuffers {
  static readonly MIN = 64 * 1024;
  static readonly STEP = 256 * 1024;
  readonly #free = new Set<ArrayBuffer>();
  readonly #mine = new WeakSet<ArrayBuffer>();
  #freeBytes = 0;
  readonly #maxFreeBytes: number;

  constructor(maxFreeBytes: number) {
    this.#maxFreeBytes = maxFreeBytes;
  }

  take(len: number): Buffer {
    if (len < MessageBuffers.MIN) return Buffer.allocUnsafe(len);
    let best: ArrayBuffer | undefined;
    for (const ab of this.#free) if (ab.byteLength >= len && (!best || ab.byteLength < best.byteLength)) best = ab;
    if (best) {
      this.#free.delete(best);
      this.#freeBytes -= best.byteLength;
    } else {
      best = new ArrayBuffer(Math.ceil(len / MessageBuffers.STEP) * MessageBuffers.STEP);
      this.#mine.add(best);
    }
    return Buffer.from(best, 0, len);
  }

  /**
   * `data` in a buffer whose whole ArrayBuffer may be transferred to a worker (nothing else uses it): `data` itself
   * when it lies in one of ours (a received message), else a copy (and `data` is given back).
   */
  own(data: Uint8Array): Buffer {
    const ab = data.buffer;
    if (ab instanceof ArrayBuffer && this.#mine.has(ab)) return Buffer.from(ab, data.byteOffset, data.length);
    const copy = Buffer.from(new ArrayBuffer(data.length));
    copy.set(data);
    if (data.length >= MessageBuffers.MIN) this.#mine.add(copy.buffer as ArrayBuffer);
    this.give(data);
    return copy;
  }

  /** A buffer of ours back from a worker (transferred there and back: the same memory, a new object). */
  adopt(ab: ArrayBuffer): void {
    if (ab.byteLength >= MessageBuffers.MIN) this.#mine.add(ab);
  }

  /** Gives back the buffer under `view` if it is one of ours; nothing may use `view` afterwards. */
  give(view: Uint8Array): void {
    const ab = view.buffer;
    if (!(ab instanceof ArrayBuffer) || !this.#mine.has(ab) || this.#free.has(ab)) return;
    if (this.#freeBytes + ab.byteLength > this.#maxFreeBytes) return;
    this.#free.add(ab);
    this.#freeBytes += ab.byteLength;
  }
}

export const messageBuffers = new MessageBuffers(32 * 1024 * 1024);
