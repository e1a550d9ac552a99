// Conversions between the store's records and the wire messages of balupi.sync.v1, with the validation every message
// from a peer gets: a peer is untrusted input, so paths are checked like user input (store/names.ts), hashes must be
// 32 bytes, sizes must add up. Nothing here decides anything; it only moves fields.

import { create } from '@bufbuild/protobuf';
import type { ChunkRef, CommitMeta, FileRecord } from '../../store/index.ts';
import { validateName } from '../../store/index.ts';
import { FileInfoSchema, type FileInfo } from '../gen/balupi/sync/v1/sync_pb.js';
import { SyncError } from './errors.ts';

export const PROTOCOL_VERSION = 1;
/** Hashes per MissingChunks / DownloadChunks call. */
export const MAX_HASHES_PER_CALL = 10_000;
/** The store refuses chunks above this (the chunker's hard maximum). */
export const MAX_CHUNK_BYTES = 64 * 1024 * 1024;

/** Where an uploaded chunk belongs in the file it is uploaded for (ChunkPlace). */
export interface Place {
  path: string;
  fileSize: bigint;
  fileHash: Uint8Array;
  offset: bigint;
}

/** A file version as a peer described it, validated; `version`/`seq` are the sender's numbers. */
export interface RemoteFile {
  path: string;
  size: number;
  mtimeMs: number;
  mode: number;
  hash: string;
  /** SHA-256 hex of the whole file, null when the sender did not know it. */
  sha256: string | null;
  chunks: ChunkRef[];
  version: number;
  seq: number;
  deleted: boolean;
}

export function hashToBytes(hex: string): Uint8Array {
  return Buffer.from(hex, 'hex');
}

export function bytesToHash(b: Uint8Array): string {
  if (b.length !== 32) throw new SyncError('invalid_argument', `a BLAKE3 hash is 32 bytes, got ${b.length}`);
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

export function hashesFrom(list: Uint8Array[]): string[] {
  if (list.length > MAX_HASHES_PER_CALL) throw new SyncError('invalid_argument', `at most ${MAX_HASHES_PER_CALL} hashes per call, got ${list.length}`);
  return list.map(bytesToHash);
}

/** `hub`: a hub's record, which says whether the hub lacks some of its bytes (FileInfo.incomplete; lost-versions.ts). */
export function toFileInfo(r: FileRecord | RemoteFile, hub = false): FileInfo {
  return create(FileInfoSchema, {
    path: r.path,
    size: BigInt(r.size),
    mtimeMs: BigInt(Math.round(r.mtimeMs)),
    mode: r.mode,
    hash: r.deleted || r.hash === '' ? new Uint8Array(0) : hashToBytes(r.hash),
    sha256: r.deleted || !r.sha256 ? new Uint8Array(0) : hashToBytes(r.sha256),
    chunks: r.deleted ? [] : r.chunks.map((c) => ({ hash: hashToBytes(c.hash), size: c.size })),
    version: BigInt(r.version),
    sequence: BigInt('seq' in r ? r.seq : 0),
    deleted: r.deleted,
    incomplete: hub && 'state' in r && r.state === 'remote' && !r.deleted,
  });
}

const toNumber = (v: bigint, what: string): number => {
  if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) throw new SyncError('invalid_argument', `${what} out of range: ${v}`);
  return Number(v);
};

/** Validates a FileInfo from a peer. Throws SyncError('invalid_argument') or StoreError('invalid_name'). */
export function fromFileInfo(info: FileInfo | undefined): RemoteFile {
  if (!info) throw new SyncError('invalid_argument', 'file is missing');
  const path = validateName(info.path);
  const bad = (why: string): never => {
    throw new SyncError('invalid_argument', `${path}: ${why}`, { details: { path } });
  };
  const size = toNumber(info.size, 'size');
  if (info.mode > 0o7777) bad(`mode ${info.mode.toString(8)} is not a permission mask`);
  const base = { path, mtimeMs: toNumber(info.mtimeMs, 'mtime_ms'), mode: info.mode, version: toNumber(info.version, 'version'), seq: toNumber(info.sequence, 'sequence') };
  if (info.deleted) {
    if (size !== 0 || info.chunks.length > 0) bad('a tombstone has no size and no chunks');
    return { ...base, size: 0, hash: '', sha256: null, chunks: [], deleted: true };
  }
  const hash = bytesToHash(info.hash);
  if (info.sha256.length !== 0 && info.sha256.length !== 32) bad(`a SHA-256 is 32 bytes, got ${info.sha256.length}`);
  const sha256 = info.sha256.length === 32 ? Buffer.from(info.sha256).toString('hex') : null;
  let sum = 0;
  const chunks = info.chunks.map((c) => {
    if (c.size <= 0 || c.size > MAX_CHUNK_BYTES) bad(`chunk size ${c.size}`);
    sum += c.size;
    return { hash: bytesToHash(c.hash), size: c.size };
  });
  if (sum !== size) bad(`chunk sizes add up to ${sum}, not ${size}`);
  return { ...base, size, hash, sha256, chunks, deleted: false };
}

/** The part of a record (ours or a peer's) that a commit of its content takes. */
export const metaOf = (f: { size: number; mtimeMs: number; mode: number; chunks: CommitMeta['chunks']; hash: string; sha256: string | null }): CommitMeta => ({
  size: f.size,
  mtimeMs: f.mtimeMs,
  mode: f.mode,
  chunks: f.chunks,
  hash: f.hash,
  sha256: f.sha256,
});

/** Same content (or both deleted): the thing conflicts and echo suppression compare. */
export function sameContent(a: { hash: string; deleted: boolean } | undefined, b: { hash: string; deleted: boolean } | undefined): boolean {
  if (!a || !b) return (a?.deleted ?? true) && (b?.deleted ?? true);
  return a.deleted === b.deleted && (a.deleted || a.hash === b.hash);
}
