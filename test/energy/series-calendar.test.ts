import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Calendar, CalendarError, HOUR_MS } from '../../src/energy/calendar.ts';

const berlin = new Calendar('Europe/Berlin');

function hoursOfDay(cal: Calendar, start: number): number[] {
  const out: number[] = [];
  for (let h = start; h < cal.dayEnd(start); h = cal.hourEnd(h)) out.push(h);
  return out;
}

describe('calendar (Intl time-zone math)', () => {
  test('Berlin: the last Sunday of March has 23 hours, of October 25, an ordinary day 24', () => {
    const march = berlin.localToInstant(2026, 3, 29);
    const october = berlin.localToInstant(2026, 10, 25);
    const june = berlin.localToInstant(2026, 6, 1);
    assert.equal(march, Date.UTC(2026, 2, 28, 23));
    assert.equal(october, Date.UTC(2026, 9, 24, 22));
    assert.equal((berlin.dayEnd(march) - march) / HOUR_MS, 23);
    assert.equal((berlin.dayEnd(october) - october) / HOUR_MS, 25);
    assert.equal((berlin.dayEnd(june) - june) / HOUR_MS, 24);
    assert.equal(hoursOfDay(berlin, march).length, 23);
    assert.equal(hoursOfDay(berlin, october).length, 25);
  });

  test('Berlin: the repeated 02:00 hour of October is two buckets, the skipped March 02:00 none', () => {
    const oct = hoursOfDay(berlin, berlin.localToInstant(2026, 10, 25)).map((h) => berlin.formatLocal(h));
    assert.deepEqual(oct.slice(1, 5), [
      '2026-10-25T01:00:00+02:00', '2026-10-25T02:00:00+02:00', '2026-10-25T02:00:00+01:00', '2026-10-25T03:00:00+01:00',
    ]);
    const mar = hoursOfDay(berlin, berlin.localToInstant(2026, 3, 29)).map((h) => berlin.formatLocal(h));
    assert.deepEqual(mar.slice(1, 3), ['2026-03-29T01:00:00+01:00', '2026-03-29T03:00:00+02:00']);
    // A time inside the gap maps to the first instant after it; an ambiguous one to the earlier instant.
    assert.equal(berlin.localToInstant(2026, 3, 29, 2, 30), Date.UTC(2026, 2, 29, 1));
    assert.equal(berlin.localToInstant(2026, 10, 25, 2, 30), Date.UTC(2026, 9, 25, 0, 30));
  });

  test('month bounds follow local midnight: October 2026 in Berlin is 745 hours', () => {
    const t = Date.UTC(2026, 9, 15, 12);
    assert.equal(berlin.monthStart(t), Date.UTC(2026, 8, 30, 22));
    assert.equal(berlin.monthEnd(t), Date.UTC(2026, 9, 31, 23));
    assert.equal((berlin.monthEnd(t) - berlin.monthStart(t)) / HOUR_MS, 31 * 24 + 1);
    // The last instant of September (local) still belongs to September.
    assert.equal(berlin.monthStart(Date.UTC(2026, 8, 30, 21, 59, 59)), Date.UTC(2026, 7, 31, 22));
  });

  test('hour of week: Monday 00:xx local is 0, Sunday 23:xx is 167; weekends are Sat and Sun', () => {
    const monday = berlin.localToInstant(2026, 6, 1, 0, 30);
    assert.equal(berlin.hourOfWeek(monday), 0);
    assert.equal(berlin.hourOfWeek(berlin.localToInstant(2026, 6, 7, 23, 59)), 167);
    assert.equal(berlin.isWeekend(berlin.localToInstant(2026, 6, 6, 12)), true);
    assert.equal(berlin.isWeekend(berlin.localToInstant(2026, 6, 5, 23)), false);
    // Four weeks back across the March change keeps the local wall time.
    const after = berlin.localToInstant(2026, 4, 13, 9);
    assert.equal(berlin.formatLocal(berlin.shiftLocalDays(after, -28)), '2026-03-16T09:00:00+01:00');
  });

  test('half-hour zones bucket by local hours; a zone that skips midnight starts the day at 01:00', () => {
    const kolkata = new Calendar('Asia/Kolkata');
    const t = Date.UTC(2026, 0, 1, 4, 45); // 10:15 local
    assert.equal(kolkata.formatLocal(kolkata.hourStart(t)), '2026-01-01T10:00:00+05:30');
    const santiago = new Calendar('America/Santiago');
    const sunday = santiago.localToInstant(2026, 9, 6);
    assert.equal(santiago.formatLocal(sunday), '2026-09-06T01:00:00-03:00');
    assert.equal((santiago.dayEnd(sunday) - sunday) / HOUR_MS, 23);
  });

  test('rejects an unknown zone and impossible dates with typed errors', () => {
    assert.throws(() => new Calendar('Mars/Olympus'), (e: unknown) => e instanceof CalendarError && e.code === 'ENERGY_BAD_TIME_ZONE');
    assert.throws(() => berlin.parseLocalDate('2026-02-30'), { code: 'ENERGY_BAD_DATE' });
    assert.throws(() => berlin.parseLocalDate('2026-2-3'), { code: 'ENERGY_BAD_DATE' });
    assert.equal(berlin.parseLocalDate('2026-10-25'), Date.UTC(2026, 9, 24, 22));
  });
});
