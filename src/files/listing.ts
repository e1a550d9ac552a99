// GET /api/files/list: a folder's entries as BaluHost's FileItem (all 14 keys, nulls included) plus the keys BaluDesk's
// explorer reads (`owner`, `created_at`, `updated_at`, `mount_id`), none of them null where a client dereferences
// them: BaluDesk's nlohmann `value()` throws on a null and drops the whole listing. Timestamps are UTC with `Z`
// (BaluApp's Instant.parse shows an empty folder otherwise). Directories first, then by lower-cased name.

import type { User } from '../auth/tokens.ts';
import { utcIso, type FileTree } from './file-tree.ts';
import type { ListedEntry } from './listing-cache.ts';
import { SHARED, isSystemName, resolvePath } from './paths.ts';

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

/** A folder entry as a FileItem; `owner` is the same for every entry of one folder (its top-level folder). */
function item(e: ListedEntry, owner: { owner_id: string | null; owner_name: string | null }): FileItem {
  return {
    name: e.name,
    path: e.path,
    size: e.size,
    type: e.type === 'file' ? 'file' : 'directory',
    modified_at: e.modifiedAt,
    owner_id: owner.owner_id,
    owner_name: owner.owner_name,
    mime_type: e.mimeType,
    file_id: e.id,
    checksum: e.checksum,
    sync_info: null,
    can_read: null,
    can_write: null,
    can_delete: null,
    owner: owner.owner_name ?? '',
    created_at: e.modifiedAt,
    updated_at: e.modifiedAt,
    mount_id: MOUNT_ID,
  };
}

/** Files live under `Shared/` or a user's home `<username>/`; the home names the owner. */
function ownerOf(path: string, user: User): { owner_id: string | null; owner_name: string | null } {
  const top = path.split('/')[0]!;
  if (top === SHARED) return { owner_id: null, owner_name: null };
  return { owner_id: top === user.username ? String(user.id) : null, owner_name: top };
}

/** The listing of `rawPath` for `user`; a path that is not a folder lists as empty (BaluHost: `{"files":[]}`). */
export async function listFolder(tree: FileTree, user: User, rawPath: string): Promise<FileItem[]> {
  const dir = resolvePath(user, rawPath, 'read');
  if (dir === '' && user.role !== 'admin') return virtualRoot(tree, user);
  const listed = await tree.listing(dir);
  if (!listed) return [];
  const visible = user.role === 'admin' ? listed : listed.filter((e) => !isSystemName(e.name));
  const owner = ownerOf(dir, user);
  return visible.map((e) => item(e, owner));
}

/** A non-admin's root, as BaluHost builds it: `Shared` and the home folder, size 0 (no "Shared with me": no shares). */
async function virtualRoot(tree: FileTree, user: User): Promise<FileItem[]> {
  const names = [SHARED, user.username];
  const ids = await tree.ids.idsOf(names);
  const items = await Promise.all(
    names.map(async (name, i): Promise<FileItem> => {
      const folder = await tree.folders.get(name);
      const facts = await tree.sizes.get(name);
      const mtimeMs = Math.max(facts.mtimeMs, folder?.createdMs ?? 0) || Date.now();
      const e: ListedEntry = { name, path: name, type: 'dir', size: 0, mtimeMs, checksum: null, id: ids[i]!, modifiedAt: utcIso(mtimeMs), mimeType: null };
      return item(e, ownerOf(name, user));
    }),
  );
  return items.sort((a, b) => (a.name.toLowerCase() < b.name.toLowerCase() ? -1 : 1));
}
