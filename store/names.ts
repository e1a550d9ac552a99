// File names inside the store are relative POSIX paths chosen by clients and peers, i.e. untrusted input. They become
// LevelDB keys (never filesystem paths: bytes live in content-addressed chunk files), but a hub role materialises them
// under its root folder, so anything that could escape a folder or alias another name is refused here, once.

import { StoreError } from './errors.ts';

const MAX_NAME_BYTES = 4096;
const MAX_SEGMENT_BYTES = 255;

/** Returns the name unchanged if it is acceptable, else throws StoreError('invalid_name'). */
export function validateName(name: unknown): string {
  if (typeof name !== 'string') throw invalid(String(name), 'not a string');
  if (name.length === 0) throw invalid(name, 'empty');
  if (name.includes('\0')) throw invalid(name, 'contains a NUL byte');
  // Control characters (newlines in particular) break line-oriented tools and logs; no real client needs them.
  if (/[\u0001-\u001f\u007f]/.test(name)) throw invalid(name, 'contains a control character');
  if (name.startsWith('/')) throw invalid(name, 'absolute path');
  if (name.includes('\\')) throw invalid(name, 'contains a backslash (use / as the separator)');
  if (/^[A-Za-z]:/.test(name)) throw invalid(name, 'drive-letter path');
  if (Buffer.byteLength(name) > MAX_NAME_BYTES) throw invalid(name, `longer than ${MAX_NAME_BYTES} bytes`);
  for (const segment of name.split('/')) {
    if (segment === '') throw invalid(name, 'empty path segment');
    if (segment === '.' || segment === '..') throw invalid(name, `"${segment}" segment`);
    if (Buffer.byteLength(segment) > MAX_SEGMENT_BYTES) throw invalid(name, `segment longer than ${MAX_SEGMENT_BYTES} bytes`);
  }
  if (!name.isWellFormed()) throw invalid(name, 'not well-formed Unicode');
  return name;
}

/** A directory argument: '' (or '/', '.') is the root; otherwise the same rules as a file name. */
export function validateDir(dir: string | undefined): string {
  if (dir === undefined || dir === '' || dir === '/' || dir === '.') return '';
  return validateName(dir.endsWith('/') ? dir.slice(0, -1) : dir);
}

function invalid(name: string, why: string): StoreError {
  return new StoreError('invalid_name', `invalid name ${JSON.stringify(name)}: ${why}`, { details: { name } });
}
