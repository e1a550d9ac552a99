// BaluApp's sync folders (/api/mobile/sync/folders/...), kept in the LevelDB sublevel `mobile-sync-folders`:
//   f!<folder id>                        -> MobileFolder
//   d!<user id>!<device id>!<folder id>  -> ''   (the device's list)
// A folder belongs to the user who created it: another user's folder id answers 404, as if it did not exist.
// BaluApp never sets last_sync itself; it relies on the server advancing it when the worker reports the end of a run
// (PUT {"status":"idle"}), and uses it as the baseline of its conflict detection.

import { randomUUID } from 'node:crypto';
import type { ClassicLevel } from 'classic-level';
import type { AbstractSublevel } from 'abstract-level';
import { key } from './devices.ts';
import { SyncApiError } from './errors.ts';

type Db = ClassicLevel<string, string>;

export interface MobileFolder {
  id: string;
  userId: number;
  deviceId: string;
  localPath: string;
  remotePath: string;
  syncType: string;
  autoSync: boolean;
  conflictResolution: string;
  excludePatterns: string[];
  lastSync: number | null;
  status: string;
  createdAt: number;
}

export interface MobileFolderCreate {
  localPath: string;
  remotePath: string;
  syncType: string;
  autoSync: boolean;
  conflictResolution: string;
  excludePatterns: string[];
}

export type MobileFolderUpdate = Partial<MobileFolderCreate> & { status?: string };

/** The status BaluApp's worker sends when a run finished: the moment last_sync advances to. */
export const FINISHED_STATUS = 'idle';

export class MobileFolders {
  readonly #db: AbstractSublevel<Db, string | Buffer | Uint8Array, string, MobileFolder | ''>;
  readonly #now: () => number;

  constructor(db: Db, opts: { now?: () => number } = {}) {
    this.#db = db.sublevel<string, MobileFolder | ''>('mobile-sync-folders', { valueEncoding: 'json' });
    this.#now = opts.now ?? Date.now;
  }

  async list(userId: number, deviceId: string): Promise<MobileFolder[]> {
    const prefix = `d!${key(userId, deviceId)}!`;
    const ids: string[] = [];
    for await (const k of this.#db.keys({ gt: prefix, lt: prefix.slice(0, -1) + '"' })) ids.push(decodeURIComponent(k.slice(prefix.length)));
    const rows = await this.#db.getMany(ids.map((id) => `f!${key(id)}`));
    return rows.filter((r): r is MobileFolder => typeof r === 'object' && r !== null).sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id));
  }

  async create(userId: number, deviceId: string, data: MobileFolderCreate): Promise<MobileFolder> {
    const folder: MobileFolder = { id: randomUUID(), userId, deviceId, ...data, lastSync: null, status: FINISHED_STATUS, createdAt: this.#now() };
    await this.#db.batch([
      { type: 'put', key: `f!${key(folder.id)}`, value: folder },
      { type: 'put', key: `d!${key(userId, deviceId, folder.id)}`, value: '' },
    ]);
    return folder;
  }

  async #own(userId: number, folderId: string): Promise<MobileFolder> {
    const f = await this.#db.get(`f!${key(folderId)}`);
    if (!f || f.userId !== userId) throw new SyncApiError('sync_folder_not_found', 'Sync folder not found');
    return f;
  }

  /** Applies the given fields; a status of 'idle' (a run finished) advances last_sync to now. */
  async update(userId: number, folderId: string, change: MobileFolderUpdate): Promise<MobileFolder> {
    const prev = await this.#own(userId, folderId);
    const next: MobileFolder = { ...prev };
    for (const [k, v] of Object.entries(change) as [keyof MobileFolderUpdate, unknown][]) if (v !== undefined) (next as unknown as Record<string, unknown>)[k] = v;
    if (change.status === FINISHED_STATUS) next.lastSync = Math.max(this.#now(), (prev.lastSync ?? 0) + 1);
    await this.#db.put(`f!${key(folderId)}`, next);
    return next;
  }

  async remove(userId: number, folderId: string): Promise<void> {
    const f = await this.#own(userId, folderId);
    await this.#db.batch([
      { type: 'del', key: `f!${key(folderId)}` },
      { type: 'del', key: `d!${key(userId, f.deviceId, folderId)}` },
    ]);
  }
}
