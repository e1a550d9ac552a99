// BaluHost's state-comparison sync, answered from the Pi's store:
//   /sync/state    every file of the user with its SHA-256
//   /sync/changes  the client's file list against the store -> to_download / to_delete / conflicts
//
// Which files are the user's: BaluHost lists the files it records as owned by the user; the Pi records no owners,
// so it takes what BaluHost's jail lets the user reach: the home folder `<username>/` and `Shared/`, and for admins
// (never jailed) the whole tree.
//
// /sync/changes, as BaluHost computes it (services/sync/file_sync.py), sends every server file missing from the
// client's list to download and every listed path the server does not know to delete: a file the client just
// created and has not uploaded yet is then deleted on the client (BaluDesk applies to_delete before it uploads). The
// Pi keeps BaluHost's shapes and path rules but uses what its store knows, so nothing the client holds is lost:
//   - the change token is a fresh uuid4 on every answer, as BaluHost's, but the Pi remembers which store sequence it
//     was issued at. With a token it knows, only what changed since then is reported; with none (first sync) or an
//     unknown one, every file of the user missing from the list is to_download and nothing is deleted;
//   - to_delete holds only files deleted in the store (tombstones) since the token, and never a listed path;
//   - a listed path is a conflict when the server's copy changed since the token (or, on a first sync, whenever it
//     differs) and its SHA-256 is not the client's hash; a listed path deleted on the server since the token is a
//     conflict with server_hash "" (the client changed it: it is not deleted);
//   - a listed path the store does not know is left alone: the client uploads it.
// Paths are compared without a leading slash (BaluHost's FileMetadata.path), after src/files/paths.ts normalised and
// authorised them; /sync/state writes them with one, as BaluHost does.

import type { FileRecord, Store } from '../../store/index.ts';
import type { User } from '../auth/tokens.ts';
import { rootsOf } from '../files/paths.ts';
import { isoPlus00 } from './time.ts';

export interface ClientFile {
  /** Normalised store path. */
  path: string;
  /** SHA-256 hex, or '' (BaluDesk sends '' for files it has not hashed: newly created ones). */
  hash: string;
  size: number;
}

export interface ChangesAnswer {
  to_download: { path: string; action: 'add'; size: number; modified_at: string }[];
  to_delete: { path: string }[];
  conflicts: { path: string; client_hash: string; server_hash: string; server_modified_at: string }[];
}

export interface StateFile {
  path: string;
  size: number;
  sha256: string;
  modified_at: string | null;
}

type Roots = ReturnType<typeof rootsOf>;

const inRoots = (path: string, roots: Roots): boolean => roots === 'all' || roots.some((r) => path === r || path.startsWith(r + '/'));

async function* userFiles(store: Store, roots: Roots): AsyncGenerator<FileRecord> {
  if (roots === 'all') yield* store.filesUnder('');
  else for (const root of new Set(roots)) yield* store.filesUnder(root);
}

/** Changes in the user's folders since store sequence `since` (null: every file of the user, as for a first sync). */
export async function pendingSince(store: Store, user: User, since: number | null): Promise<number> {
  const roots = rootsOf(user);
  let n = 0;
  for await (const r of since === null ? userFiles(store, roots) : store.changesSince(since)) if (inRoots(r.path, roots)) n += 1;
  return n;
}

/** GET /sync/state: the user's files, `/`-prefixed, with SHA-256 ('' where the store has none: not yet known). */
export async function syncState(store: Store, user: User): Promise<StateFile[]> {
  const out: StateFile[] = [];
  for await (const r of userFiles(store, rootsOf(user))) {
    out.push({ path: `/${r.path}`, size: r.size, sha256: r.sha256 ?? '', modified_at: isoPlus00(r.mtimeMs) });
  }
  return out;
}

/**
 * POST /sync/changes against the store. `since` is the store sequence of the token the client presented, or null
 * (first sync / unknown token). The caller takes `store.seq` before calling and issues the next token at it.
 */
export async function computeChanges(store: Store, user: User, client: ClientFile[], since: number | null): Promise<ChangesAnswer> {
  const roots = rootsOf(user);
  const listed = new Map(client.map((c) => [c.path, c]));
  const answer: ChangesAnswer = { to_download: [], to_delete: [], conflicts: [] };
  const changedOnServer = (r: FileRecord) => since === null || r.seq > since;

  // What the server has (or deleted) that the client did not list.
  const candidates = since === null ? userFiles(store, roots) : store.changesSince(since);
  for await (const r of candidates) {
    if (listed.has(r.path) || !inRoots(r.path, roots)) continue;
    if (r.deleted) answer.to_delete.push({ path: r.path });
    else answer.to_download.push({ path: r.path, action: 'add', size: r.size, modified_at: isoPlus00(r.mtimeMs) });
  }

  // What the client listed (it changed these, or it is its first sync and it lists everything it knows).
  for (const c of listed.values()) {
    const r = await store.record(c.path);
    if (!r || !changedOnServer(r)) continue;
    if (r.deleted) {
      if (since !== null) answer.conflicts.push({ path: c.path, client_hash: c.hash, server_hash: '', server_modified_at: isoPlus00(r.mtimeMs) });
      continue;
    }
    if (c.hash !== '' && r.sha256 !== null && c.hash.toLowerCase() === r.sha256) continue;
    // Without a client hash or a server SHA-256, equal sizes are taken as equal content (BaluApp's rule): a first
    // sync of a tree that is already in place then reports no conflicts.
    if ((c.hash === '' || r.sha256 === null) && c.size === r.size) continue;
    answer.conflicts.push({ path: c.path, client_hash: c.hash, server_hash: r.sha256 ?? '', server_modified_at: isoPlus00(r.mtimeMs) });
  }
  return answer;
}
