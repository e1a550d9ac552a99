// The emulated plug's relay and energy meter: integrates a power curve over the emulated clock and keeps the
// counters a Tapo plug reports — today's and this month's energy (Wh) and relay-on time (minutes), reset at the
// plug's local midnight and on the 1st of the month, plus a total since start (get_emeter_data.energy_wh).

const DAY_MS = 86_400_000;

export interface MeterOptions {
  now: () => number;
  curve: (tMs: number) => number;
  on: boolean;
  /** Minutes the plug's local time is ahead of UTC. */
  timeDiffMin: number;
}

/** Plugs count whole Wh; the small epsilon keeps 149.99999 (float sum of an exact 150) from reading as 149. */
export function wholeWh(wh: number): number {
  return Math.floor(wh + 1e-6);
}

export class TapoMeter {
  #now: () => number;
  #curve: (tMs: number) => number;
  #offsetMs: number;
  #on: boolean;
  #onSince: number;
  #lastT: number; // integrated up to here
  #todayWh = 0;
  #monthWh = 0;
  #totalWh = 0;
  #todayOnMs = 0;
  #monthOnMs = 0;

  constructor(o: MeterOptions) {
    this.#now = o.now;
    this.#curve = o.curve;
    this.#on = o.on;
    this.#offsetMs = o.timeDiffMin * 60_000;
    this.#lastT = o.now();
    this.#onSince = this.#lastT;
  }

  get on(): boolean {
    return this.#on;
  }

  /** Seconds since the relay was switched on (0 when off). */
  get onTimeS(): number {
    return this.#on ? Math.floor((this.#now() - this.#onSince) / 1000) : 0;
  }

  setOn(on: boolean): void {
    this.advance();
    if (on && !this.#on) this.#onSince = this.#now();
    this.#on = on;
  }

  setCurve(curve: (tMs: number) => number): void {
    this.advance();
    this.#curve = curve;
  }

  powerW(t = this.#now()): number {
    return this.#on ? Math.max(0, this.#curve(t)) : 0;
  }

  /** Integrates the curve up to now (midpoint rule, ≤ 10 s steps, at most 5000 per day), splitting at local
   *  midnights so each day's energy lands in the right counter. */
  advance(): void {
    const now = this.#now();
    while (this.#lastT < now) {
      const nextMidnightUtc = (Math.floor((this.#lastT + this.#offsetMs) / DAY_MS) + 1) * DAY_MS - this.#offsetMs;
      const end = Math.min(now, nextMidnightUtc);
      const span = end - this.#lastT;
      const steps = Math.min(5000, Math.max(1, Math.ceil(span / 10_000)));
      const dt = span / steps;
      let wh = 0;
      for (let i = 0; i < steps; i++) wh += (this.powerW(this.#lastT + (i + 0.5) * dt) * dt) / 3_600_000;
      const onMs = this.#on ? span : 0;
      this.#todayWh += wh;
      this.#monthWh += wh;
      this.#totalWh += wh;
      this.#todayOnMs += onMs;
      this.#monthOnMs += onMs;
      this.#lastT = end;
      if (end === nextMidnightUtc) {
        this.#todayWh = 0;
        this.#todayOnMs = 0;
        if (new Date(end + this.#offsetMs).getUTCDate() === 1) {
          this.#monthWh = 0;
          this.#monthOnMs = 0;
        }
      }
    }
  }

  /** get_energy_usage: current_power in mW, energies in Wh, runtimes in minutes, local_time in plug time. */
  energyUsage(): Record<string, unknown> {
    this.advance();
    const now = this.#now();
    return {
      current_power: Math.round(this.powerW(now) * 1000),
      electricity_charge: [0, 0, 0],
      local_time: new Date(now + this.#offsetMs).toISOString().slice(0, 19).replace('T', ' '),
      month_energy: wholeWh(this.#monthWh),
      month_runtime: Math.floor(this.#monthOnMs / 60_000),
      today_energy: wholeWh(this.#todayWh),
      today_runtime: Math.floor(this.#todayOnMs / 60_000),
    };
  }

  /** get_emeter_data: mW, mV, mA and Wh since start (power factor 1). */
  emeterData(voltageV: number): Record<string, unknown> {
    this.advance();
    const p = this.powerW();
    return {
      current_ma: Math.round((p / voltageV) * 1000),
      energy_wh: wholeWh(this.#totalWh),
      power_mw: Math.round(p * 1000),
      voltage_mv: Math.round(voltageV * 1000),
    };
  }
}
