// GET /api/files/list: a folder's entries as BaluHost's FileItem (all 14 keys, nulls included) plus the keys BaluDesk's
// explorer reads (`owner`, `created_at`, `updated_at`, `mount_id`), none of them null where a client dereferences
// them: BaluDesk's nlohmann `value()` throws on a null and drops the whole listing. Timestamps are UTC with `Z`
// (BaluApp's Instant.parse shows an empty folder otherwise). Directories first, then by lower-cased name.

import type { User } from '../auth/tokens.ts';
import type { FileTree, Entry } from './file-tree.ts';
import { guessMediaType } from './content-type.ts';
import { SHARED, isSystemName, joinPath, resolvePath } from './paths.ts';

/** The one mountpoint the Pi shows (GET /api/files/mountpoints): the BaluHost storage it caches. */
export const MOUNT_ID = 1;

export interface FileItem {
  name: string;
  path: string;
  size: number;
  type: 'file' | 'directory';
  modified_at: string;
  owner_id: string | null;
  owner_name: string | null;
  mime_type: string | null;
  file_id: number;
  checksum: string | null;
  sync_info: null;
  can_read: null;
  can_write: null;
  can_delete: null;
  owner: string;
  created_at: string;
  updated_at: string;
  mount_id: number;
}

const iso = (ms: number): string => new Date(Number.isFinite(ms) && ms > 0 ? ms : 0).toISOString();

/** Files live under `Shared/` or a user's home `<username>/`; the home names the owner. */
function ownerOf(path: string, user: User): { owner_id: string | null; owner_name: string | null } {
  const top = path.split('/')[0]!;
  if (top === SHARED) return { owner_id: null, owner_name: null };
  return { owner_id: top === user.username ? String(user.id) : null, owner_name: top };
}

function item(user: User, e: { name: string; path: string; type: 'file' | 'dir'; size: number; mtimeMs: number; checksum: string | null; id: number }): FileItem {
  const owner = ownerOf(e.path, user);
  const at = iso(e.mtimeMs);
  return {
    name: e.name,
    path: e.path,
    size: e.size,
    type: e.type === 'file' ? 'file' : 'directory',
    modified_at: at,
    ...owner,
    mime_type: e.type === 'file' ? guessMediaType(e.name) : null,
    file_id: e.id,
    checksum: e.type === 'file' ? e.checksum : null,
    sync_info: null,
    can_read: null,
    can_write: null,
    can_delete: null,
    owner: owner.owner_name ?? '',
    created_at: at,
    updated_at: at,
    mount_id: MOUNT_ID,
  };
}

export function sortItems(items: FileItem[]): FileItem[] {
  return items.sort((a, b) => {
    if (a.type !== b.type) return a.type === 'directory' ? -1 : 1;
    const x = a.name.toLowerCase();
    const y = b.name.toLowerCase();
    return x < y ? -1 : x > y ? 1 : 0;
  });
}

/** The listing of `rawPath` for `user`; a path that is not a folder lists as empty (BaluHost: `{"files":[]}`). */
export async function listFolder(tree: FileTree, user: User, rawPath: string): Promise<FileItem[]> {
  const dir = resolvePath(user, rawPath, 'read');
  if (dir === '' && user.role !== 'admin') return virtualRoot(tree, user);
  const node = await tree.node(dir);
  if (node?.type !== 'dir') return [];
  let entries: Entry[] = await tree.entries(dir);
  if (user.role !== 'admin') entries = entries.filter((e) => !isSystemName(e.name));
  const ids = await tree.ids.idsOf(entries.map((e) => e.path));
  const items = await Promise.all(
    entries.map(async (e, i) => {
      if (e.type === 'file') {
        const r = e.record!;
        return item(user, { name: e.name, path: e.path, type: 'file', size: r.size ?? 0, mtimeMs: r.mtimeMs ?? 0, checksum: r.sha256 ?? null, id: ids[i]! });
      }
      const facts = await tree.sizes.get(e.path);
      return item(user, { name: e.name, path: e.path, type: 'dir', size: facts.size, mtimeMs: Math.max(facts.mtimeMs, e.createdMs ?? 0), checksum: null, id: ids[i]! });
    }),
  );
  return sortItems(items);
}

/** A non-admin's root, as BaluHost builds it: `Shared` and the home folder, size 0 (no "Shared with me": no shares). */
async function virtualRoot(tree: FileTree, user: User): Promise<FileItem[]> {
  const names = [SHARED, user.username];
  const ids = await tree.ids.idsOf(names);
  const items = await Promise.all(
    names.map(async (name, i) => {
      const folder = await tree.folders.get(name);
      const facts = await tree.sizes.get(name);
      const mtimeMs = Math.max(facts.mtimeMs, folder?.createdMs ?? 0) || Date.now();
      return item(user, { name, path: joinPath('', name), type: 'dir', size: 0, mtimeMs, checksum: null, id: ids[i]! });
    }),
  );
  return sortItems(items);
}
