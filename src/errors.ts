// The base of the daemon's domain errors: a stable `code`, mapped to an HTTP status in src/http/errors.ts and to a
// gRPC code in src/rpc/errors.ts (the store, a library, has its own StoreError with the same shape).
export class CodedError<C extends string = string> extends Error {
  readonly code: C;
  constructor(code: C, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}
