// BaluHost's path model, once for every file and sync route (../shared/reference/baluhost-api.md §3.1): paths are
// POSIX, relative to the storage root, without a leading slash; the top level holds `Shared/` and one home folder per
// user. A path the client sends becomes a store name here (the store keys files by exactly these names), so the
// facade and the sync protocol see the same tree the hub writes under its root folder.
import type { User } from '../auth/tokens.ts';
import { CodedError } from '../errors.ts';
import { BALUHOST_SYSTEM_NAMES, IgnoreRules } from '../sync/ignore.ts';

export type PathErrorCode = 'invalid_path' | 'access_denied';

/** Maps to 400 "Invalid path" / 403 "Access denied" (src/http/errors.ts), BaluHost's details. */
export class PathError extends CodedError<PathErrorCode> {
  override name = 'PathError';
}

export const SHARED = 'Shared';
/** BaluHost's virtual folder of things shared with a non-admin; the Pi knows no shares, so it is never listed. */
export const SHARED_WITH_ME = 'Shared with me';

/**
 * Turns a client path into a store name ('' = the root): one or more leading slashes and a trailing slash are
 * dropped (clients send `/a`, `//a` and `a/`), empty and `.` segments vanish. `..` anywhere, NUL and other control
 * characters, and backslashes are refused rather than cleaned up: a path that means something odd is an attack or a
 * bug, and guessing what it meant could reach a file the caller did not name.
 */
export function normalizePath(raw: string): string {
  if (typeof raw !== 'string') throw new PathError('invalid_path', 'Invalid path');
  // Control characters include NUL, which the OS would truncate at and BaluHost strips.
  if (/[\u0000-\u001f\u007f\\]/.test(raw)) throw new PathError('invalid_path', 'Invalid path');
  const parts: string[] = [];
  for (const seg of raw.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') throw new PathError('invalid_path', 'Invalid path');
    parts.push(seg);
  }
  const path = parts.join('/');
  if (!path.isWellFormed()) throw new PathError('invalid_path', 'Invalid path');
  return path;
}

/** The same list a hub leaves out of the sync by default (one list, so that the two cannot drift apart). */
const systemNames = new IgnoreRules(BALUHOST_SYSTEM_NAMES);

/** Names BaluHost hides from non-admins at any depth. */
export function isSystemName(name: string): boolean {
  return systemNames.ignoresName(name);
}

/** The top-level folders a user may enter: everything for admins, `Shared` and the home folder for the rest. */
export function rootsOf(user: User): string[] | 'all' {
  return user.role === 'admin' ? 'all' : [SHARED, user.username];
}

/**
 * BaluHost's jail (`_jail_path`): admins may touch any path; other users `Shared/…` and `<username>/…`, and only read
 * the root itself (which lists their two folders). System names are invisible to non-admins, so they are denied too.
 */
export function authorize(user: User, path: string, access: 'read' | 'write'): void {
  if (user.role === 'admin') return;
  if (path === '') {
    if (access === 'read') return;
    throw new PathError('access_denied', 'Access denied');
  }
  const segs = path.split('/');
  const top = segs[0]!;
  if ((top !== SHARED && top !== user.username) || segs.some(isSystemName)) throw new PathError('access_denied', 'Access denied');
  // Writing the top-level folder itself (deleting or renaming `Shared` or one's home) is not allowed either.
  if (access === 'write' && segs.length === 1) throw new PathError('access_denied', 'Access denied');
}

/** normalizePath + authorize: the store name for a path the user sent. */
export function resolvePath(user: User, raw: string, access: 'read' | 'write'): string {
  const path = normalizePath(raw);
  authorize(user, path, access);
  return path;
}

export function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i < 0 ? '' : path.slice(0, i);
}

export function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

export function joinPath(dir: string, name: string): string {
  return dir === '' ? name : `${dir}/${name}`;
}
