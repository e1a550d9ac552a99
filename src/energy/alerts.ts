// Energy alerts: stored in LevelDB, listed newest first, acknowledged by id, de-duplicated, optionally POSTed to a
// webhook.
//
// Life of an alert: a rule *raises* (kind, device) when its condition becomes true and *clears* it when the
// condition ends. While an alert of that (kind, device) is not cleared, further raises only bump its lastSeenAt and
// occurrences — so there is at most one uncleared alert per kind and device. Acknowledging records that a person
// has seen it; it does not end the condition, so a condition that persists after the acknowledgement does not
// re-alert every poll: a new alert needs the condition to clear and come back.
// Webhook: { event: 'alert.opened' | 'alert.cleared', alert } as JSON, sent in order from a bounded queue; failures
// and timeouts are logged and dropped, never thrown.

import { EventEmitter } from 'node:events';
import type { AbstractLevel } from 'abstract-level';
import { CodedError } from '../errors.ts';

export type AlertKind = 'plug_offline' | 'power_over_limit' | 'power_anomaly' | 'nas_idle_long';

export interface Alert {
  /** 20 hex digits, increasing in creation order: openedAt × 2^32, bumped past the previous id if needed. */
  id: string;
  kind: AlertKind;
  deviceId: number;
  message: string;
  details: Record<string, number | string | boolean | null>;
  openedAt: number;
  lastSeenAt: number;
  occurrences: number;
  clearedAt: number | null;
  acknowledgedAt: number | null;
}

export interface AlertEvent {
  event: 'alert.opened' | 'alert.cleared' | 'alert.acknowledged';
  alert: Alert;
}

export interface AlertLogger {
  warn(obj: object, msg?: string): void;
}

export interface AlertCenterOptions {
  webhookUrl?: string | null;
  webhookTimeoutMs?: number;
  /** Pending webhook posts beyond this are dropped (oldest first) with a warning (default 100). */
  webhookQueueLimit?: number;
  /** Stored alerts beyond this are pruned, oldest cleared-or-acknowledged first (default 1000). */
  maxStored?: number;
  logger?: AlertLogger;
  now?: () => number;
  fetch?: typeof fetch;
}

export interface AlertListQuery {
  acknowledged?: boolean;
  deviceId?: number;
  kind?: AlertKind;
  limit?: number;
}

export class AlertError extends CodedError<string> {
  override name = 'AlertError';
}

const slot = (kind: AlertKind, deviceId: number): string => `${kind}:${deviceId}`;

export class AlertCenter extends EventEmitter<{ alert: [AlertEvent] }> {
  readonly #db: AbstractLevel<any, string, Alert>;
  readonly #webhookUrl: string | null;
  readonly #timeoutMs: number;
  readonly #queueLimit: number;
  readonly #maxStored: number;
  readonly #log: AlertLogger | undefined;
  readonly #now: () => number;
  readonly #fetch: typeof fetch;
  /** Uncleared alert id per kind+device. */
  readonly #active = new Map<string, string>();
  #count = 0;
  #lastId = 0n;
  #chain: Promise<unknown> = Promise.resolve();
  #queue: AlertEvent[] = [];
  #sending: Promise<void> | null = null;

  constructor(db: AbstractLevel<any, any, any>, opts: AlertCenterOptions = {}) {
    super();
    this.#db = db.sublevel<string, Alert>('alerts', { keyEncoding: 'utf8', valueEncoding: 'json' });
    if (opts.webhookUrl) {
      try { new URL(opts.webhookUrl); } catch { throw new AlertError('ENERGY_BAD_OPTION', 'webhookUrl is not a URL'); }
    }
    this.#webhookUrl = opts.webhookUrl ?? null;
    this.#timeoutMs = opts.webhookTimeoutMs ?? 5000;
    this.#queueLimit = opts.webhookQueueLimit ?? 100;
    this.#maxStored = opts.maxStored ?? 1000;
    this.#log = opts.logger;
    this.#now = opts.now ?? Date.now;
    this.#fetch = opts.fetch ?? fetch;
  }

  /** Load the index of uncleared alerts. */
  async open(): Promise<void> {
    await this.#exclusive(async () => {
      this.#active.clear();
      this.#count = 0;
      const [newest] = await this.#db.keys({ reverse: true, limit: 1 }).all();
      this.#lastId = newest && /^[0-9a-f]{20}$/.test(newest) ? BigInt(`0x${newest}`) : 0n;
      for await (const a of this.#db.values()) {
        this.#count++;
        if (a.clearedAt === null) this.#active.set(slot(a.kind, a.deviceId), a.id);
      }
    });
  }

  /** Report that a condition holds; returns the alert if this opened a new one, null if it was already open. */
  raise(kind: AlertKind, deviceId: number, message: string, details: Alert['details'] = {}, at = this.#now()): Promise<Alert | null> {
    return this.#exclusive(async () => {
      const activeId = this.#active.get(slot(kind, deviceId));
      if (activeId !== undefined) {
        const a = await this.#db.get(activeId);
        if (a) {
          a.lastSeenAt = Math.max(a.lastSeenAt, at);
          a.occurrences++;
          a.details = details;
          await this.#db.put(a.id, a);
          return null;
        }
      }
      const alert: Alert = {
        id: this.#nextId(at),
        kind, deviceId, message, details,
        openedAt: at, lastSeenAt: at, occurrences: 1, clearedAt: null, acknowledgedAt: null,
      };
      await this.#db.put(alert.id, alert, { sync: true } as never);
      this.#active.set(slot(kind, deviceId), alert.id);
      this.#count++;
      if (this.#count > this.#maxStored) await this.#prune();
      this.#publish({ event: 'alert.opened', alert });
      return alert;
    });
  }

  /** Report that a condition ended; returns the cleared alert, or null if none was open. */
  clear(kind: AlertKind, deviceId: number, at = this.#now()): Promise<Alert | null> {
    return this.#exclusive(async () => {
      const key = slot(kind, deviceId);
      const id = this.#active.get(key);
      if (id === undefined) return null;
      this.#active.delete(key);
      const a = await this.#db.get(id);
      if (!a) return null;
      a.clearedAt = at;
      await this.#db.put(a.id, a, { sync: true } as never);
      this.#publish({ event: 'alert.cleared', alert: a });
      return a;
    });
  }

  isOpen(kind: AlertKind, deviceId: number): boolean {
    return this.#active.has(slot(kind, deviceId));
  }

  /** Mark an alert as seen. Returns the alert, or null if the id is unknown. Idempotent. */
  acknowledge(id: string, at = this.#now()): Promise<Alert | null> {
    return this.#exclusive(async () => {
      const a = await this.#db.get(id);
      if (!a) return null;
      if (a.acknowledgedAt === null) {
        a.acknowledgedAt = at;
        await this.#db.put(a.id, a, { sync: true } as never);
        this.emit('alert', { event: 'alert.acknowledged', alert: a });
      }
      return a;
    });
  }

  async get(id: string): Promise<Alert | null> {
    return (await this.#db.get(id)) ?? null;
  }

  /** Newest first. */
  async list(q: AlertListQuery = {}): Promise<Alert[]> {
    const limit = q.limit ?? 100;
    const out: Alert[] = [];
    if (limit <= 0) return out;
    for await (const a of this.#db.values({ reverse: true })) {
      if (q.acknowledged !== undefined && (a.acknowledgedAt !== null) !== q.acknowledged) continue;
      if (q.deviceId !== undefined && a.deviceId !== q.deviceId) continue;
      if (q.kind !== undefined && a.kind !== q.kind) continue;
      out.push(a);
      if (out.length >= limit) break;
    }
    return out;
  }

  /** Resolves when every queued webhook post has been attempted. */
  async webhooksSettled(): Promise<void> {
    while (this.#sending) await this.#sending;
  }

  // ---- internals ------------------------------------------------------------------------------------------

  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#chain.then(fn);
    this.#chain = run.catch(() => undefined);
    return run;
  }

  #nextId(at: number): string {
    const byTime = BigInt(Math.max(0, Math.floor(at))) << 32n;
    this.#lastId = byTime > this.#lastId ? byTime : this.#lastId + 1n;
    return this.#lastId.toString(16).padStart(20, '0');
  }

  async #prune(): Promise<void> {
    const excess = this.#count - this.#maxStored;
    const doomed: string[] = [];
    for await (const a of this.#db.values()) {
      if (doomed.length >= excess) break;
      if (a.clearedAt !== null || a.acknowledgedAt !== null) {
        if (this.#active.get(slot(a.kind, a.deviceId)) === a.id) continue;
        doomed.push(a.id);
      }
    }
    if (doomed.length === 0) return;
    await this.#db.batch(doomed.map((key) => ({ type: 'del' as const, key })));
    this.#count -= doomed.length;
  }

  #publish(ev: AlertEvent): void {
    this.emit('alert', ev);
    if (!this.#webhookUrl) return;
    this.#queue.push(structuredClone(ev));
    if (this.#queue.length > this.#queueLimit) {
      const dropped = this.#queue.splice(0, this.#queue.length - this.#queueLimit);
      this.#log?.warn({ dropped: dropped.length }, 'alert webhook queue full; oldest events dropped');
    }
    this.#kick();
  }

  #kick(): void {
    if (this.#sending) return;
    this.#sending = this.#sendAll().finally(() => {
      this.#sending = null;
      if (this.#queue.length > 0) this.#kick(); // queued between the loop's last shift and this callback
    });
  }

  async #sendAll(): Promise<void> {
    for (let ev = this.#queue.shift(); ev; ev = this.#queue.shift()) {
      try {
        const res = await this.#fetch(this.#webhookUrl!, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(ev),
          signal: AbortSignal.timeout(this.#timeoutMs),
        });
        await res.body?.cancel();
        if (!res.ok) this.#log?.warn({ status: res.status, alert: ev.alert.id }, 'alert webhook answered with an error');
      } catch (err) {
        this.#log?.warn({ err, alert: ev.alert.id }, 'alert webhook failed');
      }
    }
  }
}
