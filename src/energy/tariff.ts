// Electricity tariffs: a history of prices, each in force from a local date until the next one starts.
//
// Two kinds, mirroring the P110's own get_electricity_price_config:
//   - constant: one price per kWh;
//   - tou (time of use): on-peak / mid-peak / off-peak prices and a tier for each local hour of the day, one
//     24-slot map for weekdays (Mon–Fri) and one for weekends (Sat, Sun) — the plug's weekday_config / weekend_config.
// Seasonal variants (the plug's summer/winter) are expressed as two tariffs with their own validFrom dates.
// Prices are currency units per kWh (0.32 = 32 ct/kWh), with an optional ISO currency code.
// Tariffs are persisted as JSON in their own sublevel; the TariffBook answers "which price at instant t".

import { randomUUID } from 'node:crypto';
import type { AbstractLevel } from 'abstract-level';
import type { Calendar } from './calendar.ts';
import { CodedError } from '../errors.ts';

export type Tier = 'on' | 'mid' | 'off';

interface TariffCommon {
  id: string;
  name: string;
  /** Local date 'YYYY-MM-DD' (in the series time zone) from whose midnight the tariff applies. */
  validFrom: string;
  currency: string | null;
  /** ms since epoch; breaks ties between tariffs with the same validFrom (the later one wins). */
  createdAt: number;
}

export interface ConstantTariff extends TariffCommon {
  kind: 'constant';
  pricePerKwh: number;
}

export interface TouTariff extends TariffCommon {
  kind: 'tou';
  onPeak: number;
  midPeak: number;
  offPeak: number;
  /** 24 tiers, index = local hour, Monday–Friday. */
  weekday: Tier[];
  /** 24 tiers, index = local hour, Saturday and Sunday. */
  weekend: Tier[];
}

export type Tariff = ConstantTariff | TouTariff;
export type TariffInput =
  | (Omit<ConstantTariff, 'id' | 'createdAt' | 'name' | 'currency'> & { name?: string; currency?: string | null })
  | (Omit<TouTariff, 'id' | 'createdAt' | 'name' | 'currency'> & { name?: string; currency?: string | null });

export class TariffError extends CodedError<string> {
  override name = 'TariffError';
}

const TIERS: readonly Tier[] = ['on', 'mid', 'off'];

function bad(msg: string): never {
  throw new TariffError('ENERGY_TARIFF_INVALID', msg);
}

function price(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > 100) bad(`${field} must be a price per kWh in [0, 100]`);
  return v;
}

function tiers(v: unknown, field: string): Tier[] {
  if (!Array.isArray(v) || v.length !== 24) bad(`${field} must list 24 hourly tiers`);
  return v.map((t, i) => {
    if (!TIERS.includes(t as Tier)) bad(`${field}[${i}] must be one of on, mid, off`);
    return t as Tier;
  });
}

/** Validate untrusted input (e.g. a POST body). Throws ENERGY_TARIFF_INVALID with the first problem found. */
export function parseTariffInput(x: unknown, calendar: Calendar): TariffInput {
  if (typeof x !== 'object' || x === null) bad('tariff must be an object');
  const o = x as Record<string, unknown>;
  if (typeof o.validFrom !== 'string') bad('validFrom must be a date YYYY-MM-DD');
  try { calendar.parseLocalDate(o.validFrom); } catch { bad(`validFrom is not a valid date: ${o.validFrom}`); }
  const name = o.name === undefined ? undefined : typeof o.name === 'string' && o.name.length <= 100 ? o.name : bad('name must be a string ≤ 100 chars');
  let currency: string | null = null;
  if (o.currency !== undefined && o.currency !== null) {
    if (typeof o.currency !== 'string' || !/^[A-Z]{3}$/.test(o.currency)) bad('currency must be an ISO 4217 code like EUR');
    currency = o.currency;
  }
  const common = { validFrom: o.validFrom, currency, ...(name === undefined ? {} : { name }) };
  if (o.kind === 'constant') return { ...common, kind: 'constant', pricePerKwh: price(o.pricePerKwh, 'pricePerKwh') };
  if (o.kind === 'tou') {
    return {
      ...common,
      kind: 'tou',
      onPeak: price(o.onPeak, 'onPeak'),
      midPeak: price(o.midPeak, 'midPeak'),
      offPeak: price(o.offPeak, 'offPeak'),
      weekday: tiers(o.weekday, 'weekday'),
      weekend: tiers(o.weekend, 'weekend'),
    };
  }
  return bad('kind must be "constant" or "tou"');
}

export interface PriceAt {
  pricePerKwh: number;
  tier: Tier | null;
  tariff: Tariff;
}

/** An immutable view of the tariff history for lookups by instant. */
export class TariffBook {
  readonly #starts: number[] = [];
  readonly #tariffs: Tariff[] = [];
  readonly #calendar: Calendar;

  constructor(tariffs: readonly Tariff[], calendar: Calendar) {
    this.#calendar = calendar;
    const sorted = tariffs
      .map((t) => ({ t, start: calendar.parseLocalDate(t.validFrom) }))
      .sort((a, b) => a.start - b.start || a.t.createdAt - b.t.createdAt);
    for (const { t, start } of sorted) {
      // Same start: the later-created tariff replaces the earlier one.
      if (this.#starts[this.#starts.length - 1] === start) this.#tariffs[this.#tariffs.length - 1] = t;
      else { this.#starts.push(start); this.#tariffs.push(t); }
    }
  }

  get tariffs(): readonly Tariff[] { return this.#tariffs; }

  /** Each effective tariff with the instant it starts and the instant the next one replaces it (null = open). */
  periods(): Array<{ tariff: Tariff; from: number; to: number | null }> {
    return this.#tariffs.map((tariff, i) => ({ tariff, from: this.#starts[i]!, to: this.#starts[i + 1] ?? null }));
  }

  inForce(t: number): Tariff | null {
    let lo = 0, hi = this.#starts.length; // first start > t
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#starts[mid]! <= t) lo = mid + 1;
      else hi = mid;
    }
    return lo === 0 ? null : this.#tariffs[lo - 1]!;
  }

  /** Price in force at instant t (the tier from the local hour and weekday at t); null before the first tariff. */
  priceAt(t: number): PriceAt | null {
    const tariff = this.inForce(t);
    if (!tariff) return null;
    if (tariff.kind === 'constant') return { pricePerKwh: tariff.pricePerKwh, tier: null, tariff };
    const p = this.#calendar.parts(t);
    const tier = (p.weekday >= 6 ? tariff.weekend : tariff.weekday)[p.hour]!;
    const pricePerKwh = tier === 'on' ? tariff.onPeak : tier === 'mid' ? tariff.midPeak : tariff.offPeak;
    return { pricePerKwh, tier, tariff };
  }
}

/** Tariffs persisted in a sublevel (JSON values keyed by id). */
export class TariffStore {
  readonly #db: AbstractLevel<any, string, Tariff>;
  readonly #calendar: Calendar;
  readonly #now: () => number;
  #book: TariffBook | null = null;
  #version = 0;

  constructor(db: AbstractLevel<any, any, any>, opts: { calendar: Calendar; now?: () => number }) {
    this.#db = db.sublevel<string, Tariff>('tariffs', { keyEncoding: 'utf8', valueEncoding: 'json' });
    this.#calendar = opts.calendar;
    this.#now = opts.now ?? Date.now;
  }

  /** All tariffs, oldest validFrom first. */
  async list(): Promise<Tariff[]> {
    const all = await this.#db.values().all();
    return all.sort((a, b) => a.validFrom.localeCompare(b.validFrom) || a.createdAt - b.createdAt);
  }

  /** Validate and store a tariff; returns it with its id. */
  async add(input: unknown): Promise<Tariff> {
    const parsed = parseTariffInput(input, this.#calendar);
    const tariff = {
      ...parsed,
      id: randomUUID(),
      name: parsed.name ?? (parsed.kind === 'constant' ? 'Constant price' : 'Time of use'),
      currency: parsed.currency ?? null,
      createdAt: this.#now(),
    } as Tariff;
    await this.#db.put(tariff.id, tariff, { sync: true } as never);
    this.#version++;
    this.#book = null;
    return tariff;
  }

  async remove(id: string): Promise<boolean> {
    const existing = await this.#db.get(id);
    if (existing === undefined) return false;
    await this.#db.del(id, { sync: true } as never);
    this.#version++;
    this.#book = null;
    return true;
  }

  async book(): Promise<TariffBook> {
    if (this.#book) return this.#book;
    const version = this.#version;
    const book = new TariffBook(await this.list(), this.#calendar);
    if (version === this.#version) this.#book = book; // a concurrent change makes this one stale: do not cache it
    return book;
  }
}
