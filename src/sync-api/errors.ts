// Errors of the BaluHost sync endpoints; codes mapped to HTTP in src/http/errors.ts, details as BaluHost words them.
import { CodedError } from '../errors.ts';

export type SyncApiErrorCode = 'sync_device_not_registered' | 'sync_device_not_found' | 'sync_folder_not_found';

export class SyncApiError extends CodedError<SyncApiErrorCode> {
  override name = 'SyncApiError';
}
