// Local-time bucketing for the energy series: hours, days, months and hour-of-week in one IANA time zone, computed
// with Intl only (no tz dependency). Buckets are identified by the UTC instant (ms) at which they start, so the two
// local 02:00 hours of an October DST change are two distinct buckets, a March day is 23 h and an October day 25 h.
//
// Exactness: correct for every zone whose UTC offset is a whole number of minutes and whose DST shift is a whole
// hour (all of Europe, the Americas, and the half-hour offset zones such as Asia/Kolkata). Zones with a 30-minute
// DST shift (Australia/Lord_Howe) get consistent but not wall-clock-exact hour buckets during the shifted hour.
import { CodedError } from '../errors.ts';

export const HOUR_MS = 3_600_000;
export const DAY_MS = 86_400_000;
// Offsets are cached per UTC day: a day whose first and last second have the same offset has it throughout (no
// zone changes its offset twice in a day); for a transition day the instant of the change is found once.
const SLOT_MS = 86_400_000;
const CACHE_LIMIT = 8192; // ≈ 22 years of days

export interface LocalParts {
  year: number;
  /** 1..12 */
  month: number;
  /** 1..31 */
  day: number;
  /** 0..23 */
  hour: number;
  minute: number;
  second: number;
  /** ISO weekday: 1 = Monday … 7 = Sunday. */
  weekday: number;
}

export type BucketResolution = 'hour' | 'day' | 'month';

/** The zone the process runs in, as Intl sees it (the system zone unless TZ says otherwise). */
export function systemTimeZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone;
}

export class CalendarError extends CodedError<string> {
  override name = 'CalendarError';
}

export class Calendar {
  readonly timeZone: string;
  readonly #fmt: Intl.DateTimeFormat;
  /** Per UTC day: the offset, or for a day with a transition [instant, offset before, offset after]. */
  readonly #offsets = new Map<number, number | [number, number, number]>();
  #memoSlot = Number.NaN;
  #memoOffset = 0;

  constructor(timeZone: string = systemTimeZone()) {
    try {
      this.#fmt = new Intl.DateTimeFormat('en-US', {
        timeZone,
        hourCycle: 'h23',
        year: 'numeric',
        month: 'numeric',
        day: 'numeric',
        hour: 'numeric',
        minute: 'numeric',
        second: 'numeric',
      });
    } catch {
      throw new CalendarError('ENERGY_BAD_TIME_ZONE', `unknown time zone ${JSON.stringify(timeZone)}`);
    }
    this.timeZone = this.#fmt.resolvedOptions().timeZone;
  }

  /** UTC offset in ms at instant t (local = t + offset). */
  offsetMs(t: number): number {
    const slot = Math.floor(t / SLOT_MS);
    // Callers walk time in order: a one-entry memo in front of the map saves most lookups.
    if (slot === this.#memoSlot) return this.#memoOffset;
    let cached = this.#offsets.get(slot);
    if (cached === undefined) {
      const start = slot * SLOT_MS;
      const a = this.#exactOffset(start);
      const b = this.#exactOffset(start + SLOT_MS - 1000);
      if (a === b) cached = a;
      else {
        // Transitions happen on whole seconds: find the first second with the new offset.
        let lo = start / 1000, hi = (start + SLOT_MS - 1000) / 1000;
        while (hi - lo > 1) {
          const mid = Math.floor((lo + hi) / 2);
          if (this.#exactOffset(mid * 1000) === a) lo = mid;
          else hi = mid;
        }
        cached = [hi * 1000, a, b];
      }
      if (this.#offsets.size >= CACHE_LIMIT) this.#offsets.clear();
      this.#offsets.set(slot, cached);
    }
    if (typeof cached === 'number') {
      this.#memoSlot = slot;
      this.#memoOffset = cached;
      return cached;
    }
    return t < cached[0] ? cached[1] : cached[2];
  }

  #exactOffset(t: number): number {
    const s = Math.floor(t / 1000) * 1000;
    let y = 0, mo = 0, d = 0, h = 0, mi = 0, se = 0;
    for (const p of this.#fmt.formatToParts(s)) {
      switch (p.type) {
        case 'year': y = Number(p.value); break;
        case 'month': mo = Number(p.value); break;
        case 'day': d = Number(p.value); break;
        case 'hour': h = Number(p.value); break;
        case 'minute': mi = Number(p.value); break;
        case 'second': se = Number(p.value); break;
      }
    }
    const local = Date.UTC(y, mo - 1, d, h, mi, se);
    return local - s;
  }

  parts(t: number): LocalParts {
    const d = new Date(t + this.offsetMs(t));
    const wd = d.getUTCDay();
    return {
      year: d.getUTCFullYear(),
      month: d.getUTCMonth() + 1,
      day: d.getUTCDate(),
      hour: d.getUTCHours(),
      minute: d.getUTCMinutes(),
      second: d.getUTCSeconds(),
      weekday: wd === 0 ? 7 : wd,
    };
  }

  /** Days since 1970-01-01 of the local date at t: equal numbers mean the same local day. */
  localDayNumber(t: number): number {
    return Math.floor((t + this.offsetMs(t)) / DAY_MS);
  }

  /**
   * The instant of a local wall-clock time. Fields may overflow (day 32 = next month) as with Date.UTC.
   * Ambiguous (fall-back) times give the earlier instant; non-existent (spring-forward) times give the first
   * instant after the gap, which is what "the day starts at local midnight" needs in zones that skip midnight.
   */
  localToInstant(year: number, month: number, day: number, hour = 0, minute = 0): number {
    const wall = Date.UTC(year, month - 1, day, hour, minute);
    const before = this.offsetMs(wall - DAY_MS);
    const after = this.offsetMs(wall + DAY_MS);
    let best = Number.POSITIVE_INFINITY;
    for (const o of before === after ? [before] : [before, after]) {
      const t = wall - o;
      if (this.offsetMs(t) === o && t < best) best = t;
    }
    if (best !== Number.POSITIVE_INFINITY) return best;
    // In a gap: the earliest instant whose local time is at or after `wall`.
    let lo = wall - Math.max(before, after);
    let hi = wall - Math.min(before, after);
    while (hi - lo > 1) {
      const mid = Math.floor((lo + hi) / 2);
      if (mid + this.offsetMs(mid) >= wall) hi = mid;
      else lo = mid;
    }
    return hi;
  }

  hourStart(t: number): number {
    const local = t + this.offsetMs(t);
    return t - (((local % HOUR_MS) + HOUR_MS) % HOUR_MS);
  }

  hourEnd(t: number): number {
    return this.hourStart(this.hourStart(t) + HOUR_MS);
  }

  dayStart(t: number): number {
    const p = this.parts(t);
    return this.localToInstant(p.year, p.month, p.day);
  }

  dayEnd(t: number): number {
    const p = this.parts(t);
    return this.localToInstant(p.year, p.month, p.day + 1);
  }

  monthStart(t: number): number {
    const p = this.parts(t);
    return this.localToInstant(p.year, p.month, 1);
  }

  monthEnd(t: number): number {
    const p = this.parts(t);
    return this.localToInstant(p.year, p.month + 1, 1);
  }

  bucketStart(resolution: BucketResolution, t: number): number {
    switch (resolution) {
      case 'hour': return this.hourStart(t);
      case 'day': return this.dayStart(t);
      case 'month': return this.monthStart(t);
    }
  }

  bucketEnd(resolution: BucketResolution, t: number): number {
    switch (resolution) {
      case 'hour': return this.hourEnd(t);
      case 'day': return this.dayEnd(t);
      case 'month': return this.monthEnd(t);
    }
  }

  /** Local hour of the week: Monday 00:00–00:59 = 0 … Sunday 23:00–23:59 = 167. */
  hourOfWeek(t: number): number {
    const p = this.parts(t);
    return (p.weekday - 1) * 24 + p.hour;
  }

  /** Saturday or Sunday in local time (the P110 tariff's weekend_config days). */
  isWeekend(t: number): boolean {
    return this.parts(t).weekday >= 6;
  }

  /** Same local wall-clock hour `days` local days later (negative = earlier); DST-safe, unlike t ± n × 24 h. */
  shiftLocalDays(t: number, days: number): number {
    const p = this.parts(t);
    return this.localToInstant(p.year, p.month, p.day + days, p.hour, p.minute);
  }

  /** 'YYYY-MM-DD' of the local date at t. */
  localDate(t: number): string {
    const p = this.parts(t);
    return `${String(p.year).padStart(4, '0')}-${pad2(p.month)}-${pad2(p.day)}`;
  }

  /** Start instant of a local date given as 'YYYY-MM-DD'. */
  parseLocalDate(date: string): number {
    const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(date);
    if (!m) throw new CalendarError('ENERGY_BAD_DATE', `expected YYYY-MM-DD, got ${JSON.stringify(date)}`);
    const y = Number(m[1]), mo = Number(m[2]), d = Number(m[3]);
    const check = new Date(Date.UTC(y, mo - 1, d));
    if (check.getUTCMonth() !== mo - 1 || check.getUTCDate() !== d) {
      throw new CalendarError('ENERGY_BAD_DATE', `no such date ${date}`);
    }
    return this.localToInstant(y, mo, d);
  }

  /** ISO 8601 with the local offset, e.g. 2026-10-25T02:00:00+01:00 (unambiguous across DST). */
  formatLocal(t: number): string {
    const off = this.offsetMs(t);
    const p = this.parts(t);
    const sign = off < 0 ? '-' : '+';
    const abs = Math.abs(off) / 60_000;
    return `${String(p.year).padStart(4, '0')}-${pad2(p.month)}-${pad2(p.day)}T${pad2(p.hour)}:${pad2(p.minute)}:` +
      `${pad2(p.second)}${sign}${pad2(Math.floor(abs / 60))}:${pad2(abs % 60)}`;
  }
}

function pad2(n: number): string {
  return String(n).padStart(2, '0');
}
