// Polls every plug on its own schedule: one client (one plug session) per device, at most `concurrency` polls at
// once, never two polls of the same device at once, each poll bounded by a deadline so a hung plug holds one slot
// for at most `pollTimeoutMs` and never delays the other plugs' readings. A plug is offline after `offlineAfter`
// consecutive failed polls and online again on the next success; while offline it is retried with capped exponential
// backoff. The latest reading of each plug stays in memory until a newer one replaces it (the Python version lost
// it at every buffer flush).

import type { PlugCallOptions, PlugClient, PlugClientFactory, PlugCredentials, PlugDeviceInfo } from './plug-client.ts';
import { formatHostPort } from './plug-client.ts';
import { DeviceRegistryError } from './device-registry.ts';
import type { PlugDevice, PlugReading } from './types.ts';

/** What the poller needs from the device registry (DeviceRegistry implements it). */
export interface PollerDeviceSource {
  list(): PlugDevice[];
  get(id: number): PlugDevice | undefined;
  recordInfo(id: number, info: PlugDeviceInfo): Promise<PlugDevice | undefined>;
  recordPoll(id: number, status: { online: boolean; lastSeen?: number; lastError: string | null }): Promise<PlugDevice | undefined>;
}

export interface PlugPollerOptions {
  devices: PollerDeviceSource;
  credentials: PlugCredentials;
  clientFactory: PlugClientFactory;
  /** Default 30 000 ms. */
  intervalMs?: number;
  /** Polls in flight at once. Default 4. */
  concurrency?: number;
  /** Deadline of one poll (device info + reading), ms. Default min(10 000, intervalMs). */
  pollTimeoutMs?: number;
  /** Consecutive failed polls before a plug is offline. Default 3. */
  offlineAfter?: number;
  /** Cap of the retry delay while offline. Default 5 minutes. */
  maxBackoffMs?: number;
  now?: () => number;
  onReading?: (reading: PlugReading) => void;
  onStatusChange?: (device: PlugDevice, online: boolean, error: Error | null) => void;
  /** Failures that are not a plug's (a callback threw, the registry could not write). */
  onError?: (error: unknown, context: string) => void;
}

export interface PollState {
  failures: number;
  nextDueAt: number;
  polling: boolean;
  lastError: Error | null;
}

interface DeviceState {
  id: number;
  address: string;
  client: PlugClient;
  failures: number;
  nextDueAt: number;
  infoFresh: boolean;
  pending: Promise<void> | null;
  lastError: Error | null;
}

export class PlugPoller {
  readonly intervalMs: number;
  #o: Required<Omit<PlugPollerOptions, 'onReading' | 'onStatusChange' | 'onError'>> &
    Pick<PlugPollerOptions, 'onReading' | 'onStatusChange' | 'onError'>;
  #states = new Map<number, DeviceState>();
  #queue: Array<{ st: DeviceState; done: () => void }> = [];
  #active = 0;
  #latest = new Map<number, PlugReading>();
  #timer: NodeJS.Timeout | null = null;
  #running = false;
  #stopped = new AbortController();

  constructor(options: PlugPollerOptions) {
    const intervalMs = options.intervalMs ?? 30_000;
    this.#o = {
      ...options,
      intervalMs,
      concurrency: options.concurrency ?? 4,
      pollTimeoutMs: options.pollTimeoutMs ?? Math.min(10_000, intervalMs),
      offlineAfter: options.offlineAfter ?? 3,
      maxBackoffMs: options.maxBackoffMs ?? 5 * 60_000,
      now: options.now ?? Date.now,
    };
    if (!(this.#o.concurrency >= 1)) throw new RangeError('concurrency must be at least 1');
    this.intervalMs = intervalMs;
  }

  /** Starts the timer-driven loop; every device is due immediately. */
  start(): void {
    if (this.#running || this.#stopped.signal.aborted) return;
    this.#running = true;
    this.#tick();
  }

  /** Stops the loop, aborts polls in flight, closes every plug session. */
  async stop(): Promise<void> {
    this.#running = false;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#stopped.abort();
    const states = [...this.#states.values()];
    await Promise.all(states.map((s) => s.pending));
    await Promise.all(states.map((s) => s.client.close()));
    this.#states.clear();
  }

  /** Picks up added, removed or re-addressed devices now (call after registry changes). */
  refresh(): void {
    this.#reconcile();
    if (this.#running) this.#tick();
  }

  /** Polls every device that is due (all of them with `force`) and resolves when those polls have finished. A poll
   *  already in flight is joined, not repeated. */
  async pollOnce(options: { force?: boolean } = {}): Promise<void> {
    this.#reconcile();
    const now = this.#o.now();
    const waits: Promise<void>[] = [];
    for (const st of this.#states.values()) {
      if (options.force || st.nextDueAt <= now || st.pending) waits.push(this.#enqueue(st));
    }
    await Promise.all(waits);
  }

  /** Polls one device now (joining a poll in flight) and returns its latest reading, if any. */
  async pollDevice(id: number): Promise<PlugReading | undefined> {
    this.#reconcile();
    const st = this.#states.get(id);
    if (!st) return undefined;
    await this.#enqueue(st);
    return this.#latest.get(id);
  }

  latest(deviceId: number): PlugReading | undefined {
    return this.#latest.get(deviceId);
  }

  latestAll(): PlugReading[] {
    return [...this.#latest.values()].sort((a, b) => a.deviceId - b.deviceId);
  }

  pollState(deviceId: number): PollState | undefined {
    const st = this.#states.get(deviceId);
    return st && { failures: st.failures, nextDueAt: st.nextDueAt, polling: st.pending !== null, lastError: st.lastError };
  }

  /** Switches a plug's relay through its session, then reads it back so latest() shows the new state at once.
   *  Returns the fresh reading, or undefined if the read-back failed (the switch itself succeeded). */
  async setOn(deviceId: number, on: boolean): Promise<PlugReading | undefined> {
    this.#reconcile();
    const st = this.#states.get(deviceId);
    if (!st) throw new DeviceRegistryError('DEVICE_NOT_FOUND', `No plug with id ${deviceId}`);
    const call = this.#callOptions();
    await st.client.setOn(on, call);
    try {
      const sample = await st.client.getReading(this.#callOptions());
      const reading: PlugReading = { deviceId, ...sample };
      this.#latest.set(deviceId, reading);
      this.#emit(() => this.#o.onReading?.(reading), 'onReading');
      return reading;
    } catch (err) {
      this.#emit(() => this.#o.onError?.(err, `read-back after switching plug ${deviceId}`), 'onError');
      return undefined;
    }
  }

  // ---- scheduling ---------------------------------------------------------------------------------------------------

  #callOptions(): PlugCallOptions {
    return { signal: AbortSignal.any([AbortSignal.timeout(this.#o.pollTimeoutMs), this.#stopped.signal]) };
  }

  #reconcile(): void {
    if (this.#stopped.signal.aborted) return;
    const devices = this.#o.devices.list();
    const seen = new Set<number>();
    const now = this.#o.now();
    for (const d of devices) {
      seen.add(d.id);
      const address = formatHostPort(d.host, d.port);
      const st = this.#states.get(d.id);
      if (st && st.address === address) continue;
      if (st) this.#retire(st);
      this.#states.set(d.id, {
        id: d.id,
        address,
        client: this.#o.clientFactory({ host: d.host, port: d.port }, this.#o.credentials),
        failures: 0,
        nextDueAt: now,
        infoFresh: false,
        pending: null,
        lastError: null,
      });
    }
    for (const st of [...this.#states.values()]) {
      if (!seen.has(st.id)) {
        this.#retire(st);
        this.#latest.delete(st.id);
      }
    }
  }

  /** Drops a device's state; its client closes once its poll in flight (if any) has settled. */
  #retire(st: DeviceState): void {
    this.#states.delete(st.id);
    const close = () => void st.client.close().catch((err) => this.#o.onError?.(err, `closing plug ${st.id}`));
    if (st.pending) st.pending.then(close, close);
    else close();
  }

  #tick(): void {
    if (!this.#running) return;
    this.#reconcile();
    const now = this.#o.now();
    for (const st of this.#states.values()) if (!st.pending && st.nextDueAt <= now) void this.#enqueue(st);
    this.#arm();
  }

  #arm(): void {
    if (!this.#running) return;
    if (this.#timer) clearTimeout(this.#timer);
    let earliest = this.#o.now() + this.#o.intervalMs; // also the cadence at which registry changes are noticed
    for (const st of this.#states.values()) if (!st.pending) earliest = Math.min(earliest, st.nextDueAt);
    this.#timer = setTimeout(() => this.#tick(), Math.max(0, earliest - this.#o.now()));
    this.#timer.unref();
  }

  #enqueue(st: DeviceState): Promise<void> {
    if (st.pending) return st.pending;
    st.pending = new Promise<void>((done) => this.#queue.push({ st, done }));
    this.#pump();
    return st.pending;
  }

  #pump(): void {
    while (this.#active < this.#o.concurrency && this.#queue.length > 0) {
      const { st, done } = this.#queue.shift()!;
      this.#active++;
      void this.#poll(st)
        .catch((err) => this.#o.onError?.(err, `polling plug ${st.id}`))
        .finally(() => {
          this.#active--;
          st.pending = null;
          done();
          this.#pump();
          this.#arm();
        });
    }
  }

  #retryDelay(failures: number): number {
    const { intervalMs, offlineAfter, maxBackoffMs } = this.#o;
    if (failures < offlineAfter) return intervalMs;
    return Math.min(maxBackoffMs, intervalMs * 2 ** (failures - offlineAfter + 1));
  }

  // ---- one poll -----------------------------------------------------------------------------------------------------

  async #poll(st: DeviceState): Promise<void> {
    const started = this.#o.now();
    const call = this.#callOptions();
    try {
      if (!st.infoFresh || this.#o.devices.get(st.id)?.model == null) {
        const info = await st.client.getDeviceInfo(call);
        if (this.#states.get(st.id) !== st) return;
        await this.#record(() => this.#o.devices.recordInfo(st.id, info), st.id);
        st.infoFresh = true;
      }
      const sample = await st.client.getReading(call);
      if (this.#states.get(st.id) !== st) return; // removed or re-addressed meanwhile
      const reading: PlugReading = { deviceId: st.id, ...sample };
      this.#latest.set(st.id, reading);
      const wasOnline = this.#o.devices.get(st.id)?.online ?? false;
      st.failures = 0;
      st.lastError = null;
      let next = st.nextDueAt + this.#o.intervalMs;
      if (next <= this.#o.now()) next = started + this.#o.intervalMs;
      st.nextDueAt = next;
      const updated = await this.#record(
        () => this.#o.devices.recordPoll(st.id, { online: true, lastSeen: reading.at, lastError: null }),
        st.id,
      );
      this.#emit(() => this.#o.onReading?.(reading), 'onReading');
      if (!wasOnline && updated) this.#emit(() => this.#o.onStatusChange?.(updated, true, null), 'onStatusChange');
    } catch (err) {
      if (this.#states.get(st.id) !== st || this.#stopped.signal.aborted) return;
      const error = err instanceof Error ? err : new Error(String(err));
      st.failures++;
      st.lastError = error;
      st.nextDueAt = this.#o.now() + this.#retryDelay(st.failures);
      const wasOnline = this.#o.devices.get(st.id)?.online ?? false;
      const offline = st.failures >= this.#o.offlineAfter;
      if (offline) st.infoFresh = false; // it may come back rebooted into new firmware
      const updated = await this.#record(
        () => this.#o.devices.recordPoll(st.id, { online: offline ? false : wasOnline, lastError: error.message }),
        st.id,
      );
      if (offline && wasOnline && updated) this.#emit(() => this.#o.onStatusChange?.(updated, false, error), 'onStatusChange');
    }
  }

  async #record(write: () => Promise<PlugDevice | undefined>, id: number): Promise<PlugDevice | undefined> {
    try {
      return await write();
    } catch (err) {
      this.#o.onError?.(err, `recording plug ${id}`);
      return undefined;
    }
  }

  #emit(fn: () => void, name: string): void {
    try {
      fn();
    } catch (err) {
      if (name !== 'onError') this.#o.onError?.(err, name);
    }
  }
}
