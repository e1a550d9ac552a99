// The sync devices the Pi knows (BaluDesk's `register-desktop`, BaluHost's SyncState rows) and the folders BaluDesk
// reports (DesktopSyncFolder), kept in LevelDB sublevels of the daemon's database:
//   sync-devices       <user id>!<device id> -> SyncDevice
//   sync-desk-folders  <user id>!<device id>!<remote path> -> DesktopFolder
// Every key part is URI-encoded (`!` too), so a device id cannot collide with another key. Changes to one device are serialised (BaluDesk
// posts /sync/changes once per folder, possibly at the same time).

import type { ClassicLevel } from 'classic-level';
import type { AbstractSublevel } from 'abstract-level';
import { PathLocks } from '../sync/locks.ts';

type Db = ClassicLevel<string, string>;

/** Change tokens handed out per device and still accepted as a cursor (one per sync folder, plus slack). */
const TOKENS_KEPT = 32;

export interface IssuedToken {
  token: string;
  /** Store change sequence the answer was computed at. */
  seq: number;
  /** The store's index id at that time: sequence numbers of another index mean nothing. */
  indexId: string;
}

export interface SyncDevice {
  userId: number;
  deviceId: string;
  deviceName: string;
  registeredAt: number;
  /** Last /sync/changes answered (or the registration). */
  lastSync: number;
  /** The most recent token first. */
  tokens: IssuedToken[];
  /** Conflicts in the last /sync/changes answer. */
  lastConflicts: number;
}

export type Platform = 'windows' | 'mac' | 'linux';
export type SyncDirection = 'bidirectional' | 'push' | 'pull';

export interface DesktopFolder {
  userId: number;
  username: string;
  deviceId: string;
  deviceName: string;
  platform: Platform;
  remotePath: string;
  syncDirection: SyncDirection;
  isActive: boolean;
  lastReportedAt: number;
}

/** encodeURIComponent leaves `!` alone, so it is escaped too: `!` only ever separates parts. */
export const key = (...parts: (string | number)[]): string => parts.map((p) => encodeURIComponent(String(p)).replace(/!/g, '%21')).join('!');

export class SyncDevices {
  readonly #devices: AbstractSublevel<Db, string | Buffer | Uint8Array, string, SyncDevice>;
  readonly #folders: AbstractSublevel<Db, string | Buffer | Uint8Array, string, DesktopFolder>;
  readonly #locks = new PathLocks();
  readonly #now: () => number;

  constructor(db: Db, opts: { now?: () => number } = {}) {
    this.#devices = db.sublevel<string, SyncDevice>('sync-devices', { valueEncoding: 'json' });
    this.#folders = db.sublevel<string, DesktopFolder>('sync-desk-folders', { valueEncoding: 'json' });
    this.#now = opts.now ?? Date.now;
  }

  get(userId: number, deviceId: string): Promise<SyncDevice | undefined> {
    return this.#devices.get(key(userId, deviceId));
  }

  /**
   * BaluHost's register_device: a new device, or the existing one renamed. Called when BaluHost accepted a
   * `register-desktop` (or `sync/register`) for this user. Returns whether it already existed.
   */
  register(userId: number, deviceId: string, deviceName: string): Promise<{ device: SyncDevice; existed: boolean }> {
    const k = key(userId, deviceId);
    return this.#locks.run(k, async () => {
      const prev = await this.#devices.get(k);
      const now = this.#now();
      const device: SyncDevice = prev
        ? { ...prev, deviceName }
        : { userId, deviceId, deviceName, registeredAt: now, lastSync: now, tokens: [], lastConflicts: 0 };
      await this.#devices.put(k, device);
      return { device, existed: prev !== undefined };
    });
  }

  /**
   * Runs `fn` with the device under its lock and stores what it returns: a /sync/changes computation and the token it
   * issues are one step, so two folders syncing at once cannot lose each other's tokens.
   */
  async update<T>(userId: number, deviceId: string, fn: (device: SyncDevice) => Promise<{ device: SyncDevice; result: T }>): Promise<T | undefined> {
    const k = key(userId, deviceId);
    return this.#locks.run(k, async () => {
      const device = await this.#devices.get(k);
      if (!device) return undefined;
      const out = await fn(device);
      await this.#devices.put(k, { ...out.device, tokens: out.device.tokens.slice(0, TOKENS_KEPT) });
      return out.result;
    });
  }

  now(): number {
    return this.#now();
  }

  /** BaluHost's report-folders: upsert the reported folders, deactivate this device's others. */
  async reportFolders(userId: number, username: string, deviceId: string, deviceName: string, platform: Platform, folders: { remotePath: string; syncDirection: SyncDirection }[]): Promise<{ accepted: number; deactivated: number }> {
    return this.#locks.run(key('folders', userId, deviceId), async () => {
      const now = this.#now();
      const reported = new Set(folders.map((f) => f.remotePath));
      const batch = this.#folders.batch();
      let deactivated = 0;
      for await (const [k, f] of this.#folders.iterator({ gt: key(userId, deviceId) + '!', lt: key(userId, deviceId) + '"' })) {
        if (f.isActive && !reported.has(f.remotePath)) {
          batch.put(k, { ...f, isActive: false });
          deactivated += 1;
        }
      }
      for (const f of folders) {
        batch.put(key(userId, deviceId, f.remotePath), { userId, username, deviceId, deviceName, platform, remotePath: f.remotePath, syncDirection: f.syncDirection, isActive: true, lastReportedAt: now });
      }
      await batch.write();
      return { accepted: folders.length, deactivated };
    });
  }

  /** The folders BaluDesk reported: the user's own, or everyone's for `all`. */
  async folders(opts: { userId?: number; activeOnly: boolean }): Promise<DesktopFolder[]> {
    const range = opts.userId === undefined ? {} : { gt: key(opts.userId) + '!', lt: key(opts.userId) + '"' };
    const out: DesktopFolder[] = [];
    for await (const f of this.#folders.values(range)) if (!opts.activeOnly || f.isActive) out.push(f);
    return out;
  }
}
