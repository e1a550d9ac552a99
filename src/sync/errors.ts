// Errors of the sync layer. Callers branch on `code`; src/rpc/errors.ts maps codes to gRPC statuses in one place.

import { Code, ConnectError } from '@connectrpc/connect';

export type SyncErrorCode =
  | 'invalid_argument' // a malformed message from a peer (bad hash length, sizes that do not add up, too many items)
  | 'missing_chunks' // a commit names chunks the callee does not hold
  | 'protocol_mismatch' // the peer speaks a protocol version we do not
  | 'data_loss' // chunks whose bytes did not hash to their names were rejected
  | 'unsafe_path' // a root-relative path that would leave the hub's root (symlinked parent, ...)
  | 'unavailable' // the hub cannot be reached (not configured, asleep)
  | 'chunk_gone' // the peer no longer has a chunk it was asked for: its file changed since it was listed
  | 'path_busy' // a path kept changing while a commit against it was decided: the peer tries again later
  | 'ignored_path'; // a new version of a path the hub leaves out of the sync (BALUPI_HUB_IGNORE): refused for good

export class SyncError extends Error {
  readonly code: SyncErrorCode;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: SyncErrorCode, message: string, options?: { cause?: unknown; details?: Record<string, unknown> }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'SyncError';
    this.code = code;
    this.details = options?.details;
  }
}

export const isSyncError = (err: unknown, code: SyncErrorCode): err is SyncError => err instanceof SyncError && err.code === code;

/** A peer's new version, or its bytes, for a path the hub leaves out of the sync (ignore.ts): refused for good. */
export const ignoredPath = (path: string): SyncError =>
  new SyncError('ignored_path', `${path}: the hub leaves this path out of the sync (BALUPI_HUB_IGNORE)`, { details: { path } });

/** Errors that mean "the hub is not there right now" rather than "this request is wrong". */
export function isConnectionError(err: unknown): boolean {
  const code = err instanceof ConnectError ? err.code : undefined;
  return code === Code.Unavailable || code === Code.Canceled || code === Code.DeadlineExceeded || code === Code.Unknown || code === Code.Aborted || code === Code.Internal || code === Code.Unauthenticated;
}

/** An error as one line for logs and status: a gRPC status by name, with its message. */
export const errorMessage = (err: unknown): string => (err instanceof ConnectError ? `${Code[err.code]}: ${err.rawMessage}` : (err as Error)?.message ?? String(err));
