// The configured plugs, persisted in a LevelDB sublevel the daemon hands in (`db.sublevel('tapo-devices')`), held in
// memory for the poller and the API. Ids are small integers that are never reused. Identity is the address until the
// plug has been reached; after that its MAC, so a plug that moves to another IP (DHCP) is updated by discovery
// instead of becoming a duplicate device.

import { isIPv6 } from 'node:net';
import type { AbstractLevel } from 'abstract-level';
import type { PlugDeviceInfo } from './plug-client.ts';
import { formatHostPort } from './plug-client.ts';
import { DEFAULT_PLUG_PORT, parseDeviceAddress, type PlugAddress } from './device-list.ts';
import type { DeviceRole, PlugDevice } from './types.ts';
import type { DiscoveredPlug } from './discovery.ts';
import { CodedError } from '../errors.ts';

/** A ClassicLevel or any sublevel of one. */
export type DeviceStore = AbstractLevel<string | Buffer | Uint8Array, string, string>;

export type DeviceRegistryErrorCode = 'DEVICE_NOT_FOUND' | 'DEVICE_EXISTS' | 'NAS_ROLE_TAKEN' | 'DEVICE_INVALID';

export class DeviceRegistryError extends CodedError<DeviceRegistryErrorCode> {
  override name = 'DeviceRegistryError';
}

export interface NewDevice {
  host: string;
  port?: number;
  name?: string | null;
  role?: DeviceRole;
  maxPowerW?: number | null;
}

export interface DevicePatch {
  name?: string | null;
  role?: DeviceRole;
  maxPowerW?: number | null;
  host?: string;
  port?: number;
}

export interface DeviceRegistryOptions {
  /** lastSeen alone is written at most this often per device (it changes every poll), ms. Default 5 min. */
  persistSeenEveryMs?: number;
}

interface StoredDevice {
  id: number;
  host: string;
  port: number;
  customName: string | null;
  nickname: string | null;
  role: DeviceRole;
  model: string | null;
  firmware: string | null;
  mac: string | null;
  maxPowerW: number | null;
  online: boolean;
  lastSeen: number | null;
  lastError: string | null;
}

const ROLES: readonly DeviceRole[] = ['nas', 'monitor', 'generic'];
const idKey = (id: number): string => String(id).padStart(10, '0');
const addrKey = (a: PlugAddress): string => formatHostPort(a.host, a.port);

export class DeviceRegistry {
  #devices;
  #meta;
  #opts: Required<DeviceRegistryOptions>;
  #byId = new Map<number, StoredDevice>();
  #persistedSeen = new Map<number, number | null>();
  #nextId = 1;
  #removed = new Set<string>();
  #lock: Promise<unknown> = Promise.resolve();
  #opened = false;

  constructor(db: DeviceStore, options: DeviceRegistryOptions = {}) {
    this.#devices = db.sublevel<string, StoredDevice>('device', { valueEncoding: 'json' });
    this.#meta = db.sublevel<string, unknown>('meta', { valueEncoding: 'json' });
    this.#opts = { persistSeenEveryMs: options.persistSeenEveryMs ?? 5 * 60_000 };
  }

  /** Loads the devices. Everyone starts offline: online means "answered since this process started". */
  async open(): Promise<void> {
    if (this.#opened) return;
    for await (const [, d] of this.#devices.iterator()) {
      this.#byId.set(d.id, { ...d, online: false });
      this.#persistedSeen.set(d.id, d.lastSeen);
    }
    const next = await this.#meta.get('nextId');
    this.#nextId = typeof next === 'number' ? next : Math.max(0, ...this.#byId.keys()) + 1;
    const removed = await this.#meta.get('removedFromConfig');
    if (Array.isArray(removed)) for (const r of removed) if (typeof r === 'string') this.#removed.add(r);
    this.#opened = true;
  }

  list(): PlugDevice[] {
    return [...this.#byId.values()].sort((a, b) => a.id - b.id).map(toPublic);
  }

  get(id: number): PlugDevice | undefined {
    const d = this.#byId.get(id);
    return d && toPublic(d);
  }

  nasDevice(): PlugDevice | undefined {
    const d = [...this.#byId.values()].find((x) => x.role === 'nas');
    return d && toPublic(d);
  }

  /** Adds the configured plugs that are not known yet (by address). A plug the operator removed through the API stays
   *  removed even though it is still in the configuration; adding it again through the API brings it back. */
  seed(addresses: PlugAddress[]): Promise<PlugDevice[]> {
    return this.#exclusive(async () => {
      const added: PlugDevice[] = [];
      for (const a of addresses) {
        if (this.#findByAddress(a) || this.#removed.has(addrKey(a))) continue;
        added.push(await this.#insert({ host: a.host, port: a.port }));
      }
      return added;
    });
  }

  add(input: NewDevice): Promise<PlugDevice> {
    return this.#exclusive(async () => {
      const address = normaliseAddress(input.host, input.port);
      const existing = this.#findByAddress(address);
      if (existing) throw new DeviceRegistryError('DEVICE_EXISTS', `Plug ${addrKey(address)} is already device ${existing.id}`);
      if (this.#removed.delete(addrKey(address))) await this.#meta.put('removedFromConfig', [...this.#removed]);
      return this.#insert({ ...input, ...address });
    });
  }

  update(id: number, patch: DevicePatch): Promise<PlugDevice> {
    return this.#exclusive(async () => {
      const d = this.#require(id);
      const next: StoredDevice = { ...d };
      if (patch.name !== undefined) next.customName = cleanName(patch.name);
      if (patch.role !== undefined) next.role = this.#checkRole(patch.role, id);
      if (patch.maxPowerW !== undefined) next.maxPowerW = checkMaxPower(patch.maxPowerW);
      if (patch.host !== undefined || patch.port !== undefined) {
        const address = normaliseAddress(patch.host ?? d.host, patch.port ?? d.port);
        const other = this.#findByAddress(address);
        if (other && other.id !== id) throw new DeviceRegistryError('DEVICE_EXISTS', `Plug ${addrKey(address)} is already device ${other.id}`);
        next.host = address.host;
        next.port = address.port;
      }
      await this.#write(next);
      return toPublic(next);
    });
  }

  remove(id: number): Promise<boolean> {
    return this.#exclusive(async () => {
      const d = this.#byId.get(id);
      if (!d) return false;
      this.#removed.add(addrKey(d));
      await this.#devices.db.batch<string, unknown>([
        { type: 'del', key: idKey(id), sublevel: this.#devices },
        { type: 'put', key: 'removedFromConfig', value: [...this.#removed], sublevel: this.#meta },
      ], {});
      this.#byId.delete(id);
      this.#persistedSeen.delete(id);
      return true;
    });
  }

  /** What the plug said about itself (get_device_info). */
  recordInfo(id: number, info: PlugDeviceInfo): Promise<PlugDevice | undefined> {
    return this.#exclusive(async () => {
      const d = this.#byId.get(id);
      if (!d) return undefined;
      const next: StoredDevice = {
        ...d,
        model: info.model,
        firmware: info.firmware,
        mac: info.mac ?? d.mac,
        nickname: info.nickname || d.nickname,
      };
      if (next.model !== d.model || next.firmware !== d.firmware || next.mac !== d.mac || next.nickname !== d.nickname) {
        await this.#write(next);
      }
      return toPublic(next);
    });
  }

  /** Outcome of a poll. Writes through when online/lastError change; lastSeen alone is batched in time. */
  recordPoll(id: number, status: { online: boolean; lastSeen?: number; lastError: string | null }): Promise<PlugDevice | undefined> {
    return this.#exclusive(async () => {
      const d = this.#byId.get(id);
      if (!d) return undefined;
      const next: StoredDevice = { ...d, online: status.online, lastError: status.lastError, lastSeen: status.lastSeen ?? d.lastSeen };
      const persisted = this.#persistedSeen.get(id) ?? null;
      const seenDue = next.lastSeen !== null && (persisted === null || next.lastSeen - persisted >= this.#opts.persistSeenEveryMs);
      if (next.online !== d.online || next.lastError !== d.lastError || seenDue) await this.#write(next);
      else this.#byId.set(id, next);
      return toPublic(next);
    });
  }

  /** Folds a discovery scan in: known MACs get their new address, unknown Tapo plugs are added as `generic`. */
  applyDiscovery(found: DiscoveredPlug[]): Promise<{ added: PlugDevice[]; updated: PlugDevice[] }> {
    return this.#exclusive(async () => {
      const added: PlugDevice[] = [];
      const updated: PlugDevice[] = [];
      for (const f of found) {
        if (!f.deviceType.startsWith('SMART.TAPOPLUG')) continue;
        const address = { host: f.host, port: f.port };
        const byMac = f.mac ? [...this.#byId.values()].find((d) => d.mac === f.mac) : undefined;
        if (byMac) {
          if (byMac.host !== address.host || byMac.port !== address.port) {
            const clash = this.#findByAddress(address);
            if (clash && clash.id !== byMac.id) continue; // another record holds that address; leave both to the operator
            const next = { ...byMac, ...address, model: byMac.model ?? f.model };
            await this.#write(next);
            updated.push(toPublic(next));
          }
          continue;
        }
        const byAddr = this.#findByAddress(address);
        if (byAddr) {
          if (!byAddr.mac && f.mac) {
            const next = { ...byAddr, mac: f.mac, model: byAddr.model ?? f.model };
            await this.#write(next);
            updated.push(toPublic(next));
          }
          continue;
        }
        added.push(await this.#insert({ ...address, mac: f.mac, model: f.model }));
      }
      return { added, updated };
    });
  }

  // ---- internals --------------------------------------------------------------------------------------------------

  /** The plugs a dashboard's power panel shows (BaluHost's `panel_devices`), without ids removed since. */
  async panelDevices(): Promise<number[]> {
    const ids = ((await this.#meta.get('panelDevices')) as number[] | undefined) ?? [];
    return ids.filter((id) => this.#byId.has(id));
  }

  /** Replaces the panel selection; every id must be a configured plug. */
  setPanelDevices(ids: number[]): Promise<number[]> {
    return this.#exclusive(async () => {
      for (const id of ids) this.#require(id);
      const unique = [...new Set(ids)];
      await this.#meta.put('panelDevices', unique);
      return unique;
    });
  }

  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    if (!this.#opened) return Promise.reject(new Error('DeviceRegistry used before open()'));
    const run = this.#lock.then(fn, fn);
    this.#lock = run.catch(() => undefined);
    return run;
  }

  #require(id: number): StoredDevice {
    const d = this.#byId.get(id);
    if (!d) throw new DeviceRegistryError('DEVICE_NOT_FOUND', `No plug with id ${id}`);
    return d;
  }

  #findByAddress(a: PlugAddress): StoredDevice | undefined {
    for (const d of this.#byId.values()) if (d.host === a.host && d.port === a.port) return d;
    return undefined;
  }

  #checkRole(role: unknown, selfId: number | null): DeviceRole {
    if (!ROLES.includes(role as DeviceRole)) {
      throw new DeviceRegistryError('DEVICE_INVALID', `Role must be one of ${ROLES.join(', ')} (got ${JSON.stringify(role)})`);
    }
    if (role === 'nas') {
      const holder = [...this.#byId.values()].find((d) => d.role === 'nas' && d.id !== selfId);
      if (holder) {
        throw new DeviceRegistryError(
          'NAS_ROLE_TAKEN',
          `Only one plug can power the NAS: device ${holder.id} ("${toPublic(holder).name}") already has role nas; ` +
            `give it another role first`,
        );
      }
    }
    return role as DeviceRole;
  }

  async #insert(input: NewDevice & { mac?: string | null; model?: string | null }): Promise<PlugDevice> {
    const id = this.#nextId;
    const d: StoredDevice = {
      id,
      host: input.host,
      port: input.port ?? DEFAULT_PLUG_PORT,
      customName: cleanName(input.name ?? null),
      nickname: null,
      role: this.#checkRole(input.role ?? 'generic', null),
      model: input.model ?? null,
      firmware: null,
      mac: input.mac ?? null,
      maxPowerW: checkMaxPower(input.maxPowerW ?? null),
      online: false,
      lastSeen: null,
      lastError: null,
    };
    // The device and the id counter move together, so a crash cannot hand out an id twice.
    await this.#devices.db.batch<string, unknown>([
      { type: 'put', key: idKey(id), value: d, sublevel: this.#devices },
      { type: 'put', key: 'nextId', value: id + 1, sublevel: this.#meta },
    ], {});
    this.#nextId = id + 1;
    this.#byId.set(id, d);
    this.#persistedSeen.set(id, null);
    return toPublic(d);
  }

  async #write(d: StoredDevice): Promise<void> {
    await this.#devices.put(idKey(d.id), d);
    this.#byId.set(d.id, d);
    this.#persistedSeen.set(d.id, d.lastSeen);
  }
}

function toPublic(d: StoredDevice): PlugDevice {
  return {
    id: d.id,
    host: d.host,
    port: d.port,
    name: d.customName ?? (d.nickname || `Tapo ${formatHostPort(d.host, d.port)}`),
    nickname: d.nickname,
    role: d.role,
    model: d.model,
    firmware: d.firmware,
    mac: d.mac,
    maxPowerW: d.maxPowerW,
    online: d.online,
    lastSeen: d.lastSeen,
    lastError: d.lastError,
  };
}

function normaliseAddress(host: string, port: number | undefined): PlugAddress {
  let parsed: PlugAddress;
  try {
    parsed = parseDeviceAddress(isIPv6(host) && port !== undefined ? `[${host}]` : host);
  } catch (err) {
    throw new DeviceRegistryError('DEVICE_INVALID', err instanceof Error ? err.message : String(err));
  }
  if (port === undefined) return parsed;
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new DeviceRegistryError('DEVICE_INVALID', `Port must be an integer in 1-65535 (got ${port})`);
  }
  return { host: parsed.host, port };
}

function cleanName(name: string | null): string | null {
  if (name === null) return null;
  const t = name.trim();
  if (t.length > 64) throw new DeviceRegistryError('DEVICE_INVALID', 'Name is longer than 64 characters');
  return t === '' ? null : t;
}

function checkMaxPower(w: number | null): number | null {
  if (w === null) return null;
  if (typeof w !== 'number' || !Number.isFinite(w) || w <= 0 || w > 10_000) {
    throw new DeviceRegistryError('DEVICE_INVALID', `maxPowerW must be a number of watts in (0, 10000] or null (got ${w})`);
  }
  return w;
}
