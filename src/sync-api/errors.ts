// Errors of the BaluHost sync endpoints; codes mapped to HTTP in src/http/errors.ts, details as BaluHost words them.

export type SyncApiErrorCode = 'sync_device_not_registered' | 'sync_device_not_found' | 'sync_folder_not_found';

export class SyncApiError extends Error {
  override name = 'SyncApiError';
  readonly code: SyncApiErrorCode;
  constructor(code: SyncApiErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}
