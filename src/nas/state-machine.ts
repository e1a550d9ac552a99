// The NAS presence state machine. Pure: it holds the last evidence from each source and decides the state from it;
// no I/O, no timers, time comes in with every input. The service feeds it and persists `toDoc()`.
//
// Evidence and how much of it a change needs (the "consistent evidence" rule):
//   health    BaluHost's GET /api/health. One valid answer is proof the NAS is up; "down" needs `failuresToDown`
//             consecutive failed probes (the service re-probes fast after a failure, so ~10 s, not 90 s).
//   hub link  the sync peer connection (when a hub is configured): connected = up.
//   power     the NAS plug's state (off / standby / idle / active), already smoothed by NasPowerTracker's
//             hysteresis and 3-reading confirmation, so a wattage sitting on a threshold does not reach us.
//   mDNS      presence of `_baluhost._tcp`: finds the address and makes the service probe at once; it never
//             moves the state by itself (avahi answers while BaluHost is dead).
//   handshake BaluHost's HMAC-signed calls: authoritative, applied at once.
//   wake      we sent Wake-on-LAN: booting until health answers or the boot deadline passes.
// The table of outcomes is in README.md (section "NAS presence and wake") and mirrored by decide() below.

export const NAS_STATES = ['unknown', 'offline', 'standby', 'booting', 'online', 'shutting_down'] as const;
export type NasState = (typeof NAS_STATES)[number];
export type PowerLevel = 'unknown' | 'off' | 'standby' | 'idle' | 'active';
export type Cause = 'health' | 'link' | 'power' | 'mdns' | 'handshake' | 'wake' | 'timeout' | 'sources';

export type NasInput =
  | { kind: 'health'; at: number; ok: true; version: string | null }
  | { kind: 'health'; at: number; ok: false; error: string }
  | { kind: 'link'; at: number; connected: boolean }
  | { kind: 'power'; at: number; level: PowerLevel; watts: number | null }
  | { kind: 'mdns'; at: number; present: boolean }
  | { kind: 'handshake'; at: number; event: 'going-offline' | 'coming-online' }
  | { kind: 'wake'; at: number; reason: string; by: string }
  /** Which sources exist: health needs a NAS URL (configured or found by mDNS), link needs a configured hub. */
  | { kind: 'sources'; at: number; health: boolean; link: boolean }
  | { kind: 'tick'; at: number };

export interface NasTransition {
  from: NasState;
  to: NasState;
  at: number;
  reason: string;
  cause: Cause;
}

export interface WakeRecord {
  at: number;
  reason: string;
  by: string;
  outcome: 'pending' | 'online' | 'failed';
  finishedAt: number | null;
  detail: string | null;
}

export interface NasMachineOptions {
  /** booting → back (offline / standby) when health has not answered this long after the wake (default 180 s). */
  bootTimeoutMs?: number;
  /** shutting_down → offline ("crashed") when power has not dropped this long after BaluHost stopped answering
   *  (default 180 s: the plug tracker needs ~90 s to confirm a drop at 30 s polls). */
  settleTimeoutMs?: number;
  /** Consecutive failed health probes that make "down" (default 3). */
  failuresToDown?: number;
  /** After BaluHost's going-offline call, health answers are not believed for this long: its HTTP server keeps
   *  answering for a moment while it stops (default 60 s). A coming-online call ends the window. */
  quietAfterOfflineMs?: number;
  /** Transitions kept (default 200). */
  maxHistory?: number;
}

/** What is persisted: enough to answer status and history after a restart, and to finish a pending deadline. */
export interface NasMachineDoc {
  v: 1;
  state: NasState;
  since: number;
  reason: string;
  version: string | null;
  bootDeadline: number | null;
  settleDeadline: number | null;
  quietUntil: number | null;
  lastWake: WakeRecord | null;
  bootDurationsMs: number[];
  history: NasTransition[];
}

export interface ApplyResult {
  transition: NasTransition | null;
  /** The persisted document changed (a transition, a new version string, a wake record...). */
  dirty: boolean;
}

const BOOT_DURATIONS_KEPT = 5;
const ON_LEVELS: ReadonlySet<PowerLevel> = new Set(['idle', 'active']);
const DOWN_LEVELS: ReadonlySet<PowerLevel> = new Set(['off', 'standby']);

type Reach = 'up' | 'down' | 'doubt' | 'none';
type Decision = { to: NasState; reason: string; cause: Cause } | null;

export class NasMachine {
  readonly bootTimeoutMs: number;
  readonly settleTimeoutMs: number;
  readonly failuresToDown: number;
  readonly quietAfterOfflineMs: number;
  readonly maxHistory: number;
  #doc: NasMachineDoc;
  // Evidence: runtime only, gathered afresh after a restart.
  #sources = { health: false, link: false };
  #healthOk: boolean | null = null;
  #failures = 0;
  #lastError: string | null = null;
  #lastHealthAt: number | null = null;
  #linkUp: boolean | null = null;
  #power: PowerLevel = 'unknown';
  #watts: number | null = null;
  #mdns: boolean | null = null;

  constructor(opts: NasMachineOptions = {}, doc?: NasMachineDoc | null, at = Date.now()) {
    this.bootTimeoutMs = opts.bootTimeoutMs ?? 180_000;
    this.settleTimeoutMs = opts.settleTimeoutMs ?? 180_000;
    this.failuresToDown = Math.max(1, opts.failuresToDown ?? 3);
    this.quietAfterOfflineMs = opts.quietAfterOfflineMs ?? 60_000;
    this.maxHistory = Math.max(1, opts.maxHistory ?? 200);
    this.#doc = (doc && validDoc(doc)) ?? {
      v: 1, state: 'unknown', since: at, reason: 'no evidence yet', version: null, bootDeadline: null,
      settleDeadline: null, quietUntil: null, lastWake: null, bootDurationsMs: [], history: [],
    };
  }

  get state(): NasState { return this.#doc.state; }
  get since(): number { return this.#doc.since; }
  get reason(): string { return this.#doc.reason; }
  get version(): string | null { return this.#doc.version; }
  get lastWake(): WakeRecord | null { return this.#doc.lastWake; }
  get bootDeadline(): number | null { return this.#doc.bootDeadline; }
  get settleDeadline(): number | null { return this.#doc.settleDeadline; }
  get consecutiveFailures(): number { return this.#failures; }
  get lastHealthError(): string | null { return this.#lastError; }
  get lastHealthAt(): number | null { return this.#lastHealthAt; }
  get healthConfigured(): boolean { return this.#sources.health; }
  /** Newest first. */
  history(limit = this.maxHistory): NasTransition[] {
    return this.#doc.history.slice(-limit).reverse();
  }
  /** Median of recent successful boot durations, for "estimated_boot_time_s"; null before the first one. */
  typicalBootMs(): number | null {
    const d = [...this.#doc.bootDurationsMs].sort((a, b) => a - b);
    return d.length ? d[Math.floor(d.length / 2)]! : null;
  }
  /** The next moment a tick can change the state (a deadline), if any. */
  nextDeadline(): number | null {
    return this.#doc.state === 'booting' ? this.#doc.bootDeadline : this.#doc.state === 'shutting_down' ? this.#doc.settleDeadline : null;
  }
  /** True while a failed probe waits for confirmation, or during boot and shutdown: the service polls fast then. */
  wantsFastPolling(): boolean {
    return this.#doc.state === 'booting' || this.#doc.state === 'shutting_down' || (this.#failures > 0 && this.#failures < this.failuresToDown);
  }

  toDoc(): NasMachineDoc {
    return structuredClone(this.#doc);
  }

  /**
   * Takes one piece of evidence and decides. With `decide: false` the evidence is only recorded (a restart gathers
   * the current plug, link and mDNS evidence first, so that a deadline that ran out meanwhile is judged on all of it).
   */
  apply(input: NasInput, opts: { decide?: boolean } = {}): ApplyResult {
    let dirty = false;
    let powerRose = false;
    const at = input.at;
    switch (input.kind) {
      case 'health':
        this.#lastHealthAt = at;
        this.#healthOk = input.ok;
        if (input.ok) {
          this.#failures = 0;
          this.#lastError = null;
          if (input.version !== null && input.version !== this.#doc.version) {
            this.#doc.version = input.version;
            dirty = true;
          }
        } else {
          this.#failures++;
          this.#lastError = input.error;
        }
        break;
      case 'link':
        this.#linkUp = input.connected;
        break;
      case 'power':
        // A rise from off/standby is news (the NAS is starting on its own: power button, RTC alarm, core hours);
        // a first reading after unknown is not.
        powerRose = DOWN_LEVELS.has(this.#power) && ON_LEVELS.has(input.level);
        this.#power = input.level;
        this.#watts = input.watts;
        break;
      case 'mdns':
        this.#mdns = input.present;
        break;
      case 'sources':
        this.#sources = { health: input.health, link: input.link };
        break;
      case 'handshake':
        if (input.event === 'going-offline') {
          this.#doc.quietUntil = at + this.quietAfterOfflineMs;
          // The probe that may still succeed in the next second must not count as the NAS being back.
          this.#healthOk = null;
          const t = this.#move('offline', 'BaluHost announced it is going offline (its backend is stopping)', 'handshake', at);
          return { transition: t, dirty: true };
        } else {
          this.#doc.quietUntil = null;
          const t = this.#move('online', 'BaluHost announced it is online (its backend started)', 'handshake', at);
          return { transition: t, dirty: true };
        }
      case 'wake': {
        if (this.#doc.state === 'online') {
          this.#doc.lastWake = { at, reason: input.reason, by: input.by, outcome: 'online', finishedAt: at, detail: 'NAS was already online' };
          return { transition: null, dirty: true };
        }
        this.#doc.lastWake = { at, reason: input.reason, by: input.by, outcome: 'pending', finishedAt: null, detail: null };
        const t = this.#move('booting', `Wake-on-LAN sent (${input.reason})`, 'wake', at);
        this.#doc.bootDeadline = at + this.bootTimeoutMs;
        return { transition: t, dirty: true };
      }
      case 'tick':
        break;
    }
    if (opts.decide === false) return { transition: null, dirty };
    if (this.#doc.quietUntil !== null && at >= this.#doc.quietUntil) {
      this.#doc.quietUntil = null;
      dirty = true;
    }
    const d = this.#decide(at, input.kind === 'tick' ? 'timeout' : input.kind, powerRose);
    if (!d) return { transition: null, dirty };
    const t = this.#move(d.to, d.reason, d.cause, at);
    if (t && d.to === 'booting') this.#doc.bootDeadline = at + this.bootTimeoutMs;
    if (t && d.to === 'shutting_down') this.#doc.settleDeadline = at + this.settleTimeoutMs;
    return { transition: t, dirty: dirty || t !== null };
  }

  #reach(): Reach {
    const healthUp = this.#sources.health && this.#healthOk === true;
    const linkUp = this.#sources.link && this.#linkUp === true;
    if (healthUp || linkUp) return 'up';
    if (!this.#sources.health && !this.#sources.link) return 'none';
    const healthDown = !this.#sources.health || this.#failures >= this.failuresToDown;
    const linkDown = !this.#sources.link || this.#linkUp === false;
    return healthDown && linkDown ? 'down' : 'doubt';
  }

  #decide(at: number, cause: Cause, powerRose: boolean): Decision {
    const s = this.#doc.state;
    const reach = this.#reach();
    const w = this.#wattsText();
    if (reach === 'up') {
      const viaLink = this.#sources.link && this.#linkUp === true;
      if (!viaLink && this.#doc.quietUntil !== null && at < this.#doc.quietUntil) return null;
      const reason = this.#healthOk && this.#sources.health
        ? `BaluHost answered /api/health${this.#doc.version ? ` (version ${this.#doc.version})` : ''}`
        : 'hub peer link connected';
      return { to: 'online', reason, cause };
    }
    // Deadlines run out whatever the other evidence says.
    if (s === 'booting') {
      if (this.#doc.bootDeadline === null || at < this.#doc.bootDeadline) return null;
      const secs = Math.round(this.bootTimeoutMs / 1000);
      const to: NasState = this.#power === 'standby' ? 'standby' : 'offline';
      return { to, reason: `no answer from BaluHost within ${secs} s of booting${w}`, cause: 'timeout' };
    }
    if (s === 'shutting_down') {
      if (this.#power === 'off') return { to: 'offline', reason: `the NAS powered off${w}`, cause };
      if (this.#power === 'standby') return { to: 'standby', reason: `the NAS went to sleep${w}`, cause };
      if (this.#doc.settleDeadline !== null && at >= this.#doc.settleDeadline) {
        const secs = Math.round(this.settleTimeoutMs / 1000);
        return { to: 'offline', reason: `BaluHost has not answered for ${secs} s while the plug still draws power${w}: crashed or hung`, cause: 'timeout' };
      }
      return null;
    }
    if (reach === 'doubt') {
      if (powerRose && s !== 'online') return { to: 'booting', reason: `the NAS plug's power rose${w}: the NAS is starting`, cause: 'power' };
      return null;
    }
    if (reach === 'none') {
      // Nothing can ask BaluHost: the plug is the only evidence there is.
      switch (this.#power) {
        case 'off': return { to: 'offline', reason: `no NAS URL or hub to ask; the plug shows the NAS off${w}`, cause };
        case 'standby': return { to: 'standby', reason: `no NAS URL or hub to ask; the plug shows the NAS asleep${w}`, cause };
        case 'idle': case 'active': return { to: 'online', reason: `no NAS URL or hub to ask; the plug shows the NAS running${w}`, cause };
        default: return null;
      }
    }
    // reach === 'down'
    const mdnsNote = this.#mdns ? ' (it still announces itself on mDNS)' : '';
    if (s === 'online') {
      switch (this.#power) {
        case 'off': return { to: 'offline', reason: `BaluHost stopped answering and the NAS powered off${w}`, cause };
        case 'standby': return { to: 'standby', reason: `BaluHost stopped answering and the NAS is asleep${w}`, cause };
        case 'idle': case 'active':
          return { to: 'shutting_down', reason: `BaluHost stopped answering while the plug still draws power${w}: shutting down, going to sleep or crashed`, cause };
        default: return { to: 'offline', reason: `BaluHost stopped answering${mdnsNote} (no plug reading)`, cause };
      }
    }
    // offline, standby or unknown
    switch (this.#power) {
      case 'off': return s === 'offline' ? null : { to: 'offline', reason: `BaluHost does not answer and the plug shows the NAS off${w}`, cause };
      case 'standby': return s === 'standby' ? null : { to: 'standby', reason: `BaluHost does not answer and the plug shows the NAS asleep${w}`, cause };
      case 'idle': case 'active':
        if (powerRose) return { to: 'booting', reason: `the NAS plug's power rose${w}: the NAS is starting`, cause: 'power' };
        return s === 'unknown' ? { to: 'offline', reason: `BaluHost does not answer although the plug draws power${w}${mdnsNote}`, cause } : null;
      default:
        return s === 'unknown' ? { to: 'offline', reason: `BaluHost does not answer${mdnsNote} (no plug reading)`, cause } : null;
    }
  }

  #wattsText(): string {
    return this.#watts === null ? '' : ` (plug ${(Math.round(this.#watts * 10) / 10).toFixed(1)} W)`;
  }

  #move(to: NasState, reason: string, cause: Cause, at: number): NasTransition | null {
    const d = this.#doc;
    if (to === d.state) return null;
    const t: NasTransition = { from: d.state, to, at, reason, cause };
    if (d.state === 'booting' && d.lastWake?.outcome === 'pending') {
      d.lastWake = { ...d.lastWake, outcome: to === 'online' ? 'online' : 'failed', finishedAt: at, detail: reason };
      if (to === 'online') d.bootDurationsMs = [...d.bootDurationsMs, at - d.lastWake.at].slice(-BOOT_DURATIONS_KEPT);
    }
    d.state = to;
    d.since = at;
    d.reason = reason;
    if (to !== 'booting') d.bootDeadline = null;
    if (to !== 'shutting_down') d.settleDeadline = null;
    d.history.push(t);
    if (d.history.length > this.maxHistory) d.history.splice(0, d.history.length - this.maxHistory);
    return t;
  }
}

const isNum = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);
const isNumOrNull = (x: unknown) => x === null || isNum(x);

/** A stored document from disk is untrusted: anything malformed means starting fresh from `unknown`. */
function validDoc(doc: NasMachineDoc): NasMachineDoc | null {
  const d = doc as Partial<NasMachineDoc>;
  if (d.v !== 1 || !NAS_STATES.includes(d.state as NasState) || !isNum(d.since) || typeof d.reason !== 'string') return null;
  if (!isNumOrNull(d.bootDeadline) || !isNumOrNull(d.settleDeadline) || !isNumOrNull(d.quietUntil)) return null;
  if (!Array.isArray(d.history) || !Array.isArray(d.bootDurationsMs)) return null;
  const history = d.history.filter((t) => t && NAS_STATES.includes(t.from) && NAS_STATES.includes(t.to) && isNum(t.at) && typeof t.reason === 'string');
  return {
    v: 1, state: d.state!, since: d.since!, reason: d.reason!, version: typeof d.version === 'string' ? d.version : null,
    bootDeadline: d.bootDeadline ?? null, settleDeadline: d.settleDeadline ?? null, quietUntil: d.quietUntil ?? null,
    lastWake: d.lastWake && isNum(d.lastWake.at) ? d.lastWake : null,
    bootDurationsMs: d.bootDurationsMs.filter(isNum), history,
  };
}
