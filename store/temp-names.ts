// The unique part of a temp file's name, for the store's chunk temps and the hub's root temps alike.

import { randomBytes } from 'node:crypto';

const tag = randomBytes(6).toString('hex');
let count = 0;

/**
 * Unique to this process and call: random per process, so a later process stays clear of temp files a crash left
 * behind; counted per call, because random bytes for every file cost ~30 us of main thread each and a push writes
 * thousands of files.
 */
export function uniqueSuffix(): string {
  return `${tag}-${(count++).toString(36)}`;
}
