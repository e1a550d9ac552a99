// Reusable buffers for the chunk workers to read into, for readers that can say when a chunk's bytes are no longer
// referenced (ChunkReadStream when piped: once the destination's write callback has fired). A fresh buffer per
// chunk costs the main thread garbage collection: each 1 MiB ArrayBuffer that arrives from a worker is external
// memory that V8 collects with a full mark-sweep, ~9 % of the main thread while a download streams.
// SharedArrayBuffers, because a transferred ArrayBuffer arrives as a new object (and new external memory) each time.

/** Buffer sizes are powers of two from this size up, so that a buffer serves every chunk of its size class. */
const MIN_CLASS = 64 * 1024;

/** The size of the buffers that serve chunks of `size` bytes. */
function classOf(size: number): number {
  return Math.max(MIN_CLASS, 2 ** Math.ceil(Math.log2(Math.max(size, 1))));
}

export class ReadBuffers {
  /** Idle buffers by size class. */
  private readonly free = new Map<number, SharedArrayBuffer[]>();
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
    const buf = this.free.get(classOf(size))?.pop();
    if (!buf) return new SharedArrayBuffer(classOf(size));
    this.freeBytes -= buf.byteLength;
    return buf;
  }

  /** Returns a buffer nothing references any more; kept for reuse while the free ones stay under the cap. */
  give(buf: SharedArrayBuffer): void {
    this.inUse--;
    if (this.freeBytes + buf.byteLength > this.maxFreeBytes) return;
    const list = this.free.get(buf.byteLength) ?? [];
    list.push(buf);
    this.free.set(buf.byteLength, list);
    this.freeBytes += buf.byteLength;
  }
}
