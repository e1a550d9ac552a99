// NasService: the NAS module's one object. It feeds the state machine from its sources (health polls, plug power,
// hub link, mDNS, BaluHost's handshakes, our own wakes), persists it, runs the poll rhythm (30 s, 5 s while booting,
// shutting down or confirming a failure) and the deadlines, and tells the rest of the program what happened:
//
//   nas.on('online', (e) => ...)       every time the NAS becomes reachable (health, hub link or BaluHost's
//                                      coming-online call — also when that call arrives while already online):
//                                      the sync layer flushes its upload queue here.
//   nas.on('transition', (t) => ...)   every state change {from, to, at, reason, cause}.
//   nas.ensureNasAvailable(reason)     the cache on a miss: resolves when online, rejects NasUnavailableError.
import { EventEmitter } from 'node:events';
import type { Logger } from '../log.ts';
import type { NasPowerChange, NasPowerSnapshot } from '../energy/nas-power.ts';
import { systemClock, type Clock, type TimerHandle } from './clock.ts';
import { NasMachine, type Cause, type NasInput, type NasState, type NasTransition } from './state-machine.ts';
import { probeHealth, type ProbeResult } from './health-probe.ts';
import { sendMagicPacket } from './wol.ts';
import { WakeCoordinator, type EnsureResult, type WolResult } from './wake.ts';
import { HandshakeVerifier, type HandshakeRequest, type SignedForm } from './handshake.ts';
import { parsePythonJson, toPlainValue } from './python-json.ts';
import type { NasStateStore } from './state-store.ts';
import type { MdnsPeer } from './mdns.ts';

/** The NAS plug's power state; a NasPowerTracker satisfies it. */
export interface NasPowerSource {
  snapshot(): NasPowerSnapshot | null;
  on(event: 'change', fn: (c: NasPowerChange) => void): unknown;
  off(event: 'change', fn: (c: NasPowerChange) => void): unknown;
}

/** The sync peer connection to the hub on the NAS. */
export interface HubLinkSource {
  connected(): boolean;
  on(event: 'change', fn: (connected: boolean) => void): unknown;
  off(event: 'change', fn: (connected: boolean) => void): unknown;
}

/** mDNS browsing for the NAS; MdnsPresence satisfies it. */
export interface NasDiscovery {
  peers(type: string): MdnsPeer[];
  on(event: 'change', fn: (type: string, peers: MdnsPeer[]) => void): unknown;
  off(event: 'change', fn: (type: string, peers: MdnsPeer[]) => void): unknown;
}

export const BALUHOST_SERVICE_TYPE = '_baluhost._tcp';

export interface NasServiceOptions {
  store: NasStateStore;
  log: Logger;
  clock?: Clock;
  /** BaluHost's base URL; null: the address mDNS finds. */
  nasUrl: string | null;
  nasMac: string | null;
  wolAddress: string;
  handshakeSecret: string | null;
  bootTimeoutMs?: number;
  settleTimeoutMs?: number;
  failuresToDown?: number;
  pollIntervalMs?: number;
  fastPollIntervalMs?: number;
  probeTimeoutMs?: number;
  power?: NasPowerSource | null;
  hubLink?: HubLinkSource | null;
  discovery?: NasDiscovery | null;
  /** Upload queue size for GET /api/handshake/status (the sync layer's inbox). */
  inbox?: () => { files: number; bytes: number } | Promise<{ files: number; bytes: number }>;
  probe?: (url: string, opts: { timeoutMs: number; signal?: AbortSignal }) => Promise<ProbeResult>;
  sendWol?: (mac: string, address: string) => Promise<void>;
}

export interface NasOnlineEvent {
  at: number;
  via: Cause;
  reason: string;
  version: string | null;
  url: string | null;
}

const iso = (ms: number | null | undefined) => (ms === null || ms === undefined ? null : new Date(ms).toISOString());

export class NasService extends EventEmitter<{ transition: [NasTransition]; online: [NasOnlineEvent]; probe: [ProbeResult & { at: number; url: string }] }> {
  readonly #o: NasServiceOptions;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #machine: NasMachine;
  readonly #verifier: HandshakeVerifier;
  readonly #wake: WakeCoordinator;
  readonly #pollMs: number;
  readonly #fastPollMs: number;
  #discoveredUrl: string | null = null;
  #mdnsPeer: MdnsPeer | null = null;
  #started = false;
  #stopped = false;
  #timer: TimerHandle | null = null;
  #timerDue = Infinity;
  #deadlineTimer: TimerHandle | null = null;
  #probing: Promise<void> | null = null;
  readonly #probeAbort = new AbortController();
  readonly #unsubscribe: (() => void)[] = [];

  /** Loads the persisted state; call start() to begin observing. */
  static async open(opts: NasServiceOptions): Promise<NasService> {
    const clock = opts.clock ?? systemClock;
    const [doc, signatures] = await Promise.all([opts.store.loadMachine(), opts.store.loadSignatures(clock.now())]);
    return new NasService(opts, doc, signatures);
  }

  private constructor(opts: NasServiceOptions, doc: Awaited<ReturnType<NasStateStore['loadMachine']>>, signatures: [string, number][]) {
    super();
    this.#o = opts;
    this.#clock = opts.clock ?? systemClock;
    this.#log = opts.log;
    this.#pollMs = opts.pollIntervalMs ?? 30_000;
    this.#fastPollMs = opts.fastPollIntervalMs ?? 5_000;
    this.#machine = new NasMachine(
      { bootTimeoutMs: opts.bootTimeoutMs, settleTimeoutMs: opts.settleTimeoutMs, failuresToDown: opts.failuresToDown },
      doc, this.#clock.now(),
    );
    this.#verifier = new HandshakeVerifier({
      secret: opts.handshakeSecret,
      now: () => this.#clock.now(),
      remembered: signatures,
      onAccepted: (sig, exp) => opts.store.rememberSignature(sig, exp),
    });
    this.#wake = new WakeCoordinator({
      state: () => this.#machine.state,
      power: () => this.#o.power?.snapshot() ?? null,
      macConfigured: () => this.#o.nasMac !== null,
      probeNow: () => this.probeNow(),
      sendWakePacket: () => (this.#o.sendWol ?? sendMagicPacket)(this.#o.nasMac!, this.#o.wolAddress),
      markWakeSent: (reason, by) => {
        this.#log.info({ reason, by, address: this.#o.wolAddress }, 'Wake-on-LAN sent to the NAS');
        this.#feed({ kind: 'wake', at: this.#clock.now(), reason, by });
      },
      lastWake: () => this.#machine.lastWake,
      typicalBootMs: () => this.#machine.typicalBootMs(),
      onTransition: (fn) => {
        this.on('transition', fn);
        return () => this.off('transition', fn);
      },
    }, this.#clock);
  }

  get state(): NasState { return this.#machine.state; }

  /** BaluHost's base URL: configured, else found by mDNS, else null. */
  url(): string | null {
    return this.#o.nasUrl ?? this.#discoveredUrl;
  }

  start(): void {
    if (this.#started) return;
    this.#started = true;
    const now = this.#clock.now();
    this.#log.info({ state: this.#machine.state, since: iso(this.#machine.since), url: this.url() }, 'NAS presence: starting');
    const { power, hubLink, discovery } = this.#o;
    // First gather what every source says now, then decide once: judged piecemeal, a deadline that ran out while
    // the Pi was down would be settled before the plug's reading is known.
    const observe = (input: NasInput) => this.#machine.apply(input, { decide: false });
    if (power) {
      const onPower = (c: NasPowerChange) => {
        this.#feed({ kind: 'power', at: this.#clock.now(), level: c.to, watts: c.powerW });
        // A power change is a hint: ask BaluHost now rather than at the next poll.
        void this.probeNow();
      };
      power.on('change', onPower);
      this.#unsubscribe.push(() => power.off('change', onPower));
      const snap = power.snapshot();
      if (snap) observe({ kind: 'power', at: now, level: snap.state, watts: snap.powerW });
    }
    if (hubLink) {
      const onLink = (connected: boolean) => {
        this.#feed({ kind: 'link', at: this.#clock.now(), connected });
        if (!connected) void this.probeNow();
      };
      hubLink.on('change', onLink);
      this.#unsubscribe.push(() => hubLink.off('change', onLink));
      observe({ kind: 'link', at: now, connected: hubLink.connected() });
    }
    if (discovery) {
      const onPeers = (type: string, peers: MdnsPeer[]) => {
        if (type === BALUHOST_SERVICE_TYPE) this.#onDiscovered(peers);
      };
      discovery.on('change', onPeers);
      this.#unsubscribe.push(() => discovery.off('change', onPeers));
      this.#adoptPeer(discovery.peers(BALUHOST_SERVICE_TYPE)[0] ?? null);
      observe({ kind: 'mdns', at: now, present: this.#mdnsPeer !== null });
    }
    this.#feed({ kind: 'sources', at: now, health: this.url() !== null, link: !!hubLink });
    void this.probeNow();
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    for (const off of this.#unsubscribe.splice(0)) off();
    if (this.#timer) this.#clock.clearTimeout(this.#timer);
    if (this.#deadlineTimer) this.#clock.clearTimeout(this.#deadlineTimer);
    this.#probeAbort.abort();
    await this.#probing;
    this.#wake.close();
    await this.#o.store.flush();
  }

  /** Probes BaluHost now (joins a probe already running) and feeds the result; no-op without a URL. */
  probeNow(): Promise<void> {
    if (!this.#started || this.#stopped) return Promise.resolve();
    if (this.#probing) return this.#probing;
    const url = this.url();
    if (!url) return Promise.resolve();
    if (this.#timer) this.#clock.clearTimeout(this.#timer);
    this.#timer = null;
    this.#timerDue = Infinity;
    const probe = this.#o.probe ?? probeHealth;
    this.#probing = (async () => {
      try {
        const r = await probe(url, { timeoutMs: this.#o.probeTimeoutMs ?? 5_000, signal: this.#probeAbort.signal });
        if (this.#stopped) return;
        const at = this.#clock.now();
        if (r.ok) this.#feed({ kind: 'health', at, ok: true, version: r.version });
        else this.#feed({ kind: 'health', at, ok: false, error: r.error });
        this.#log.debug({ url, ...r }, 'NAS health probe');
        this.emit('probe', { ...r, at, url });
      } catch (err) {
        this.#log.error({ err }, 'NAS health probe failed unexpectedly');
      } finally {
        this.#probing = null;
        this.#scheduleProbe();
      }
    })();
    return this.#probing;
  }

  /** Resolves when no health probe is running (one started by a power or mDNS hint, say). */
  async idle(): Promise<void> {
    while (this.#probing) await this.#probing;
  }

  ensureNasAvailable(reason: string, opts?: { signal?: AbortSignal; by?: string }): Promise<EnsureResult> {
    return this.#wake.ensureNasAvailable(reason, opts);
  }

  /** The manual Wake-on-LAN (POST /api/nas/wol). */
  wake(by: string): Promise<WolResult> {
    return this.#wake.wake(by);
  }

  verifyHandshake(req: HandshakeRequest): SignedForm {
    return this.#verifier.verify(req);
  }

  /** BaluHost's going-offline call (already verified): keeps the snapshot body, → offline. */
  async goingOffline(body: Uint8Array): Promise<{ snapshotStored: boolean }> {
    const at = this.#clock.now();
    this.#feed({ kind: 'handshake', at, event: 'going-offline' });
    const text = Buffer.from(body).toString('utf8');
    let snapshotStored = false;
    try {
      const parsed = parsePythonJson(text);
      if (parsed.t === 'obj') {
        await this.#o.store.saveSnapshot({ receivedAt: at, body: text });
        snapshotStored = true;
      }
    } catch {
      // Not JSON: the shutdown still counts, the previous snapshot stays.
    }
    if (!snapshotStored) this.#log.warn({ bytes: body.length }, 'going-offline body is not a JSON object; snapshot not replaced');
    return { snapshotStored };
  }

  /** BaluHost's coming-online call (already verified): → online, and 'online' fires even if it already was. */
  comingOnline(): void {
    const at = this.#clock.now();
    const { transition } = this.#feed({ kind: 'handshake', at, event: 'coming-online' });
    if (!transition) this.#emitOnline(at, 'handshake', this.#machine.reason);
  }

  async snapshot(): Promise<{ receivedAt: number; body: unknown } | null> {
    const s = await this.#o.store.loadSnapshot();
    if (!s) return null;
    try {
      return { receivedAt: s.receivedAt, body: toPlainValue(parsePythonJson(s.body)) };
    } catch {
      return null;
    }
  }

  history(limit?: number): NasTransition[] {
    return this.#machine.history(limit);
  }

  status() {
    const m = this.#machine;
    const p = this.#o.power?.snapshot() ?? null;
    const w = m.lastWake;
    return {
      online: m.state === 'online',
      nas_state: m.state,
      since: iso(m.since),
      reason: m.reason,
      power_w: p?.powerW ?? null,
      power_state: p?.state ?? 'unknown',
      url: this.url(),
      version: m.version,
      last_wake: w && { at: iso(w.at), reason: w.reason, requested_by: w.by, outcome: w.outcome, finished_at: iso(w.finishedAt), detail: w.detail },
      waking: this.#wake.waking,
      health: { last_probe_at: iso(m.lastHealthAt), last_error: m.lastHealthError, consecutive_failures: m.consecutiveFailures },
      hub_link: this.#o.hubLink ? this.#o.hubLink.connected() : null,
      mdns: this.#o.discovery ? (this.#mdnsPeer && { instance: this.#mdnsPeer.instance, addresses: this.#mdnsPeer.addresses, port: this.#mdnsPeer.port }) : null,
      boot_deadline: iso(m.bootDeadline),
    };
  }

  /** GET /api/handshake/status, the shape the BaluHost-built Pi dashboard reads. */
  async handshakeStatus() {
    const snap = await this.#o.store.loadSnapshot();
    const inbox = (await this.#o.inbox?.()) ?? { files: 0, bytes: 0 };
    return {
      nas_state: this.#machine.state,
      since: iso(this.#machine.since),
      last_snapshot: iso(snap?.receivedAt),
      inbox_size_mb: Math.round((inbox.bytes / 2 ** 20) * 10) / 10,
      inbox_files: inbox.files,
    };
  }

  #feed(input: NasInput): { transition: NasTransition | null } {
    const { transition, dirty } = this.#machine.apply(input);
    if (dirty) void this.#o.store.saveMachine(this.#machine.toDoc());
    this.#scheduleDeadline();
    if (transition) {
      this.#log.info({ from: transition.from, to: transition.to, cause: transition.cause, reason: transition.reason }, `NAS is ${transition.to}`);
      this.emit('transition', transition);
      if (transition.to === 'online') this.#emitOnline(transition.at, transition.cause, transition.reason);
      // The rhythm may have to change (fast while booting): do not wait out a 30 s timer.
      if (!this.#probing) this.#scheduleProbe();
    }
    return { transition };
  }

  #emitOnline(at: number, via: Cause, reason: string): void {
    this.emit('online', { at, via, reason, version: this.#machine.version, url: this.url() });
  }

  #feedSources(): void {
    this.#feed({ kind: 'sources', at: this.#clock.now(), health: this.url() !== null, link: !!this.#o.hubLink });
  }

  #onDiscovered(peers: MdnsPeer[]): void {
    const wasPresent = this.#mdnsPeer !== null;
    const peer = this.#adoptPeer(peers[0] ?? null);
    if (!this.#started || this.#stopped) return;
    this.#feed({ kind: 'mdns', at: this.#clock.now(), present: peer !== null });
    this.#feedSources();
    if (peer && !wasPresent) void this.probeNow();
  }

  /** Remembers the NAS found by mDNS; its address becomes the health URL when none is configured. */
  #adoptPeer(peer: MdnsPeer | null): MdnsPeer | null {
    this.#mdnsPeer = peer;
    if (peer) {
      const addr = peer.addresses.find((a) => !a.includes(':')) ?? peer.addresses[0]!;
      const url = `http://${addr.includes(':') ? `[${addr}]` : addr}:${peer.port}`;
      if (url !== this.#discoveredUrl) {
        this.#discoveredUrl = url;
        if (!this.#o.nasUrl) this.#log.info({ url, instance: peer.instance }, 'NAS found by mDNS');
      }
    }
    return peer;
  }

  #scheduleProbe(): void {
    if (this.#stopped || !this.url()) return;
    const delay = this.#machine.wantsFastPolling() ? this.#fastPollMs : this.#pollMs;
    const due = this.#clock.now() + delay;
    if (this.#timer && this.#timerDue <= due) return;
    if (this.#timer) this.#clock.clearTimeout(this.#timer);
    this.#timerDue = due;
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = null;
      this.#timerDue = Infinity;
      return this.probeNow();
    }, delay);
  }

  #scheduleDeadline(): void {
    if (this.#deadlineTimer) this.#clock.clearTimeout(this.#deadlineTimer);
    this.#deadlineTimer = null;
    const d = this.#machine.nextDeadline();
    if (d === null || this.#stopped || !this.#started) return;
    this.#deadlineTimer = this.#clock.setTimeout(() => {
      this.#deadlineTimer = null;
      this.#feed({ kind: 'tick', at: this.#clock.now() });
    }, Math.max(0, d - this.#clock.now()));
  }
}
