// The conditions behind energy alerts, fed by the poller's events; they raise and clear alerts in an AlertCenter.
//
//   plug_offline      status event online=false → raise; online=true or any reading → clear.
//   power_over_limit  reading above the device's maxPowerW → raise; clears at or below 95 % of the limit
//                     (the margin keeps a load hovering at the limit from opening and clearing every poll).
//   power_anomaly     power far from the usual level for this local hour of the week. Usual = median of the
//                     hourly mean power (hour rollups) of the same local hour 1…4 weeks earlier, using only hours
//                     with ≥ 30 samples (a quarter of the hour at 30 s), and only if ≥ 3 such weeks exist.
//                     Far above = power > 3 × median AND power − median > 20 W (the absolute floor stops a 1 W →
//                     4 W change from alerting); far below (opt-in) = power < median / 3 AND median − power > 20 W.
//                     Raised after 3 consecutive far readings, cleared after 3 consecutive normal ones.
//   nas_idle_long     the NAS plug's power state has been `idle` for ≥ 2 h (awake, doing nothing: wasted
//                     energy) → raise; any other state → clear.

import type { Calendar } from './calendar.ts';
import type { HourlySource } from './cost.ts';
import type { PlugReading } from './types.ts';
import type { AlertCenter } from './alerts.ts';
import type { NasPowerSnapshot } from './nas-power.ts';

export interface AnomalyOptions {
  factor?: number;
  minDeltaW?: number;
  weeks?: number;
  minWeeks?: number;
  minSamplesPerHour?: number;
  confirmSamples?: number;
  detectLow?: boolean;
}

export interface AlertRuleOptions {
  history: HourlySource;
  nasIdleAfterMs?: number;
  overLimitClearFraction?: number;
  /** false disables anomaly detection. */
  anomaly?: AnomalyOptions | false;
}

export interface Baseline {
  hourStart: number;
  medianW: number;
  weeks: number;
}

interface AnomalyRun { far: number; normal: number }

const BASELINE_CACHE = 2048;

export class EnergyAlertRules {
  readonly #center: AlertCenter;
  readonly #history: HourlySource;
  readonly #cal: Calendar;
  readonly #idleAfter: number;
  readonly #clearFraction: number;
  readonly #anomaly: Required<AnomalyOptions> | null;
  readonly #runs = new Map<number, AnomalyRun>();
  readonly #baselines = new Map<string, Baseline | null>();

  constructor(center: AlertCenter, opts: AlertRuleOptions) {
    this.#center = center;
    this.#history = opts.history;
    this.#cal = opts.history.calendar;
    this.#idleAfter = opts.nasIdleAfterMs ?? 2 * 3_600_000;
    this.#clearFraction = opts.overLimitClearFraction ?? 0.95;
    this.#anomaly = opts.anomaly === false ? null : {
      factor: 3, minDeltaW: 20, weeks: 4, minWeeks: 3, minSamplesPerHour: 30, confirmSamples: 3, detectLow: false,
      ...opts.anomaly,
    };
  }

  async onStatus(ev: { deviceId: number; online: boolean; at: number; error?: string | null }): Promise<void> {
    if (ev.online) {
      await this.#center.clear('plug_offline', ev.deviceId, ev.at);
    } else {
      await this.#center.raise('plug_offline', ev.deviceId, `plug ${ev.deviceId} is unreachable`,
        { error: ev.error ?? null }, ev.at);
    }
  }

  async onReading(r: PlugReading, device: { maxPowerW: number | null }): Promise<void> {
    if (this.#center.isOpen('plug_offline', r.deviceId)) await this.#center.clear('plug_offline', r.deviceId, r.at);
    const limit = device.maxPowerW;
    if (limit !== null && r.powerW > limit) {
      await this.#center.raise('power_over_limit', r.deviceId,
        `${r.powerW.toFixed(1)} W is above the limit of ${limit} W`, { powerW: r.powerW, limitW: limit }, r.at);
    } else if (this.#center.isOpen('power_over_limit', r.deviceId) &&
               (limit === null || r.powerW <= limit * this.#clearFraction)) {
      await this.#center.clear('power_over_limit', r.deviceId, r.at);
    }
    if (this.#anomaly) await this.#checkAnomaly(r, this.#anomaly);
  }

  async onNasPower(deviceId: number, s: NasPowerSnapshot, at: number): Promise<void> {
    if (s.state === 'idle' && s.since !== null && at - s.since >= this.#idleAfter) {
      const hours = (at - s.since) / 3_600_000;
      await this.#center.raise('nas_idle_long', deviceId,
        `NAS awake but idle for ${hours.toFixed(1)} h`, { idleSince: s.since, powerW: s.powerW }, at);
    } else if (s.state !== 'idle') {
      await this.#center.clear('nas_idle_long', deviceId, at);
    }
  }

  /** The usual power for the local hour of the week containing `at`, or null without enough history. */
  async baseline(deviceId: number, at: number): Promise<Baseline | null> {
    const a = this.#anomaly;
    if (!a) return null;
    const hourStart = this.#cal.hourStart(at);
    const key = `${deviceId}:${hourStart}`;
    if (this.#baselines.has(key)) return this.#baselines.get(key)!;
    const values: number[] = [];
    for (let k = 1; k <= a.weeks; k++) {
      const h = this.#cal.hourStart(this.#cal.shiftLocalDays(hourStart, -7 * k));
      const [r] = await this.#history.rollups(deviceId, 'hour', h, h + 1);
      if (r && r.start === h && r.samples >= a.minSamplesPerHour && r.avgW !== null) values.push(r.avgW);
    }
    const result = values.length >= a.minWeeks ? { hourStart, medianW: median(values), weeks: values.length } : null;
    if (this.#baselines.size >= BASELINE_CACHE) this.#baselines.clear();
    this.#baselines.set(key, result);
    return result;
  }

  async #checkAnomaly(r: PlugReading, a: Required<AnomalyOptions>): Promise<void> {
    const base = await this.baseline(r.deviceId, r.at);
    let run = this.#runs.get(r.deviceId);
    if (!run) { run = { far: 0, normal: 0 }; this.#runs.set(r.deviceId, run); }
    if (!base) { run.far = 0; return; }
    const m = base.medianW, p = r.powerW;
    const high = p > a.factor * m && p - m > a.minDeltaW;
    const low = a.detectLow && p < m / a.factor && m - p > a.minDeltaW;
    if (high || low) { run.far++; run.normal = 0; } else { run.normal++; run.far = 0; }
    if (run.far >= a.confirmSamples) {
      await this.#center.raise('power_anomaly', r.deviceId,
        `${p.toFixed(1)} W is ${high ? 'far above' : 'far below'} the usual ${m.toFixed(1)} W for this hour of the week`,
        { powerW: p, medianW: m, weeks: base.weeks, direction: high ? 'high' : 'low' }, r.at);
    } else if (run.normal >= a.confirmSamples && this.#center.isOpen('power_anomaly', r.deviceId)) {
      await this.#center.clear('power_anomaly', r.deviceId, r.at);
    }
  }
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}
