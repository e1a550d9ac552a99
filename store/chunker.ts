// FastCDC content-defined chunking (Xia et al., USENIX ATC'16): gear rolling hash, cut-point skipping below the
// minimum size, and normalized chunking (NC level 2: a mask with 2 more bits below the average size, 2 fewer above).
//
// Cut points depend only on the bytes, never on how they arrive: the chunker is a push-style state machine (current
// chunk length + rolling hash) that can be fed any split of the input. test/store/chunker.test.ts checks this over
// random read sizes and pins a golden vector, because peers (Pi and hub) must agree on cut points forever: the gear
// table, the left shift and the high-bit masks below are part of the storage format.
//
// Sizes: 256 KiB / 1 MiB / 4 MiB (min/avg/max), chosen with `npx node bench/store.ts --params` (256 MiB random file,
// 2-vCPU dev VM; bench/STORE-RESULTS.md has the runs):
//
//   min/avg/max     chunker    mean chunk  chunks/GiB  ingest (store path)  1-byte insert
//   16K/64K/256K    1141 MB/s     73 KiB      14,428       118 MB/s        1 chunk,  108 KiB
//   64K/256K/1M     1105 MB/s    289 KiB       3,632       264 MB/s        1 chunk,  286 KiB
//   256K/1M/4M      1138 MB/s   1130 KiB         928       497 MB/s        1 chunk, 1952 KiB
//   512K/2M/8M      1132 MB/s   2300 KiB         456       404 MB/s        1 chunk, 2837 KiB
//
// - The chunker runs at the same speed for every size; the cost is per chunk downstream: one fsync'd file, one
//   LevelDB row, one have/want entry. Ingest throughput climbs until ~1 MiB chunks and not beyond, so 1 MiB is the
//   smallest average that does not pay for fsyncs (on the Pi's USB SSD each fsync is a round trip over the bus
//   that Ethernet shares, so small chunks would cost even more there).
// - Edit locality is one or two chunks at every size, so the bytes a 1-byte edit re-sends grow with the chunk size:
//   2 MiB averages double that cost and double the memory a chunk in flight holds, for no ingest gain.
// - Most bytes on the Pi are photos and videos (compressed, rarely edited in place): finer chunks would buy little
//   dedup. 1 MiB averages mean ~1,000 chunks per GiB, ~500k rows for a 500 GB store.
// - The 4 MiB maximum bounds the memory of one ingest (a chunk being filled + the ones being written).

export interface ChunkParams {
  minSize: number;
  /** Must be a power of two: the masks are derived from its bit count. */
  avgSize: number;
  maxSize: number;
}

export const DEFAULT_CHUNK_PARAMS: Readonly<ChunkParams> = Object.freeze({
  minSize: 256 * 1024,
  avgSize: 1024 * 1024,
  maxSize: 4 * 1024 * 1024,
});

/** 256 pseudo-random 32-bit values from a fixed seed (mulberry32). Changing this changes every cut point. */
const GEAR: Int32Array = (() => {
  const table = new Int32Array(256);
  let seed = 0x42414c55; // "BALU"
  for (let i = 0; i < 256; i++) {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = seed;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    table[i] = t ^ (t >>> 14);
  }
  return table;
})();

/** A mask of the `bits` highest bits: with a left-shifting gear hash the high bits have seen the most bytes. */
function highMask(bits: number): number {
  return bits <= 0 ? 0 : (0xffffffff << (32 - bits)) | 0;
}

export function checkChunkParams(p: ChunkParams): void {
  const { minSize, avgSize, maxSize } = p;
  const bits = Math.log2(avgSize);
  if (!Number.isInteger(bits) || bits < 8 || bits > 28) throw new RangeError(`avgSize must be a power of two in [256, 2^28]: ${avgSize}`);
  if (!Number.isInteger(minSize) || minSize < 64 || minSize > avgSize) throw new RangeError(`minSize must be in [64, avgSize]: ${minSize}`);
  if (!Number.isInteger(maxSize) || maxSize < avgSize || maxSize > 64 * 1024 * 1024) {
    throw new RangeError(`maxSize must be in [avgSize, 64 MiB]: ${maxSize}`);
  }
}

/** Rolling hash state after the last scan() (a second return value without allocating). */
let scanH = 0;

/**
 * Rolls the gear hash over data[from, end) and returns the offset just past the first byte whose hash has all `mask`
 * bits clear, or -1. Unrolled by 8: about a third faster than the plain loop in V8 (the chunker is most of ingest's
 * main-thread time); test/store/chunker.test.ts checks it against a plain reference implementation.
 */
function scan(data: Uint8Array, from: number, end: number, h: number, mask: number): number {
  const gear = GEAR;
  let j = from;
  for (const end8 = end - 7; j < end8; j += 8) {
    h = ((h << 1) + gear[data[j]!]!) | 0;
    if ((h & mask) === 0) return done(h, j + 1);
    h = ((h << 1) + gear[data[j + 1]!]!) | 0;
    if ((h & mask) === 0) return done(h, j + 2);
    h = ((h << 1) + gear[data[j + 2]!]!) | 0;
    if ((h & mask) === 0) return done(h, j + 3);
    h = ((h << 1) + gear[data[j + 3]!]!) | 0;
    if ((h & mask) === 0) return done(h, j + 4);
    h = ((h << 1) + gear[data[j + 4]!]!) | 0;
    if ((h & mask) === 0) return done(h, j + 5);
    h = ((h << 1) + gear[data[j + 5]!]!) | 0;
    if ((h & mask) === 0) return done(h, j + 6);
    h = ((h << 1) + gear[data[j + 6]!]!) | 0;
    if ((h & mask) === 0) return done(h, j + 7);
    h = ((h << 1) + gear[data[j + 7]!]!) | 0;
    if ((h & mask) === 0) return done(h, j + 8);
  }
  for (; j < end; j++) {
    h = ((h << 1) + gear[data[j]!]!) | 0;
    if ((h & mask) === 0) return done(h, j + 1);
  }
  scanH = h;
  return -1;
}

function done(h: number, cut: number): number {
  scanH = h;
  return cut;
}

export class Chunker {
  readonly minSize: number;
  readonly avgSize: number;
  readonly maxSize: number;
  private readonly maskS: number;
  private readonly maskL: number;
  /** Bytes of the current, unfinished chunk seen so far. */
  private pos = 0;
  private h = 0;

  constructor(params: ChunkParams = DEFAULT_CHUNK_PARAMS) {
    checkChunkParams(params);
    this.minSize = params.minSize;
    this.avgSize = params.avgSize;
    this.maxSize = params.maxSize;
    const bits = Math.log2(params.avgSize);
    this.maskS = highMask(bits + 2);
    this.maskL = highMask(bits - 2);
  }

  /** Length of the unfinished chunk buffered by the caller. */
  get pending(): number {
    return this.pos;
  }

  /**
   * Feeds bytes and returns the offsets in `data` at which chunks end (exclusive). Bytes after the last offset belong
   * to a chunk that continues into the next push (or ends at `finish()`).
   */
  push(data: Uint8Array): number[] {
    const cuts: number[] = [];
    const n = data.length;
    const { minSize, avgSize, maxSize, maskS, maskL } = this;
    let i = 0;
    let pos = this.pos;
    let h = this.h;
    while (i < n) {
      if (pos < minSize) {
        // Cut-point skipping: no chunk may end before minSize, so those bytes are not even hashed.
        const skip = Math.min(minSize - pos, n - i);
        pos += skip;
        i += skip;
        if (pos < minSize) break;
      }
      let cut = -1;
      if (pos < avgSize) {
        const end = Math.min(n, i + (avgSize - pos));
        cut = scan(data, i, end, h, maskS);
        h = scanH;
        if (cut < 0) {
          pos += end - i;
          i = end;
          if (i >= n) break;
        }
      }
      if (cut < 0) {
        const end = Math.min(n, i + (maxSize - pos));
        cut = scan(data, i, end, h, maskL);
        h = scanH;
        if (cut < 0) {
          pos += end - i;
          i = end;
          if (pos < maxSize) break;
          cut = i;
        }
      }
      cuts.push(cut);
      i = cut;
      pos = 0;
      h = 0;
    }
    this.pos = pos;
    this.h = h;
    return cuts;
  }

  /** End of input: returns the length of the final chunk (0 if the input ended on a cut) and resets the state. */
  finish(): number {
    const last = this.pos;
    this.pos = 0;
    this.h = 0;
    return last;
  }
}

/** Pieces larger than this are cut into slices so a huge input buffer cannot hold the event loop for long. */
const SLICE = 1024 * 1024;

/**
 * Chunks a byte stream (a Readable or any async iterable of Uint8Array). Yields each chunk as one Buffer; memory held
 * is one unfinished chunk (< maxSize) plus the current input piece.
 */
export async function* chunkStream(
  source: AsyncIterable<Uint8Array>,
  params: ChunkParams = DEFAULT_CHUNK_PARAMS,
): AsyncGenerator<Buffer> {
  const chunker = new Chunker(params);
  let pieces: Buffer[] = [];
  for await (const piece of source) {
    if (!(piece instanceof Uint8Array)) throw new TypeError('chunkStream expects binary data (Buffer/Uint8Array pieces)');
    const buf = Buffer.isBuffer(piece) ? piece : Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
    for (let off = 0; off < buf.length; off += SLICE) {
      if (off > 0) await new Promise<void>((resolve) => setImmediate(resolve));
      const slice = buf.length <= SLICE ? buf : buf.subarray(off, off + SLICE);
      let start = 0;
      for (const cut of chunker.push(slice)) {
        const tail = slice.subarray(start, cut);
        if (pieces.length === 0) {
          yield tail;
        } else {
          pieces.push(tail);
          yield Buffer.concat(pieces);
          pieces = [];
        }
        start = cut;
      }
      if (start < slice.length) {
        // Keep a view of the leftover (no copy), unless it is a small tail of a large piece it would pin in memory.
        const rest = slice.subarray(start);
        pieces.push(buf.length > 4 * rest.length ? Buffer.from(rest) : rest);
      }
    }
  }
  const last = chunker.finish();
  if (last > 0) yield pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces);
}
