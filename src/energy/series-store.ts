// LevelDB access of the energy series: the three sublevels (series, write-ahead, meta), batches across them, and
// the range reads the series needs. Every read is a single contiguous key range of one device.

import type { AbstractLevel } from 'abstract-level';
import { HOUR_MS } from './calendar.ts';
import { type RawSample, decodeBlock, decodeSample } from './sample-codec.ts';
import { type RollupAcc, RollupCodecError, decodeRollup, decodeHourPack, encodeHourPack } from './rollup.ts';
import { KIND, type Kind, seriesKey, seriesKindEnd, parseSeriesKey, parseWalKey, deviceStart } from './series-keys.ts';

export type Bin = AbstractLevel<any, Uint8Array, Uint8Array>;
type Meta = AbstractLevel<any, string, unknown>;

/** A day pack is keyed by its local day start, at most 25 h before any hour it holds. */
const HOUR_PACK_LOOKBACK_MS = 26 * HOUR_MS;
/** Blocks cover one local hour; starting a range read this far back finds the block that holds `from`. */
const BLOCK_LOOKBACK_MS = 3 * HOUR_MS;
const READ_BATCH = 4096;
const READ_BYTES = 256 * 1024;

type Op =
  | { type: 'put'; sublevel: Bin; key: Uint8Array; value: Uint8Array }
  | { type: 'del'; sublevel: Bin; key: Uint8Array };

export interface HourPack {
  /** The local day start the pack is keyed by. */
  key: number;
  hours: Array<[number, RollupAcc]>;
  /** Undecodable on disk (only with salvage): must be rewritten. */
  corrupt: boolean;
}

export class SeriesBatch {
  readonly ops: Op[] = [];
  readonly #series: Bin;
  readonly #wal: Bin;
  constructor(series: Bin, wal: Bin) {
    this.#series = series;
    this.#wal = wal;
  }
  get length(): number { return this.ops.length; }
  putSeries(key: Uint8Array, value: Uint8Array): void { this.ops.push({ type: 'put', sublevel: this.#series, key, value }); }
  delSeries(key: Uint8Array): void { this.ops.push({ type: 'del', sublevel: this.#series, key }); }
  putWal(key: Uint8Array, value: Uint8Array): void { this.ops.push({ type: 'put', sublevel: this.#wal, key, value }); }
  delWal(key: Uint8Array): void { this.ops.push({ type: 'del', sublevel: this.#wal, key }); }
}

export class SeriesStore {
  readonly #db: AbstractLevel<any, any, any>;
  readonly #series: Bin;
  readonly #wal: Bin;
  readonly #meta: Meta;

  constructor(db: AbstractLevel<any, any, any>) {
    this.#db = db;
    this.#series = db.sublevel<Uint8Array, Uint8Array>('s', { keyEncoding: 'view', valueEncoding: 'view' });
    this.#wal = db.sublevel<Uint8Array, Uint8Array>('w', { keyEncoding: 'view', valueEncoding: 'view' });
    this.#meta = db.sublevel<string, unknown>('m', { keyEncoding: 'utf8', valueEncoding: 'json' });
  }

  newBatch(): SeriesBatch {
    return new SeriesBatch(this.#series, this.#wal);
  }

  async write(batch: SeriesBatch, sync: boolean): Promise<void> {
    if (batch.length === 0) return;
    await this.#db.batch(batch.ops as never, { sync } as never);
  }

  /** Stored rollups of one kind with bucket start in [from, to), oldest first (hours unpacked from day packs). */
  async rollups(id: number, kind: Kind, from: number, to: number): Promise<Array<[number, RollupAcc]>> {
    if (kind === KIND.hour) {
      const out: Array<[number, RollupAcc]> = [];
      for (const p of await this.hourPacks(id, from, to)) {
        for (const h of p.hours) if (h[0] >= from && h[0] < to) out.push(h);
      }
      // Packs never overlap unless the time zone was changed without a recompute; keep the order regardless.
      for (let i = 1; i < out.length; i++) if (out[i - 1]![0] > out[i]![0]) return out.sort((a, b) => a[0] - b[0]);
      return out;
    }
    return this.#entries(id, kind, from, to, (_k, v) => decodeRollup(v));
  }

  /**
   * Hour packs (key = local day start) that may hold hours in [from, to). A damaged pack throws
   * ENERGY_CORRUPT_ROLLUP, unless `salvage` is set (recompute): then it comes back empty and marked corrupt.
   */
  async hourPacks(id: number, from: number, to: number, salvage = false): Promise<HourPack[]> {
    return (await this.#entries(id, KIND.hour, from - HOUR_PACK_LOOKBACK_MS, to, (k, v) => {
      try {
        return { hours: decodeHourPack(k, v), corrupt: false };
      } catch (err) {
        if (salvage && err instanceof RollupCodecError) return { hours: [], corrupt: true };
        throw err;
      }
    })).map(([key, p]) => ({ key, ...p }));
  }

  putHourPack(batch: SeriesBatch, id: number, key: number, hours: ReadonlyArray<readonly [number, RollupAcc]>): void {
    const k = seriesKey(id, KIND.hour, key);
    if (hours.length === 0) batch.delSeries(k);
    else batch.putSeries(k, encodeHourPack(key, hours));
  }

  async #entries<T>(id: number, kind: Kind, from: number, to: number, decode: (t: number, v: Uint8Array) => T): Promise<Array<[number, T]>> {
    const out: Array<[number, T]> = [];
    if (to <= from) return out;
    // Large reads per native call: a year of hourly rollups is ~350 KB, fetched in a few round trips.
    const it = this.#series.iterator({
      gte: seriesKey(id, kind, from), lt: seriesKey(id, kind, to), highWaterMarkBytes: READ_BYTES,
    } as object);
    try {
      for (;;) {
        const entries = await it.nextv(READ_BATCH);
        if (entries.length === 0) break;
        for (const [k, v] of entries) {
          const t = parseSeriesKey(k).t;
          out.push([t, decode(t, v)]);
        }
      }
    } finally {
      await it.close();
    }
    return out;
  }

  /**
   * Decoded raw blocks that may hold samples in [from, to), oldest first. The iterator (and so its snapshot) is
   * created synchronously on the first next() call.
   */
  async *blocks(id: number, from: number, to: number): AsyncGenerator<RawSample[]> {
    const it = this.#series.values({
      gte: seriesKey(id, KIND.raw, from - BLOCK_LOOKBACK_MS),
      lt: seriesKey(id, KIND.raw, to),
    });
    try {
      for (;;) {
        const values = await it.nextv(64);
        if (values.length === 0) break;
        for (const v of values) yield decodeBlock(v);
      }
    } finally {
      await it.close();
    }
  }

  async samples(id: number, from: number, to: number): Promise<RawSample[]> {
    const out: RawSample[] = [];
    for await (const block of this.blocks(id, from, to)) {
      for (const s of block) if (s.at >= from && s.at < to) out.push(s);
    }
    return out;
  }

  /** The last stored sample before t, however old. */
  async lastBefore(id: number, t: number): Promise<RawSample | null> {
    const [v] = await this.#series.values({
      gte: seriesKey(id, KIND.raw, 0), lt: seriesKey(id, KIND.raw, t), reverse: true, limit: 1,
    }).all();
    if (!v) return null;
    const block = decodeBlock(v);
    let found: RawSample | null = null;
    for (const s of block) if (s.at < t) found = s;
    return found;
  }

  async lastSample(id: number): Promise<RawSample | null> {
    const [v] = await this.#series.values({
      gte: seriesKey(id, KIND.raw, 0), lt: seriesKindEnd(id, KIND.raw), reverse: true, limit: 1,
    }).all();
    if (!v) return null;
    const block = decodeBlock(v);
    return block[block.length - 1] ?? null;
  }

  async firstSampleAt(id: number): Promise<number | null> {
    const [k] = await this.#series.keys({ gte: seriesKey(id, KIND.raw, 0), lt: seriesKindEnd(id, KIND.raw), limit: 1 }).all();
    return k ? parseSeriesKey(k).t : null;
  }

  /** Delete raw blocks whose key (first sample) is before t; true if there was any. */
  async clearBlocksBefore(id: number, t: number): Promise<boolean> {
    const range = { gte: seriesKey(id, KIND.raw, 0), lt: seriesKey(id, KIND.raw, t) };
    const any = await this.#series.keys({ ...range, limit: 1 }).all();
    if (any.length === 0) return false;
    await this.#series.clear(range);
    return true;
  }

  async retentionHorizon(id: number): Promise<number | null> {
    const v = await this.#meta.get(`horizon:${id}`);
    return typeof v === 'number' ? v : null;
  }

  async setRetentionHorizon(id: number, t: number): Promise<void> {
    await this.#meta.put(`horizon:${id}`, t);
  }

  /** Device ids present in the series or the write-ahead entries (skip-scan: one seek per device). */
  async deviceIds(): Promise<number[]> {
    const ids = new Set<number>();
    for (const sub of [this.#series, this.#wal]) {
      const it = sub.keys();
      try {
        for (;;) {
          const k = await it.next();
          if (k === undefined) break;
          const id = new DataView(k.buffer, k.byteOffset, 4).getUint32(0);
          ids.add(id);
          if (id === 0xffff_ffff) break;
          it.seek(deviceStart(id + 1));
        }
      } finally {
        await it.close();
      }
    }
    return [...ids].sort((a, b) => a - b);
  }

  async *walEntries(): AsyncGenerator<[number, RawSample]> {
    for await (const [k, v] of this.#wal.iterator()) {
      const { deviceId, at } = parseWalKey(k);
      yield [deviceId, decodeSample(at, v)];
    }
  }

  /** compactRange over this module's keys when the root database supports it (classic-level does). */
  async compact(): Promise<void> {
    const root = (this.#db as unknown as { db?: unknown }).db ?? this.#db;
    const compactRange = (root as { compactRange?: (a: Uint8Array, b: Uint8Array, o: object) => Promise<void> }).compactRange;
    if (typeof compactRange !== 'function') return;
    const prefix = new TextEncoder().encode((this.#db as unknown as { prefix?: string }).prefix ?? '');
    const start = prefix;
    const end = prefix.length > 0 ? Uint8Array.from(prefix) : Uint8Array.of(0xff, 0xff, 0xff, 0xff);
    if (prefix.length > 0) end[end.length - 1] = end[end.length - 1]! + 1;
    await compactRange.call(root, start, end, { keyEncoding: 'view' });
  }
}
