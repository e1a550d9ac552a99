// Energy from the plug's own counter (get_energy_usage.today_energy, integer Wh, reset at the plug's local
// midnight, also possibly zeroed by a factory reset or a firmware quirk), and its comparison with the integrated
// power. The counter is the independent witness: it keeps counting while we cannot poll, so over a day it is the
// better total; at hour level it has only 1 Wh resolution.
//
// Delta between two consecutive samples p → c (never negative):
//   - either counter missing          → unknown (null)
//   - c < p                           → the counter was reset in between; energy since the reset = c
//   - a local midnight lies between them and c was read more than RESET_GRACE_MS after it
//                                     → the plug must have reset (even if c climbed back above p during a long
//                                       gap); energy since the reset = c
//   - otherwise                       → c − p
// The grace period absorbs clock skew between the plug and us: a reading taken a few seconds after our midnight may
// still show yesterday's total, and treating it as "reset" would count the whole day twice. The energy between the
// last pre-midnight sample and the reset itself is not recoverable from today_energy (≤ one poll interval).

import type { Rollup } from './rollup.ts';

export const RESET_GRACE_MS = 5 * 60_000;

export interface CounterSample {
  at: number;
  todayWh: number | null;
}

/** The two calendar operations the reset rule needs (a Calendar satisfies it). */
export interface DayClock {
  localDayNumber(t: number): number;
  dayStart(t: number): number;
}

export function counterDeltaWh(prev: CounterSample, cur: CounterSample, clock: DayClock): number | null {
  if (prev.todayWh === null || cur.todayWh === null) return null;
  if (cur.todayWh < prev.todayWh) return cur.todayWh;
  if (clock.localDayNumber(prev.at) !== clock.localDayNumber(cur.at) &&
      cur.at - clock.dayStart(cur.at) > RESET_GRACE_MS) {
    return cur.todayWh;
  }
  return cur.todayWh - prev.todayWh;
}

/** Counter energy over a run of samples in time order (each delta is attributed to the later sample). */
export function counterEnergyWh(samples: readonly CounterSample[], clock: DayClock): number | null {
  let total: number | null = null;
  for (let i = 1; i < samples.length; i++) {
    const d = counterDeltaWh(samples[i - 1]!, samples[i]!, clock);
    if (d !== null) total = (total ?? 0) + d;
  }
  return total;
}

export interface CounterComparison {
  start: number;
  end: number;
  integratedWh: number;
  counterWh: number | null;
  /** integrated − counter (null without counter data). */
  diffWh: number | null;
  /** Agreement within the counter's resolution plus a relative tolerance for integration error. */
  agrees: boolean | null;
}

export interface CompareOptions {
  /** Absolute tolerance, Wh (the counter moves in whole Wh; default 2). */
  toleranceWh?: number;
  /** Relative tolerance (default 0.05 = 5 %). */
  relativeTolerance?: number;
}

/**
 * Compare integrated energy with the counter bucket by bucket. A bucket with gaps (coveredMs below the bucket length)
 * is expected to show integrated < counter: the counter saw the energy we could not poll.
 */
export function compareCounter(rollups: readonly Rollup[], opts: CompareOptions = {}): CounterComparison[] {
  const abs = opts.toleranceWh ?? 2;
  const rel = opts.relativeTolerance ?? 0.05;
  return rollups.map((r) => {
    if (r.counterWh === null) {
      return { start: r.start, end: r.end, integratedWh: r.energyWh, counterWh: null, diffWh: null, agrees: null };
    }
    const diff = r.energyWh - r.counterWh;
    return {
      start: r.start,
      end: r.end,
      integratedWh: r.energyWh,
      counterWh: r.counterWh,
      diffWh: diff,
      agrees: Math.abs(diff) <= Math.max(abs, rel * Math.abs(r.counterWh)),
    };
  });
}
