// The NAS's power state inferred from its plug (the device with role `nas`).
//
// Levels, contiguous so that every wattage has exactly one state (the Python version's documented bands left
// 15–30 W unassigned):   off < 2 W ≤ standby < 15 W ≤ idle < 60 W ≤ active
// The 60 W idle/active boundary is the one the Python code actually used; the design's NAS draws 50–120 W when up.
//
// Hysteresis, two mechanisms together:
//   - a margin around each boundary (max(minMarginW, fraction × boundary): 0.5 W at 2 W, 1.5 W at 15 W, 6 W at
//     60 W): moving up across a boundary needs power ≥ boundary + margin, moving down needs < boundary − margin;
//   - confirmation: the same new state must be indicated by `confirmSamples` consecutive readings (default 3,
//     i.e. 1.5 min at 30 s polls) before the state changes. `since` is the time of the first of those readings.
// Exceptions that need no confirmation: the plug reports its relay off (deviceOn = false) → off at once; the first
// reading after unknown; markUnknown() (plug unreachable) → unknown at once.

import { EventEmitter } from 'node:events';
import type { PlugReading } from './types.ts';

export type NasPowerState = 'unknown' | 'off' | 'standby' | 'idle' | 'active';

const LEVELS = ['off', 'standby', 'idle', 'active'] as const;

export interface NasPowerThresholds {
  /** Below this: off (W). */
  offBelowW: number;
  /** Below this: standby. */
  standbyBelowW: number;
  /** Below this: idle; at or above: active. */
  idleBelowW: number;
}

export interface NasPowerOptions {
  thresholds?: Partial<NasPowerThresholds>;
  /** Margin as a fraction of each boundary (default 0.1). */
  hysteresisFraction?: number;
  /** Smallest margin in W (default 0.5). */
  hysteresisMinW?: number;
  /** Consecutive readings needed to change state (default 3). */
  confirmSamples?: number;
}

export interface NasPowerChange {
  from: NasPowerState;
  to: NasPowerState;
  /** When the new state began (first confirming reading). */
  since: number;
  /** The reading that completed the change. */
  at: number;
  powerW: number | null;
  reason: string;
}

export interface NasPowerSnapshot {
  state: NasPowerState;
  since: number | null;
  reason: string;
  powerW: number | null;
  lastReadingAt: number | null;
}

export class NasPowerError extends Error {
  readonly code = 'ENERGY_BAD_OPTION';
  constructor(message: string) {
    super(message);
    this.name = 'NasPowerError';
  }
}

export const DEFAULT_NAS_THRESHOLDS: Readonly<NasPowerThresholds> = Object.freeze({
  offBelowW: 2, standbyBelowW: 15, idleBelowW: 60,
});

export class NasPowerTracker extends EventEmitter<{ change: [NasPowerChange] }> {
  readonly thresholds: Readonly<NasPowerThresholds>;
  readonly #bounds: number[];
  readonly #margins: number[];
  readonly #confirm: number;
  #state: NasPowerState = 'unknown';
  #since: number | null = null;
  #reason = 'no reading yet';
  #powerW: number | null = null;
  #lastAt: number | null = null;
  #candidate: NasPowerState | null = null;
  #candidateSince = 0;
  #candidateCount = 0;

  constructor(opts: NasPowerOptions = {}) {
    super();
    const t = { ...DEFAULT_NAS_THRESHOLDS, ...opts.thresholds };
    if (!(t.offBelowW > 0 && t.offBelowW < t.standbyBelowW && t.standbyBelowW < t.idleBelowW && Number.isFinite(t.idleBelowW))) {
      throw new NasPowerError('NAS thresholds must satisfy 0 < offBelowW < standbyBelowW < idleBelowW');
    }
    this.thresholds = Object.freeze(t);
    this.#bounds = [t.offBelowW, t.standbyBelowW, t.idleBelowW];
    const frac = opts.hysteresisFraction ?? 0.1;
    const min = opts.hysteresisMinW ?? 0.5;
    this.#margins = this.#bounds.map((b) => Math.max(min, frac * b));
    // Bands must not overlap, or a power value could sit in two hysteresis bands at once.
    for (let i = 1; i < this.#bounds.length; i++) {
      if (this.#bounds[i - 1]! + this.#margins[i - 1]! >= this.#bounds[i]! - this.#margins[i]!) {
        throw new NasPowerError('hysteresis margins overlap: reduce hysteresisFraction / hysteresisMinW');
      }
    }
    this.#confirm = Math.max(1, Math.floor(opts.confirmSamples ?? 3));
  }

  get state(): NasPowerState { return this.#state; }
  get since(): number | null { return this.#since; }
  get reason(): string { return this.#reason; }
  get powerW(): number | null { return this.#powerW; }

  snapshot(): NasPowerSnapshot {
    return { state: this.#state, since: this.#since, reason: this.#reason, powerW: this.#powerW, lastReadingAt: this.#lastAt };
  }

  /** The state for power p without hysteresis. */
  classify(p: number): Exclude<NasPowerState, 'unknown'> {
    let level = 0;
    for (const b of this.#bounds) if (p >= b) level++;
    return LEVELS[level]!;
  }

  /** Feed one reading of the NAS plug; returns the change it caused, if any (also emitted as 'change'). */
  update(r: PlugReading): NasPowerChange | null {
    if (this.#lastAt !== null && r.at <= this.#lastAt) return null; // stale or duplicate
    this.#lastAt = r.at;
    this.#powerW = r.powerW;
    if (!r.deviceOn) return this.#set('off', r.at, r.at, null, 'plug relay is switched off');
    if (this.#state === 'unknown') {
      const s = this.classify(r.powerW);
      return this.#set(s, r.at, r.at, r.powerW, `first reading ${fmt(r.powerW)} W → ${s}`);
    }
    const cand = this.#target(r.powerW);
    if (cand === this.#state) {
      this.#candidate = null;
      this.#candidateCount = 0;
      return null;
    }
    if (cand !== this.#candidate) {
      this.#candidate = cand;
      this.#candidateSince = r.at;
      this.#candidateCount = 0;
    }
    this.#candidateCount++;
    if (this.#candidateCount < this.#confirm) return null;
    return this.#set(cand, this.#candidateSince, r.at, r.powerW,
      `${fmt(r.powerW)} W for ${this.#candidateCount} readings → ${cand} (${this.#band(cand)})`);
  }

  /** The plug cannot be reached: the NAS's power state is unknown from now on. */
  markUnknown(at: number, reason = 'plug unreachable'): NasPowerChange | null {
    if (this.#state === 'unknown') return null;
    this.#powerW = null;
    return this.#set('unknown', at, at, null, reason);
  }

  /** Target state with hysteresis relative to the current state. */
  #target(p: number): NasPowerState {
    const cur = LEVELS.indexOf(this.#state as (typeof LEVELS)[number]);
    let up = 0, down = 0;
    for (let i = 0; i < this.#bounds.length; i++) {
      if (p >= this.#bounds[i]! + this.#margins[i]!) up++;
      if (p >= this.#bounds[i]! - this.#margins[i]!) down++;
    }
    if (up > cur) return LEVELS[up]!;
    if (down < cur) return LEVELS[down]!;
    return this.#state;
  }

  #band(s: NasPowerState): string {
    const [a, b, c] = this.#bounds as [number, number, number];
    switch (s) {
      case 'off': return `< ${a} W`;
      case 'standby': return `${a}–${b} W`;
      case 'idle': return `${b}–${c} W`;
      case 'active': return `≥ ${c} W`;
      default: return 'n/a';
    }
  }

  #set(to: NasPowerState, since: number, at: number, powerW: number | null, reason: string): NasPowerChange | null {
    this.#candidate = null;
    this.#candidateCount = 0;
    if (to === this.#state) return null;
    const change: NasPowerChange = { from: this.#state, to, since, at, powerW, reason };
    this.#state = to;
    this.#since = since;
    this.#reason = reason;
    this.emit('change', change);
    return change;
  }
}

function fmt(w: number): string {
  return (Math.round(w * 10) / 10).toString();
}
