// BaluPi's content-addressed storage engine. A library: nothing here imports from src/.
//
// On disk, under the directory the store owns:
//   index/            LevelDB (classic-level): file records, change feed, chunk rows, dirty set, hotness, locations
//   chunks/xx/<hash>  one file per chunk (BLAKE3 hex), fan-out by the first two hex characters
//   tmp/              chunk files being written (temp -> fsync -> rename into chunks/)
// With a backing folder (the hub's root, see backing.ts), chunks of the files there are read from those files instead
// of chunk files.

export { Store, openStore } from './store.ts';
export type { DirEntry, StoreEvent, StoreStats } from './store.ts';
export type { CommitItem, CommitMeta, CommitOptions } from './assemble.ts';
export type { StoreOptions } from './engine.ts';
export type { ChunkRef, FileRecord, FileState } from './records.ts';
export type { IngestMeta, IngestName, IngestOptions, IngestResult } from './ingest.ts';
export { fileSource } from './ingest.ts';
export type { OpenedRead, ReadOptions, ReadRange } from './reader.ts';
export type { FsckReport, GcReport, Problem } from './maintenance.ts';
export type { ChunkIo } from './chunk-files.ts';
export { SyncFsUnavailable } from './syncfs.ts';
export { mapLimit } from './map-limit.ts';
export { readAhead } from './read-ahead.ts';
export type { Lease } from './read-ahead.ts';
export { uniqueSuffix } from './temp-names.ts';
export { AlignedArena, DirectWriter, directUnsupported, O_DIRECT, writeAll, writeSpanDirect } from './direct-io.ts';
export type { AlignedSlot } from './direct-io.ts';
export type { HashSession } from './chunk-workers.ts';
export { firstOffsets } from './backing.ts';
export type { StagedChunk, WrittenFile } from './backing.ts';
export { StoreError, isStoreError } from './errors.ts';
export type { StoreErrorCode } from './errors.ts';
export { Chunker, chunkStream, DEFAULT_CHUNK_PARAMS } from './chunker.ts';
export type { ChunkParams } from './chunker.ts';
export { blake3, nativeBlake3Problem, HASH_BYTES, toHex } from './hasher.ts';
export type { Blake3, Blake3Choice, IncrementalHash } from './hasher.ts';
export { validateName } from './names.ts';
export type { PutOutcome } from './sync-support.ts';
export { formatBytes } from './cache-policy.ts';
export { Mutex } from './lock.ts';
