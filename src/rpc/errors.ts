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
  // energy and plugs
  DEVICE_NOT_FOUND: Code.NotFound,
  ALERT_NOT_FOUND: Code.NotFound,
  DEVICE_EXISTS: Code.AlreadyExists,
  NAS_ROLE_TAKEN: Code.FailedPrecondition,
  ENERGY_CONFIRM_REQUIRED: Code.FailedPrecondition,
  DEVICE_INVALID: Code.InvalidArgument,
  DEVICE_LIST_INVALID: Code.InvalidArgument,
  ENERGY_TARIFF_INVALID: Code.InvalidArgument,
  ENERGY_BAD_QUERY: Code.InvalidArgument,
  PLUG_AUTH: Code.Unavailable,
  PLUG_UNREACHABLE: Code.Unavailable,
  PLUG_PROTOCOL: Code.Unavailable,
  PLUG_DEVICE: Code.Unavailable,
  PLUG_TIMEOUT: Code.DeadlineExceeded,
  PLUG_CLOSED: Code.Unavailable,
  ENERGY_POLLING_DISABLED: Code.FailedPrecondition,
  missing_chunks: Code.FailedPrecondition,
  not_local: Code.FailedPrecondition,
  protocol_mismatch: Code.FailedPrecondition,
  data_loss: Code.DataLoss,
  unsafe_path: Code.InvalidArgument,
  path_conflict: Code.FailedPrecondition,
  // Not ABORTED: peers take that for a broken connection (Node's HTTP/2 client reports resets as ABORTED) and would
  // end their session, only to push the same file again at once.
  path_busy: Code.FailedPrecondition,
  // INVALID_ARGUMENT: a pi's upload queue then fails the file for good instead of retrying it (queue-pusher.ts).
  ignored_path: Code.InvalidArgument,
};

export function toConnectError(err: unknown): ConnectError {
  if (err instanceof ConnectError) return err;
  const code = (err as { code?: unknown })?.code;
  const mapped = typeof code === 'string' ? CODE_BY_ERROR[code] : undefined;
  if (mapped !== undefined) return new ConnectError((err as Error).message, mapped);
  return new ConnectError('internal error', Code.Internal, undefined, undefined, err);
}
