// Writing large files around the page cache (O_DIRECT). A sync moves gigabytes that nobody reads right away; written
// through the page cache, every byte first takes a page there. On the Pi that evicts what is hot (its 1 GB is shared
// with the index and the clients' reads) and counts against the service's memory limit; on the dev VM each fresh
// page costs a fault into the host (~3 s of system time per GB, see bench/SYNC-RESULTS.md). Measured there, 1 GB of
// 1 MiB chunk files written durably: 1.6-2.5 s through the page cache (O_DSYNC), 1.1-1.3 s with O_DIRECT|O_DSYNC.
//
// O_DIRECT wants the buffer address, the file offset and the length aligned to the device's block size. Node cannot
// align a Buffer, but a WebAssembly.Memory starts on a page boundary, so the bytes are copied into slots of one such
// memory (AlignedArena). A file's last partial block goes through a second, ordinary descriptor. Where the file system
// refuses O_DIRECT (EINVAL: tmpfs on older kernels, some FUSE file systems) callers fall back to ordinary writes.

import fsCb from 'node:fs';

// The global exists in Node; the project's type libraries (es2024, node) do not declare it.
declare const WebAssembly: { Memory: new (d: { initial: number; maximum: number }) => { readonly buffer: ArrayBuffer } };

/** Offsets and lengths of direct writes are multiples of this (covers 512-byte and 4 KiB logical blocks). */
const DIRECT_ALIGN = 4096;

/** Arena space is handed out in units of this size (the arena's slots start on unit boundaries). */
const UNIT = 64 * 1024;

const { O_WRONLY, O_CREAT, O_EXCL, O_DSYNC } = fsCb.constants;
/** Undefined where the platform has no O_DIRECT (then nothing is written directly). */
export const O_DIRECT: number | undefined = (fsCb.constants as Record<string, number | undefined>).O_DIRECT;

/** Flags for a new file written directly; each write returns once its bytes are durable. */
export const DIRECT_CREATE_FLAGS = O_WRONLY | O_CREAT | O_EXCL | O_DSYNC | (O_DIRECT ?? 0);

/** A run of aligned arena memory, `bytes` long; give it back with release() once no write uses it any more. */
export interface AlignedSlot {
  readonly bytes: Uint8Array;
  release(): void;
}

/**
 * Aligned memory for direct writes, taken in slots: one WebAssembly.Memory (whose buffer starts on a page boundary),
 * allocated on first use and handed out first-fit in 64 KiB units. acquire() waits its turn for a free run (a slot
 * is held for one write, so one always comes back): with direct writes at disk speed that bounds the bytes in flight,
 * while writing the overflow through the page cache instead made a hub receiving four uploads at once slower than
 * before. Only a request larger than the whole arena is refused (undefined).
 */
export class AlignedArena {
  readonly #units: number;
  #memory: { readonly buffer: ArrayBuffer } | undefined;
  /** Per unit: whether a slot holds it. */
  #used: Uint8Array;
  /** Callers of acquire() waiting for room, in arrival order. */
  readonly #waiting: { length: number; resolve: (slot: AlignedSlot) => void }[] = [];

  constructor(bytes: number) {
    this.#units = Math.max(1, Math.ceil(bytes / UNIT));
    this.#used = new Uint8Array(this.#units);
  }

  /** A slot of `length` bytes once there is room (in the order asked); undefined if the arena is too small for it. */
  acquire(length: number): Promise<AlignedSlot | undefined> {
    if (Math.ceil(length / UNIT) > this.#units) return Promise.resolve(undefined);
    if (this.#waiting.length === 0) {
      const slot = this.take(length);
      if (slot) return Promise.resolve(slot);
    }
    return new Promise((resolve) => this.#waiting.push({ length, resolve }));
  }

  /** A slot of `length` bytes if a run is free now (no waiting), else undefined. */
  take(length: number): AlignedSlot | undefined {
    const need = Math.max(1, Math.ceil(length / UNIT));
    for (let start = 0; start + need <= this.#units; ) {
      const busy = this.#used.subarray(start, start + need).lastIndexOf(1);
      if (busy >= 0) {
        start += busy + 1;
        continue;
      }
      this.#memory ??= new WebAssembly.Memory({ initial: this.#units, maximum: this.#units });
      this.#used.fill(1, start, start + need);
      let released = false;
      return {
        bytes: new Uint8Array(this.#memory.buffer, start * UNIT, length),
        release: () => {
          if (released) return;
          released = true;
          this.#used.fill(0, start, start + need);
          this.#serveWaiting();
        },
      };
    }
    return undefined;
  }

  #serveWaiting(): void {
    while (this.#waiting.length > 0) {
      const slot = this.take(this.#waiting[0]!.length);
      if (!slot) return;
      this.#waiting.shift()!.resolve(slot);
    }
  }

  /** Units held by slots right now (tests check that every slot came back). */
  get unitsInUse(): number {
    return this.#used.reduce((n, u) => n + u, 0);
  }
}

/** The part of `length` bytes that can be written directly (whole aligned blocks); the rest is the tail. */
function alignedHead(length: number): number {
  return length - (length % DIRECT_ALIGN);
}

/** Whether an error from opening or writing with O_DIRECT means "not supported here" rather than a real failure. */
export function directUnsupported(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === 'EINVAL';
}

/**
 * Fills a file written directly, from bytes that arrive in pieces of any size: they are copied into the slot, whose
 * halves take turns (one being written while the other fills), and every full half is written at the next aligned
 * offset. end() writes the whole blocks of what is left and answers the last partial block, which the caller writes
 * at `at` through an ordinary descriptor of the same file (a direct write cannot take it).
 */
export class DirectWriter {
  readonly #fd: number;
  readonly #halves: [Uint8Array, Uint8Array];
  #cur = 0;
  #fill = 0;
  #pos = 0;
  #inFlight: Promise<void> = Promise.resolve();

  constructor(fd: number, slot: AlignedSlot) {
    if (slot.bytes.length < 2 * DIRECT_ALIGN) throw new RangeError('slot too small for a direct writer');
    this.#fd = fd;
    const half = alignedHead(slot.bytes.length / 2);
    this.#halves = [slot.bytes.subarray(0, half), slot.bytes.subarray(half, 2 * half)];
  }

  async write(data: Uint8Array): Promise<void> {
    let off = 0;
    while (off < data.length) {
      const buf = this.#half();
      const n = Math.min(buf.length - this.#fill, data.length - off);
      buf.set(data.subarray(off, off + n), this.#fill);
      this.#fill += n;
      off += n;
      if (this.#fill === buf.length) await this.#flushHalf(buf.length);
    }
  }

  async end(): Promise<{ tail: Uint8Array; at: number }> {
    const rest = this.#fill;
    const head = alignedHead(rest);
    const buf = this.#half();
    if (head > 0) await this.#flushHalf(head);
    await this.#inFlight;
    return { tail: buf.subarray(head, rest), at: this.#pos };
  }

  #half(): Uint8Array {
    return this.#cur === 0 ? this.#halves[0] : this.#halves[1];
  }

  /** Starts writing the current half's first `length` bytes (after the previous write), and switches halves. */
  async #flushHalf(length: number): Promise<void> {
    await this.#inFlight;
    const bytes = this.#half().subarray(0, length);
    const at = this.#pos;
    this.#pos += length;
    this.#cur = 1 - this.#cur;
    this.#fill = 0;
    this.#inFlight = writeAll(this.#fd, bytes, at);
    // its failure surfaces at the next await of #inFlight; this only keeps it from being unhandled meanwhile
    this.#inFlight.catch(() => {});
  }
}

/**
 * Writes `data` (one buffer, or pieces that follow on from each other) at `offset` of a file open twice, for bytes
 * that arrive in pieces at any offset (a pushed file's chunks): the whole aligned blocks inside the span go directly,
 * copied through a slot of `arena` in one write; the partial blocks at either end go through `fd`, the ordinary
 * descriptor, where a neighbouring span fills the rest of their page. Direct and ordinary writes never touch the same
 * block, so the page cache holds only those end pieces. A direct write the file system refuses throws EINVAL
 * (directUnsupported) with nothing of the span written directly. A span larger than the arena is written plainly.
 */
export async function writeSpanDirect(fd: number, directFd: number, arena: AlignedArena, data: Uint8Array | readonly Uint8Array[], offset: number): Promise<void> {
  const pieces = data instanceof Uint8Array ? [data] : data;
  const length = pieces.reduce((n, p) => n + p.length, 0);
  const start = Math.ceil(offset / DIRECT_ALIGN) * DIRECT_ALIGN;
  const end = Math.floor((offset + length) / DIRECT_ALIGN) * DIRECT_ALIGN;
  const slot = end > start ? await arena.acquire(end - start) : undefined;
  if (!slot) return writeAll(fd, spanBytes(pieces, 0, length), offset);
  try {
    let at = offset;
    for (const p of pieces) {
      const from = Math.max(start, at);
      const to = Math.min(end, at + p.length);
      if (to > from) slot.bytes.set(p.subarray(from - at, to - at), from - start);
      at += p.length;
    }
    await writeAll(directFd, slot.bytes, start);
  } finally {
    slot.release();
  }
  if (start > offset) await writeAll(fd, spanBytes(pieces, 0, start - offset), offset);
  if (end < offset + length) await writeAll(fd, spanBytes(pieces, end - offset, length), end);
}

/** Bytes [from, to) of pieces that follow on from each other: a view when they lie in one piece, else a copy. */
function spanBytes(pieces: readonly Uint8Array[], from: number, to: number): Uint8Array {
  const parts: Uint8Array[] = [];
  let at = 0;
  for (const p of pieces) {
    const a = Math.max(from, at);
    const b = Math.min(to, at + p.length);
    if (b > a) parts.push(p.subarray(a - at, b - at));
    at += p.length;
  }
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}

/** Writes all of `bytes` at file offset `at`. */
export function writeAll(fd: number, bytes: Uint8Array, at: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const step = (off: number): void => {
      if (off === bytes.length) return resolve();
      fsCb.write(fd, bytes, off, bytes.length - off, at + off, (err, n) => (err ? reject(err) : step(off + n)));
    };
    step(0);
  });
}
