// One error type for the whole engine. Callers branch on `code` (stable strings), never on messages; the daemon maps
// codes to HTTP / gRPC statuses in one place.

export type StoreErrorCode =
  | 'invalid_name' // a path that is absolute, has `..`/`.`/empty segments, NUL or control bytes
  | 'not_found' // no such file, directory or chunk
  | 'not_local' // the file is known but some of its bytes were evicted (fetch them from the hub)
  | 'hash_mismatch' // bytes offered with a hash they do not have
  | 'corrupt_chunk' // a chunk on disk no longer matches its hash
  | 'missing_chunks' // a commit names chunks the store does not hold
  | 'conflict' // optimistic concurrency: the base version is not the current one
  | 'path_conflict' // a file where a directory is needed, or the other way round (a/b is a file, so no a/b/c)
  | 'cache_full' // the byte budget is full of data that must not be evicted (dirty or pinned)
  | 'no_space' // the disk itself is full (ENOSPC)
  | 'invalid_argument' // a malformed request (sizes that do not add up, bad range, oversized chunk)
  | 'locked' // another process has the store's LevelDB open (a running daemon, usually)
  | 'closed'; // the store was closed

export class StoreError extends Error {
  readonly code: StoreErrorCode;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: StoreErrorCode, message: string, options?: { cause?: unknown; details?: Record<string, unknown> }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'StoreError';
    this.code = code;
    this.details = options?.details;
  }
}

export function isStoreError(err: unknown, code?: StoreErrorCode): err is StoreError {
  return err instanceof StoreError && (code === undefined || err.code === code);
}

/** Disk-full conditions surface as 'no_space' with the original errno error as cause; anything else is rethrown. */
export function mapIoError(err: unknown, what: string): unknown {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  // LevelDB reports a full disk as an IO error whose message carries strerror(ENOSPC).
  const leveldbFull = typeof code === 'string' && code.startsWith('LEVEL_') && /No space left on device/.test(String((err as Error).message));
  if (code === 'ENOSPC' || code === 'EDQUOT' || leveldbFull) {
    return new StoreError('no_space', `no space left on the store's disk while ${what}`, { cause: err });
  }
  return err;
}
