// Errors of the BaluHost-compatible file facade. Each carries a stable `code` (mapped to an HTTP status in
// src/http/errors.ts) and a message that is the `detail` clients see, in BaluHost's words where BaluHost has them.
// `headers` go out with the answer (Retry-After on a 503, Content-Range on a 416).

export type FilesErrorCode =
  | 'file_not_found' // 404 "File not found"
  | 'path_conflict' // 409: a file where a folder is needed, or the other way round
  | 'invalid_filename' // 400 "Invalid filename"
  | 'no_file' // 400: a multipart upload without a file part
  | 'upload_session_not_found' // 404 "Upload session not found"
  | 'upload_session_forbidden' // 403 "Not your upload session"
  | 'chunk_rejected' // 400 "Expected chunk X, got Y", or more bytes than announced
  | 'upload_too_large' // 413: more than BaluHost's 10 GiB
  | 'range_not_satisfiable' // 416
  | 'hub_unavailable'; // 503 + Retry-After: the bytes are on the NAS, which (or whose hub) cannot be reached

export class FilesError extends Error {
  override name = 'FilesError';
  readonly code: FilesErrorCode;
  readonly headers: Record<string, string>;
  constructor(code: FilesErrorCode, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.code = code;
    this.headers = headers;
  }
}

export const fileNotFound = (): FilesError => new FilesError('file_not_found', 'File not found');
