// Binary keys of the energy series: device ▸ resolution ▸ big-endian time, so that LevelDB's byte order is
// device-major and chronological inside one series, and every query is one contiguous key range.
//
//   series sublevel:  u32 deviceId | u8 kind | u64 time (ms)   value: raw block or rollup
//   wal sublevel:     u32 deviceId | u64 at (ms)               value: one encoded sample of the open hour
//
// For raw blocks the time is the block's first sample (so block keys are strictly ordered with their contents even
// if the configured time zone changes); for rollups it is the bucket's start instant.

import type { Resolution } from './rollup.ts';

export const KIND = { raw: 1, hour: 2, day: 3, month: 4 } as const satisfies Record<'raw' | Resolution, number>;
export type Kind = (typeof KIND)[keyof typeof KIND];

export const MAX_DEVICE_ID = 0xffff_ffff;

function putU64(view: DataView, offset: number, t: number): void {
  view.setUint32(offset, Math.floor(t / 2 ** 32));
  view.setUint32(offset + 4, t % 2 ** 32);
}

function getU64(view: DataView, offset: number): number {
  return view.getUint32(offset) * 2 ** 32 + view.getUint32(offset + 4);
}

/** Clamp a query bound into the key space (negative → 0, beyond 2^53 → max). */
function clampTime(t: number): number {
  if (!(t > 0)) return 0;
  return Math.min(Math.floor(t), Number.MAX_SAFE_INTEGER);
}

export function seriesKey(deviceId: number, kind: Kind, t: number): Uint8Array {
  const k = new Uint8Array(13);
  const v = new DataView(k.buffer);
  v.setUint32(0, deviceId);
  v.setUint8(4, kind);
  putU64(v, 5, clampTime(t));
  return k;
}

/** The first key after every key of (deviceId, kind). */
export function seriesKindEnd(deviceId: number, kind: Kind): Uint8Array {
  const k = new Uint8Array(5);
  const v = new DataView(k.buffer);
  v.setUint32(0, deviceId);
  v.setUint8(4, kind + 1);
  return k;
}

export function parseSeriesKey(k: Uint8Array): { deviceId: number; kind: number; t: number } {
  const v = new DataView(k.buffer, k.byteOffset, k.byteLength);
  return { deviceId: v.getUint32(0), kind: v.getUint8(4), t: getU64(v, 5) };
}

export function walKey(deviceId: number, at: number): Uint8Array {
  const k = new Uint8Array(12);
  const v = new DataView(k.buffer);
  v.setUint32(0, deviceId);
  putU64(v, 4, at);
  return k;
}

export function parseWalKey(k: Uint8Array): { deviceId: number; at: number } {
  const v = new DataView(k.buffer, k.byteOffset, k.byteLength);
  return { deviceId: v.getUint32(0), at: getU64(v, 4) };
}

/** The smallest key of the next device, for skip-scanning device ids. */
export function deviceStart(deviceId: number): Uint8Array {
  const k = new Uint8Array(4);
  new DataView(k.buffer).setUint32(0, deviceId);
  return k;
}
