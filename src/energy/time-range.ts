// The time ranges the energy API accepts: a named period of the local calendar (`day` = today since local midnight,
// `week` = since Monday, `month` = since the 1st, `year` = since 1 January — the current period, as BaluHost's
// today/week/month, but in the configured time zone rather than UTC), or an explicit `from`/`to`. Every rejection
// is an EnergyQueryError naming the parameter, which the HTTP layer turns into 422 and the RPC layer into
// InvalidArgument.

import { DAY_MS, HOUR_MS, type Calendar } from './calendar.ts';

export const PERIODS = ['day', 'week', 'month', 'year'] as const;
export type Period = (typeof PERIODS)[number];

export class EnergyQueryError extends Error {
  readonly code = 'ENERGY_BAD_QUERY';
  constructor(message: string) {
    super(message);
    this.name = 'EnergyQueryError';
  }
}

export interface TimeRange {
  /** Inclusive start, ms since epoch. */
  from: number;
  /** Exclusive end, ms since epoch. */
  to: number;
  /** The named period the range came from, or null for an explicit from/to. */
  period: Period | null;
}

export interface RangeQuery {
  period?: string;
  from?: string;
  to?: string;
}

/** Longest range any query accepts (ten years): bounds the work one request can ask for. */
export const MAX_RANGE_MS = 3660 * DAY_MS;
/** Longest range of raw samples returned as one JSON document (a week of 30 s polls is ~20 000 points a plug).
 *  One hour of slack: a local week that contains the October DST change is 169 hours long. */
export const MAX_RAW_JSON_MS = 7 * DAY_MS + HOUR_MS;

const DATE = /^\d{4}-\d{2}-\d{2}$/;
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/i;

/** The current local day, week, month or year around `now`. */
export function periodRange(cal: Calendar, period: Period, now: number): TimeRange {
  switch (period) {
    case 'day':
      return { from: cal.dayStart(now), to: cal.dayEnd(now), period };
    case 'week': {
      const today = cal.dayStart(now);
      const monday = cal.shiftLocalDays(today, -(cal.parts(now).weekday - 1));
      return { from: monday, to: cal.shiftLocalDays(monday, 7), period };
    }
    case 'month':
      return { from: cal.monthStart(now), to: cal.monthEnd(now), period };
    case 'year': {
      const y = cal.parts(now).year;
      return { from: cal.localToInstant(y, 1, 1), to: cal.localToInstant(y + 1, 1, 1), period };
    }
  }
}

/**
 * `YYYY-MM-DD` (local midnight of that date) or an ISO 8601 date-time with `Z` or an offset. A date-time without
 * an offset is refused: it would silently mean the server's zone to some clients and UTC to others.
 */
export function parseInstant(text: string, cal: Calendar, field: string): number {
  const s = text.trim();
  if (DATE.test(s)) {
    try {
      return cal.parseLocalDate(s);
    } catch {
      throw new EnergyQueryError(`${field}: no such date ${JSON.stringify(s)}`);
    }
  }
  if (DATE_TIME.test(s)) {
    const t = Date.parse(s);
    if (Number.isFinite(t)) return t;
  }
  throw new EnergyQueryError(
    `${field} must be a date YYYY-MM-DD or an ISO 8601 date-time with Z or an offset (got ${JSON.stringify(text)})`,
  );
}

/** A period or from/to (not both); `defaultPeriod` when neither is given. */
export function resolveRange(q: RangeQuery, cal: Calendar, now: number, defaultPeriod: Period): TimeRange {
  const hasFrom = q.from !== undefined && q.from !== '';
  const hasTo = q.to !== undefined && q.to !== '';
  if (q.period !== undefined && (hasFrom || hasTo)) {
    throw new EnergyQueryError('give either period or from and to, not both');
  }
  if (hasFrom !== hasTo) throw new EnergyQueryError(`${hasFrom ? 'to' : 'from'} is required together with ${hasFrom ? 'from' : 'to'}`);
  if (!hasFrom) {
    const period = q.period ?? defaultPeriod;
    if (!(PERIODS as readonly string[]).includes(period)) {
      throw new EnergyQueryError(`period must be one of ${PERIODS.join(', ')} (got ${JSON.stringify(period)})`);
    }
    return periodRange(cal, period as Period, now);
  }
  const from = parseInstant(q.from!, cal, 'from');
  const to = parseInstant(q.to!, cal, 'to');
  if (to <= from) throw new EnergyQueryError('to must be after from');
  if (to - from > MAX_RANGE_MS) throw new EnergyQueryError('the range from..to must not exceed 3660 days');
  return { from, to, period: null };
}

/** Rejects raw samples over more than a week in a JSON answer (the CSV export and the RPC stream have no limit). */
export function checkRawSpan(range: TimeRange): void {
  if (range.to - range.from > MAX_RAW_JSON_MS) {
    const days = Math.round(((range.to - range.from) / DAY_MS) * 10) / 10;
    throw new EnergyQueryError(
      `resolution=raw is limited to 7 days here (this range is ${days} days): use resolution=hour or day, ` +
        'or GET /api/energy/export.csv?resolution=raw, which streams any range',
    );
  }
}

/** Hourly buckets over long ranges make huge answers; a quarter of a year of hours is the limit. */
export function checkHourSpan(range: TimeRange): void {
  if (range.to - range.from > 92 * DAY_MS + HOUR_MS) {
    throw new EnergyQueryError('resolution=hour is limited to 92 days: use resolution=day or month for longer ranges');
  }
}
