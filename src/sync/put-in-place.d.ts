// Types of src/sync/put-in-place.js (plain JavaScript: the root-file worker thread loads it too).

/** What the hub expects at a path it is about to write: nothing (null), or the file of this size and mtime. */
export type Expected = { size: number; mtimeMs: number } | null;

export declare class RootChanged extends Error {
  readonly code: 'ECHANGED';
  constructor(abs: string);
}
export declare function putInPlaceSync(tmp: string, abs: string, expect: Expected | undefined): void;
export declare function holds(abs: string, expect: Expected): boolean;
