// Waking the NAS: the manual Wake-on-LAN (POST /api/nas/wol) and ensureNasAvailable(reason), which the cache calls
// on a miss and the sync layer before an upload flush: already up? (probe now) → has power? → wake → wait until
// health answers or the boot deadline sends the state back. Concurrent callers share one in-flight sequence, so a
// burst of cache misses sends one packet.
import type { NasState, NasTransition, WakeRecord } from './state-machine.ts';
import type { Clock } from './clock.ts';

export type RefusalReason = 'not_configured' | 'already_online' | 'already_booting' | 'shutting_down' | 'no_power' | 'unresponsive';

/** The manual wake was refused; `reason` says why (HTTP 400, like the Python BaluPi's refusals). */
export class WakeRefusedError extends Error {
  override name = 'WakeRefusedError';
  readonly code = 'wake_refused';
  readonly reason: RefusalReason;
  constructor(reason: RefusalReason, message: string) {
    super(message);
    this.reason = reason;
  }
}

/** ensureNasAvailable could not make the NAS available (HTTP 503 for a caller that maps it). */
export class NasUnavailableError extends Error {
  override name = 'NasUnavailableError';
  readonly code = 'nas_unavailable';
  readonly reason: RefusalReason | 'boot_failed' | 'wol_send_failed';
  constructor(reason: NasUnavailableError['reason'], message: string) {
    super(message);
    this.reason = reason;
  }
}

/** What the coordinator needs from the NAS service. */
export interface WakeHost {
  state(): NasState;
  /** The NAS plug's power state and latest reading, or null without a NAS plug. */
  power(): { state: string; powerW: number | null } | null;
  macConfigured(): boolean;
  /** Probes health now (or joins the probe in flight) and feeds the result to the state machine. */
  probeNow(): Promise<void>;
  /** Sends one magic packet; rejects with the send error. */
  sendWakePacket(): Promise<void>;
  /** Tells the state machine a packet went out (→ booting). */
  markWakeSent(reason: string, by: string): void;
  lastWake(): WakeRecord | null;
  typicalBootMs(): number | null;
  /** Subscribes to transitions; returns the unsubscribe function. */
  onTransition(fn: (t: NasTransition) => void): () => void;
}

export interface EnsureResult {
  /** This call (or the one it joined) sent a Wake-on-LAN packet. */
  woke: boolean;
  waitedMs: number;
}

export interface WolResult {
  wol_sent: true;
  nas_previous_state: NasState;
  estimated_boot_time_s: number;
}

/** A plug reading at or below this is no power at all (relay off or unplugged); a NAS that is off but armed for
 *  Wake-on-LAN still draws a watt or two through its network card, and must stay wakeable. */
export const NO_POWER_W = 0.5;
const DEFAULT_BOOT_ESTIMATE_MS = 60_000;

export class WakeCoordinator {
  readonly #host: WakeHost;
  readonly #clock: Clock;
  #inFlight: Promise<EnsureResult> | null = null;
  readonly #waiters = new Set<(t: NasTransition | Error) => void>();

  constructor(host: WakeHost, clock: Clock) {
    this.#host = host;
    this.#clock = clock;
  }

  /**
   * Resolves once the NAS is online; rejects with NasUnavailableError (reason and message say why) if it is refused
   * (no MAC, plug off, powered but unresponsive) or does not come up before the boot deadline. `signal` ends this
   * caller's wait only; the shared wake goes on for the others.
   */
  ensureNasAvailable(reason: string, opts: { signal?: AbortSignal; by?: string } = {}): Promise<EnsureResult> {
    if (opts.signal?.aborted) return Promise.reject(opts.signal.reason);
    if (this.#host.state() === 'online') return Promise.resolve({ woke: false, waitedMs: 0 });
    if (!this.#inFlight) {
      const run = this.#run(reason, opts.by ?? 'ensureNasAvailable');
      this.#inFlight = run;
      run.then(() => { this.#inFlight = null; }, () => { this.#inFlight = null; });
    }
    return abortable(this.#inFlight, opts.signal);
  }

  /** Whether a wake sequence is running (for status). */
  get waking(): boolean {
    return this.#inFlight !== null;
  }

  /** The manual Wake-on-LAN: refuses when the NAS is up, booting, shutting down, without power, or powered but
   *  unresponsive; otherwise sends one packet and returns at once (the state is `booting`). */
  async wake(by: string, reason = 'requested through the API'): Promise<WolResult> {
    const previous = this.#host.state();
    const refusal = this.refusal('manual');
    if (refusal) throw new WakeRefusedError(refusal.reason, refusal.message);
    await this.#host.sendWakePacket();
    this.#host.markWakeSent(reason, by);
    return { wol_sent: true, nas_previous_state: previous, estimated_boot_time_s: this.estimatedBootS() };
  }

  estimatedBootS(): number {
    return Math.ceil((this.#host.typicalBootMs() ?? DEFAULT_BOOT_ESTIMATE_MS) / 1000);
  }

  /** Why a wake would be refused now, or null. `ensure` waits out booting and shutting_down instead of refusing. */
  refusal(mode: 'manual' | 'ensure'): { reason: RefusalReason; message: string } | null {
    if (!this.#host.macConfigured()) return { reason: 'not_configured', message: 'NAS MAC address not configured (set BALUPI_NAS_MAC)' };
    const s = this.#host.state();
    if (mode === 'manual') {
      if (s === 'online') return { reason: 'already_online', message: 'NAS is already online' };
      if (s === 'booting') return { reason: 'already_booting', message: 'NAS is already booting' };
      if (s === 'shutting_down') return { reason: 'shutting_down', message: 'NAS is shutting down; wake it once it is off or asleep' };
    }
    const p = this.#host.power();
    if (p && p.state === 'off' && (p.powerW ?? 0) <= NO_POWER_W) {
      return { reason: 'no_power', message: 'NAS has no power (plug off?). Turn on the smart plug first.' };
    }
    if (p && (p.state === 'idle' || p.state === 'active')) {
      const w = p.powerW === null ? '' : ` (${p.powerW.toFixed(1)} W)`;
      return { reason: 'unresponsive', message: `NAS is powered${w} but BaluHost does not answer; Wake-on-LAN cannot help (crashed, hung or still starting)` };
    }
    return null;
  }

  async #run(reason: string, by: string): Promise<EnsureResult> {
    const started = this.#clock.now();
    // Measured to the transition that ended the wait, not to when this continuation happens to run.
    const done = (woke: boolean, at = this.#clock.now()): EnsureResult => ({ woke, waitedMs: at - started });
    await this.#host.probeNow();
    if (this.#host.state() === 'shutting_down') await this.#until((s) => s !== 'shutting_down');
    if (this.#host.state() === 'online') return done(false);
    if (this.#host.state() === 'booting') return done(false, await this.#bootOutcome());
    const refusal = this.refusal('ensure');
    if (refusal) throw new NasUnavailableError(refusal.reason, refusal.message);
    try {
      await this.#host.sendWakePacket();
    } catch (err) {
      throw new NasUnavailableError('wol_send_failed', (err as Error).message);
    }
    this.#host.markWakeSent(reason, by);
    return done(true, await this.#bootOutcome());
  }

  /** Waits for booting to end: online resolves (with the time it happened), anything else rejects with the
   *  recorded reason. */
  async #bootOutcome(): Promise<number> {
    const t = await this.#until((s) => s !== 'booting');
    const s = t?.to ?? this.#host.state();
    if (s === 'online') return t?.at ?? this.#clock.now();
    const detail = t?.reason ?? this.#host.lastWake()?.detail ?? `the NAS is ${s}`;
    throw new NasUnavailableError('boot_failed', `NAS did not come online: ${detail}`);
  }

  /** Ends every wait (the service is stopping): callers get NasUnavailableError. */
  close(): void {
    const err = new NasUnavailableError('boot_failed', 'NAS service is stopping');
    for (const w of [...this.#waiters]) w(err);
  }

  /** The transition that first satisfies `pred`; null if the state satisfies it already. */
  #until(pred: (s: NasState) => boolean): Promise<NasTransition | null> {
    if (pred(this.#host.state())) return Promise.resolve(null);
    return new Promise((resolve, reject) => {
      const settle = (t: NasTransition | Error) => {
        off();
        this.#waiters.delete(settle);
        if (t instanceof Error) reject(t);
        else resolve(t);
      };
      const off = this.#host.onTransition((t) => {
        if (pred(t.to)) settle(t);
      });
      this.#waiters.add(settle);
    });
  }
}

function abortable<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return p;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => { signal.removeEventListener('abort', onAbort); resolve(v); },
      (e) => { signal.removeEventListener('abort', onAbort); reject(e); },
    );
  });
}
