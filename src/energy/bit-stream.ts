// Bit-level integer coding for the sample codec: an MSB-first bit writer/reader, zigzag mapping, length-prefixed
// values and Rice codes with a per-run parameter and an escape for outliers. Values are JS numbers below 2^53.
import { CodedError } from '../errors.ts';

/** Malformed input or data: `code` is ENERGY_BAD_SAMPLE, ENERGY_CORRUPT_BLOCK or ENERGY_CORRUPT_SAMPLE. */
export class SampleCodecError extends CodedError<string> {
  override name = 'SampleCodecError';
}

const ESCAPE = 24; // unary quotient at which a Rice code escapes to an explicit length + value

export class BitWriter {
  #buf = new Uint8Array(256);
  #len = 0;
  #acc = 0;
  #bits = 0;

  #push(byte: number): void {
    if (this.#len === this.#buf.length) {
      const next = new Uint8Array(this.#buf.length * 2);
      next.set(this.#buf);
      this.#buf = next;
    }
    this.#buf[this.#len++] = byte;
  }

  /** Write the low n bits of v (0 ≤ v < 2^n, n ≤ 53), most significant first. */
  write(v: number, n: number): void {
    if (n > 24) {
      const hi = Math.floor(v / 2 ** 24);
      this.write(hi, n - 24);
      v -= hi * 2 ** 24;
      n = 24;
    }
    // acc holds < 8 pending bits, so acc << 24 stays below 2^31 (a positive int32).
    this.#acc = (this.#acc << n) | v;
    this.#bits += n;
    while (this.#bits >= 8) {
      this.#bits -= 8;
      this.#push((this.#acc >>> this.#bits) & 0xff);
    }
    this.#acc &= (1 << this.#bits) - 1;
  }

  writeBit(b: boolean): void {
    this.write(b ? 1 : 0, 1);
  }

  /** n ones followed by a zero. */
  writeUnary(n: number, terminate: boolean): void {
    while (n >= 24) {
      this.write(0xffffff, 24);
      n -= 24;
    }
    if (n > 0) this.write((1 << n) - 1, n);
    if (terminate) this.write(0, 1);
  }

  finish(): Uint8Array {
    if (this.#bits > 0) {
      this.#push((this.#acc << (8 - this.#bits)) & 0xff);
      this.#bits = 0;
      this.#acc = 0;
    }
    return this.#buf.subarray(0, this.#len);
  }
}

export class BitReader {
  readonly #buf: Uint8Array;
  #pos = 0; // bit position

  constructor(buf: Uint8Array, bytePos: number) {
    this.#buf = buf;
    this.#pos = bytePos * 8;
  }

  readBit(): number {
    const byte = this.#buf[this.#pos >>> 3];
    if (byte === undefined) throw new SampleCodecError('ENERGY_CORRUPT_BLOCK', 'block truncated');
    const bit = (byte >>> (7 - (this.#pos & 7))) & 1;
    this.#pos++;
    return bit;
  }

  read(n: number): number {
    let v = 0;
    while (n > 0) {
      const byteIdx = this.#pos >>> 3;
      const byte = this.#buf[byteIdx];
      if (byte === undefined) throw new SampleCodecError('ENERGY_CORRUPT_BLOCK', 'block truncated');
      const off = this.#pos & 7;
      const take = Math.min(8 - off, n);
      const chunk = (byte >>> (8 - off - take)) & ((1 << take) - 1);
      v = v * 2 ** take + chunk;
      this.#pos += take;
      n -= take;
    }
    return v;
  }

  readUnary(max: number): number {
    let n = 0;
    while (n < max && this.readBit() === 1) n++;
    return n;
  }
}

export const zig = (v: number): number => (v >= 0 ? v * 2 : -v * 2 - 1);
export const unzig = (z: number): number => (z % 2 === 0 ? z / 2 : -(z + 1) / 2);
/** Exact bit length of a non-negative integer below 2^53. */
export function bitLength(v: number): number {
  return v < 2 ** 32 ? 32 - Math.clz32(v) : 32 + bitLength(Math.floor(v / 2 ** 32));
}

/** A zigzagged value with a 6-bit length prefix: for first values, whose size is unknown. */
export function writeLen(w: BitWriter, v: number): void {
  const z = zig(v);
  const n = bitLength(z);
  w.write(n, 6);
  if (n > 0) w.write(z, n);
}

export function readLen(r: BitReader): number {
  const n = r.read(6);
  return unzig(n === 0 ? 0 : r.read(n));
}

function riceCost(zs: readonly number[], k: number): number {
  const div = 2 ** k;
  let bits = 0;
  for (const z of zs) {
    const qt = Math.floor(z / div);
    bits += qt < ESCAPE ? qt + 1 + k : ESCAPE + 6 + bitLength(z);
  }
  return bits;
}

function chooseK(zs: readonly number[]): number {
  let sum = 0;
  for (const z of zs) sum += z;
  const mean = sum / zs.length;
  const guess = mean < 1 ? 0 : Math.min(45, bitLength(Math.floor(mean)) - 1);
  let best = guess, bestCost = riceCost(zs, guess);
  for (const k of [guess - 2, guess - 1, guess + 1, guess + 2]) {
    if (k < 0 || k > 45) continue;
    const c = riceCost(zs, k);
    if (c < bestCost) { best = k; bestCost = c; }
  }
  return best;
}

/** Signed values, Rice-coded after zigzag with one k for the whole run. */
export function writeRice(w: BitWriter, values: readonly number[]): void {
  const zs = values.map(zig);
  const k = chooseK(zs);
  w.write(k, 6);
  const div = 2 ** k;
  for (const z of zs) {
    const qt = Math.floor(z / div);
    if (qt < ESCAPE) {
      w.writeUnary(qt, true);
      if (k > 0) w.write(z - qt * div, k);
    } else {
      w.writeUnary(ESCAPE, false);
      const n = bitLength(z);
      w.write(n, 6);
      w.write(z, n);
    }
  }
}

export function readRice(r: BitReader, count: number, out: number[]): void {
  const k = r.read(6);
  const div = 2 ** k;
  for (let i = 0; i < count; i++) {
    const qt = r.readUnary(ESCAPE);
    if (qt < ESCAPE) {
      out.push(unzig(qt * div + (k > 0 ? r.read(k) : 0)));
    } else {
      const n = r.read(6);
      out.push(unzig(r.read(n)));
    }
  }
}
