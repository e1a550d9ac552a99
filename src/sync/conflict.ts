// Conflict rules, Syncthing's (lib/model/folder_sendrecv.go): when both peers changed a path since their common
// version, the version with the older modification time loses (equal times: the peer with the larger id loses), a
// modification beats a deletion, and the loser is kept under
//   <name>.sync-conflict-<YYYYMMDD>-<HHMMSS>-<peer>.<ext>
// where the time is the detecting peer's local clock and <peer> the id of the peer whose version lost.

export interface Contender {
  deleted: boolean;
  mtimeMs: number;
  /** Id of the peer whose version this is. */
  peer: string;
}

export type Verdict =
  /** The incoming version wins; keep the current one under a conflict name (unless it is a deletion). */
  | 'incoming'
  /** The current version stays; keep the incoming one under a conflict name (unless it is a deletion). */
  | 'current';

export function decide(current: Contender, incoming: Contender): Verdict {
  if (current.deleted !== incoming.deleted) return current.deleted ? 'incoming' : 'current';
  if (current.mtimeMs !== incoming.mtimeMs) return current.mtimeMs < incoming.mtimeMs ? 'incoming' : 'current';
  // Equal times: the larger peer id loses (deterministic on both sides).
  return current.peer > incoming.peer ? 'incoming' : 'current';
}

const pad = (n: number, w = 2): string => String(n).padStart(w, '0');

/** `at` as names carry it: YYYYMMDD-HHMMSS, local time (Syncthing's conflict and version names). */
export const timeStamp = (at: Date): string =>
  `${at.getFullYear()}${pad(at.getMonth() + 1)}${pad(at.getDate())}-${pad(at.getHours())}${pad(at.getMinutes())}${pad(at.getSeconds())}`;

/** `path` with its last segment rebuilt from its stem and extension, as Go's filepath.Ext splits it (dot included). */
export function withExtension(path: string, name: (stem: string, ext: string) => string): string {
  const slash = path.lastIndexOf('/');
  const base = path.slice(slash + 1);
  const dot = base.lastIndexOf('.');
  const [stem, ext] = dot >= 0 ? [base.slice(0, dot), base.slice(dot)] : [base, ''];
  return path.slice(0, slash + 1) + name(stem, ext);
}

/** The conflict name of `path`. */
export function conflictName(path: string, at: Date, peer: string): string {
  return withExtension(path, (stem, ext) => `${stem}.sync-conflict-${timeStamp(at)}-${peer}${ext}`);
}

/** Whether a path is itself a conflict copy (Syncthing does not make conflict copies of conflict copies either). */
export function isConflictCopy(path: string): boolean {
  return /\.sync-conflict-\d{8}-\d{6}-[A-Z2-7]+(\.[^/]*)?$/.test(path);
}
