// The one place where errors become RPC statuses. Domain errors carry a stable `code`; anything unknown is Internal
// and its message is not leaked to the peer.
import { Code, ConnectError } from '@connectrpc/connect';

const CODE_BY_ERROR: Record<string, Code> = {
  invalid_name: Code.InvalidArgument,
  invalid_argument: Code.InvalidArgument,
  not_found: Code.NotFound,
  conflict: Code.Aborted,
  hash_mismatch: Code.DataLoss,
  cache_full: Code.ResourceExhausted,
  no_space: Code.ResourceExhausted,
  corrupt_chunk: Code.DataLoss,
  unavailable: Code.Unavailable,
  too_large: Code.ResourceExhausted,
  unauthenticated: Code.Unauthenticated,
  missing_chunks: Code.FailedPrecondition,
  not_local: Code.FailedPrecondition,
  protocol_mismatch: Code.FailedPrecondition,
  data_loss: Code.DataLoss,
  unsafe_path: Code.InvalidArgument,
};

export function toConnectError(err: unknown): ConnectError {
  if (err instanceof ConnectError) return err;
  const code = (err as { code?: unknown })?.code;
  const mapped = typeof code === 'string' ? CODE_BY_ERROR[code] : undefined;
  if (mapped !== undefined) return new ConnectError((err as Error).message, mapped);
  return new ConnectError('internal error', Code.Internal, undefined, undefined, err);
}
