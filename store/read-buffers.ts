// Reusable buffers for the chunk workers to read into, for readers that can say when a chunk's bytes are no longer
// referenced (ChunkReadStream when piped: once the destination's write callback has fired). A fresh buffer per
// chunk costs the main thread garbage collection: each 1 MiB ArrayBuffer that arrives from a worker is external
// memory that V8 collects with a full mark-sweep, ~9 % of the main thread while a download streams.
// SharedArrayBuffers, because a transferred ArrayBuffer arrives as a new object (and new external memory) each time.

/** Buffers are allocated in steps of this size, so one serves chunks of nearby sizes. */
const STEP = 1024 * 1024;

export class ReadBuffers {
  private readonly free: SharedArrayBuffer[] = [];
  private freeBytes = 0;
  private readonly maxFreeBytes: number;
  /** Buffers taken and not given back yet (observable, for tests: a finished or abandoned read gives back all). */
  inUse = 0;

  constructor(maxFreeBytes: number) {
    this.maxFreeBytes = maxFreeBytes;
  }

  /** A buffer of at least `size` bytes, owned by the caller until give(). */
  take(size: number): SharedArrayBuffer {
    this.inUse++;
    const i = this.free.findIndex((b) => b.byteLength >= size);
    if (i < 0) return new SharedArrayBuffer(Math.ceil(Math.max(size, 1) / STEP) * STEP);
    const buf = this.free.splice(i, 1)[0]!;
    this.freeBytes -= buf.byteLength;
    return buf;
  }

  /** Returns a buffer nothing references any more; kept for reuse while the free ones stay under the cap. */
  give(buf: SharedArrayBuffer): void {
    this.inUse--;
    if (this.freeBytes + buf.byteLength > this.maxFreeBytes) return;
    this.free.push(buf);
    this.freeBytes += buf.byteLength;
  }
}
