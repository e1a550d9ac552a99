// EnergyMonitor: the energy module as one service the daemon starts and stops. It owns the device registry, the
// plug poller, the time series, the tariffs, the alerts and the NAS power tracker, and wires them together:
//
//   poller ──onReading──► series.append (durable history)
//          │            ├► alert rules (offline / over limit / anomaly)
//          │            └► NAS power tracker (plug with role nas) ──► nas_idle_long rule
//          └─onStatusChange──► plug_offline rule, NAS state unknown while its plug is unreachable
//
// Routes and the RPC service call the methods here (writes) and `queries` (reads); they never reach the stores.
// Without Tapo credentials and without demo plugs nothing is polled, but every query answers (with what is stored).

import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import { AlertCenter, type Alert } from './alerts.ts';
import { EnergyAlertRules } from './alert-rules.ts';
import { DeviceRegistry, type DevicePatch, type DeviceStore, type NewDevice } from './device-registry.ts';
import { discoverPlugs, type DiscoveredPlug } from './discovery.ts';
import { EnergyQueries, type NasView } from './energy-queries.ts';
import { NasPowerTracker, type NasPowerChange, type NasPowerSnapshot, type NasPowerThresholds } from './nas-power.ts';
import { PlugError, type PlugClientFactory, type PlugCredentials } from './plug-client.ts';
import { PlugPoller } from './poller.ts';
import { EnergySeries } from './series.ts';
import { tapoClientFactory } from './tapo-client.ts';
import { TariffBook, TariffError, TariffStore, type ConstantTariff, type Tariff } from './tariff.ts';
import type { PlugDevice, PlugReading } from './types.ts';
import { DEMO_CREDENTIALS, startDemoPlugs, type DemoPlugs } from './demo.ts';
import { CodedError } from '../errors.ts';

export type EnergyConfig = Pick<Config,
  | 'tapoUsername' | 'tapoPassword' | 'tapoDevices' | 'tapoDiscoveryAddress' | 'energyIntervalS'
  | 'energyRetentionDays' | 'timeZone' | 'energyPrice' | 'currency' | 'nasPowerThresholds' | 'alertWebhook' | 'demoPlugs'>;

export interface EnergyMonitorOptions {
  /** The daemon's LevelDB; the monitor keeps to its sublevels `tapo-devices` and `energy`. */
  db: DeviceStore;
  config: EnergyConfig;
  logger: Pick<Logger, 'info' | 'warn' | 'debug'>;
  /** How plugs are reached (default: the Tapo KLAP client). */
  clientFactory?: PlugClientFactory;
  /** Listening window of a discovery scan (default 3000 ms). */
  discoveryTimeoutMs?: number;
  /** fsync every group commit of the series (default true). */
  syncWrites?: boolean;
}

export class EnergyError extends CodedError<'ENERGY_POLLING_DISABLED' | 'ENERGY_CONFIRM_REQUIRED' | 'ALERT_NOT_FOUND' | 'ENERGY_BAD_OPTION'> {
  override name = 'EnergyError';
}

export interface ToggleResult {
  device: PlugDevice;
  on: boolean;
  /** Read back after switching; null if the read-back failed (the switch itself succeeded). */
  reading: PlugReading | null;
}

export interface DiscoveryResult {
  found: DiscoveredPlug[];
  added: PlugDevice[];
  updated: PlugDevice[];
}

/** Shutdown must fit the daemon's 10 s: webhook posts still queued after this are dropped. */
const WEBHOOK_DRAIN_MS = 2_000;
/** The energy integral bridges at most 3 poll intervals and never more than an hour (series.ts). */
const MAX_GAP_MS = 3_600_000;

export class EnergyMonitor {
  readonly registry: DeviceRegistry;
  readonly series: EnergySeries;
  readonly tariffs: TariffStore;
  readonly alerts: AlertCenter;
  readonly rules: EnergyAlertRules;
  readonly queries: EnergyQueries;
  readonly currency: string;
  readonly #o: EnergyMonitorOptions;
  readonly #log: EnergyMonitorOptions['logger'];
  readonly #credentials: PlugCredentials | null;
  readonly #nasThresholds: NasPowerThresholds;
  #poller: PlugPoller | null = null;
  #demo: DemoPlugs | null = null;
  #nas: { deviceId: number; tracker: NasPowerTracker } | null = null;
  readonly #nasChanges = new EventEmitter<{ change: [NasPowerChange] }>();
  /** The NAS plug's power state for the NAS module: stable across a change of the plug that has the `nas` role. */
  readonly nasPower = {
    snapshot: (): NasPowerSnapshot | null => this.#nas?.tracker.snapshot() ?? null,
    on: (event: 'change', fn: (c: NasPowerChange) => void) => this.#nasChanges.on(event, fn),
    off: (event: 'change', fn: (c: NasPowerChange) => void) => this.#nasChanges.off(event, fn),
  };
  #book: { stored: TariffBook; book: TariffBook } | null = null;
  #pending = new Set<Promise<unknown>>();
  #discovering: Promise<DiscoveryResult> | null = null;
  #state: 'new' | 'running' | 'stopped' = 'new';

  constructor(options: EnergyMonitorOptions) {
    const c = options.config;
    this.#o = options;
    this.#log = options.logger;
    this.currency = c.currency;
    const intervalMs = c.energyIntervalS * 1000;
    const maxGapIntervals = Math.min(3, Math.floor(MAX_GAP_MS / intervalMs));
    if (maxGapIntervals < 1) throw new EnergyError('ENERGY_BAD_OPTION', 'BALUPI_ENERGY_INTERVAL_S must be at most 3600');
    const energy = options.db.sublevel('energy');
    this.registry = new DeviceRegistry(options.db.sublevel('tapo-devices'));
    this.series = new EnergySeries(energy, {
      timeZone: c.timeZone, intervalMs, maxGapIntervals, rawRetentionDays: c.energyRetentionDays,
      sync: options.syncWrites ?? true, logger: options.logger,
    });
    this.tariffs = new TariffStore(energy, { calendar: this.series.calendar });
    this.alerts = new AlertCenter(energy, { webhookUrl: c.alertWebhook, logger: options.logger });
    this.rules = new EnergyAlertRules(this.alerts, { history: this.series });
    const [off, standby, idle] = c.nasPowerThresholds;
    this.#nasThresholds = { offBelowW: off, standbyBelowW: standby, idleBelowW: idle };
    new NasPowerTracker({ thresholds: this.#nasThresholds }); // invalid thresholds fail at start, not at the first reading
    // Configured credentials win; demo plugs accept whichever credentials the poller will use.
    this.#credentials = c.tapoUsername !== '' ? { username: c.tapoUsername, password: c.tapoPassword }
      : c.demoPlugs > 0 ? DEMO_CREDENTIALS : null;
    this.queries = new EnergyQueries({
      calendar: this.series.calendar,
      series: this.series,
      alerts: this.alerts,
      currency: c.currency,
      devices: () => this.registry.list(),
      latestReading: (id) => this.#poller?.latest(id) ?? this.series.latest(id),
      book: () => this.book(),
      nas: () => this.nas(),
      now: Date.now,
    });
  }

  /** Whether plugs are being polled (credentials or demo plugs present). */
  get polling(): boolean {
    return this.#poller !== null;
  }

  async start(): Promise<void> {
    if (this.#state !== 'new') throw new Error(`EnergyMonitor is ${this.#state}`);
    this.#state = 'running';
    const c = this.#o.config;
    try {
      await this.registry.open();
      await this.series.open();
      await this.alerts.open();
      const seeded = await this.registry.seed(c.tapoDevices);
      if (seeded.length > 0) this.#log.info({ devices: seeded.map((d) => `${d.host}:${d.port}`) }, 'plugs from BALUPI_TAPO_DEVICES added');
      if (c.demoPlugs > 0) {
        this.#demo = await startDemoPlugs({ count: c.demoPlugs, registry: this.registry, credentials: this.#credentials!, logger: this.#log });
      }
      if (!this.#credentials) {
        const devices = this.registry.list().length;
        const why = 'energy polling off: BALUPI_TAPO_USERNAME is not set and BALUPI_DEMO_PLUGS is 0 (the energy API serves stored data only)';
        if (devices > 0) this.#log.warn({ devices }, why);
        else this.#log.info(why);
        return;
      }
      this.#poller = new PlugPoller({
        devices: this.registry,
        credentials: this.#credentials,
        clientFactory: this.#o.clientFactory ?? tapoClientFactory(),
        intervalMs: c.energyIntervalS * 1000,
        onReading: (r) => this.#onReading(r),
        onStatusChange: (d, online, err) => this.#onStatus(d, online, err),
        onError: (err, context) => this.#log.warn({ err, context }, 'energy poller error'),
      });
      // Every device is due at once: the first readings arrive right after start, not one interval later.
      this.#poller.start();
      this.#log.info({ devices: this.registry.list().length, intervalS: c.energyIntervalS }, 'energy polling started');
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  /** Stops polling, waits for readings being stored and alerts being raised, stops demo plugs, closes the series and
   *  gives queued webhook posts a short time to go out. */
  async stop(): Promise<void> {
    if (this.#state === 'stopped') return;
    this.#state = 'stopped';
    await this.#poller?.stop();
    await this.settled();
    await this.#demo?.stop();
    await this.series.close();
    let timer: NodeJS.Timeout | undefined;
    const drained = await Promise.race([
      this.alerts.webhooksSettled().then(() => true),
      new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), WEBHOOK_DRAIN_MS))),
    ]);
    clearTimeout(timer);
    if (!drained) this.#log.warn('alert webhook posts still pending at shutdown were dropped');
  }

  /** Resolves when every reading and status change handed over so far has been stored and run through the rules. */
  async settled(): Promise<void> {
    while (this.#pending.size > 0) await Promise.allSettled([...this.#pending]);
  }

  /** Polls every plug now (joining polls in flight) and waits until the results are stored. */
  async pollNow(): Promise<void> {
    if (!this.#poller) return;
    await this.#poller.pollOnce({ force: true });
    await this.settled();
  }

  // ---- devices --------------------------------------------------------------------------------------------------

  async addDevice(input: NewDevice): Promise<PlugDevice> {
    const device = await this.registry.add(input);
    this.#poller?.refresh();
    return device;
  }

  async updateDevice(id: number, patch: DevicePatch): Promise<PlugDevice> {
    this.queries.device(id);
    const device = await this.registry.update(id, patch);
    this.#poller?.refresh();
    return device;
  }

  async removeDevice(id: number): Promise<PlugDevice> {
    const device = this.queries.device(id);
    await this.registry.remove(id);
    this.#poller?.refresh();
    if (this.#nas?.deviceId === id) this.#nas = null;
    return device;
  }

  /**
   * Switches a plug. Without `on` the relay is flipped. The plug of the NAS is never switched off by a bare toggle:
   * that cuts the NAS's power, so it needs an explicit `on: false`.
   */
  async toggle(id: number, on?: boolean): Promise<ToggleResult> {
    const device = this.queries.device(id);
    const poller = this.#poller;
    if (!poller) {
      throw new EnergyError('ENERGY_POLLING_DISABLED', 'Plugs cannot be switched: no Tapo credentials are configured (BALUPI_TAPO_USERNAME)');
    }
    let target = on;
    if (target === undefined) {
      const known = poller.latest(id) ?? (await poller.pollDevice(id));
      if (!known) throw new PlugError('PLUG_UNREACHABLE', `${device.host}:${device.port}`, `Plug ${id} did not answer; its state is unknown`);
      target = !known.deviceOn;
      if (!target && device.role === 'nas') {
        throw new EnergyError('ENERGY_CONFIRM_REQUIRED', 'This plug powers the NAS: send {"on": false} to switch it off');
      }
    }
    const reading = await poller.setOn(id, target);
    await this.settled();
    return { device: this.registry.get(id) ?? device, on: target, reading: reading ?? null };
  }

  /** Sends the discovery probe to the configured address, folds the answers into the registry. One scan at a time:
   *  a second request joins the scan in progress. */
  discover(): Promise<DiscoveryResult> {
    this.#discovering ??= (async () => {
      try {
        const found = await discoverPlugs({ address: this.#o.config.tapoDiscoveryAddress, timeoutMs: this.#o.discoveryTimeoutMs });
        const { added, updated } = await this.registry.applyDiscovery(found);
        if (added.length > 0 || updated.length > 0) this.#poller?.refresh();
        this.#log.info({ found: found.length, added: added.length, updated: updated.length }, 'plug discovery');
        return { found, added, updated };
      } finally {
        this.#discovering = null;
      }
    })();
    return this.#discovering;
  }

  // ---- tariffs and alerts ---------------------------------------------------------------------------------------

  /** The price used where no stored tariff applies: BALUPI_ENERGY_PRICE, rebuilt at every start (never stored, so
   *  changing the setting takes effect). */
  fallbackTariff(): ConstantTariff {
    const c = this.#o.config;
    return { id: 'config', kind: 'constant', name: 'BALUPI_ENERGY_PRICE', validFrom: '1970-01-01', currency: c.currency, pricePerKwh: c.energyPrice, createdAt: 0 };
  }

  /** Stored tariffs over the configured price: costs before the first stored tariff use the configured price. */
  async book(): Promise<TariffBook> {
    const stored = await this.tariffs.book();
    if (this.#book?.stored === stored) return this.#book.book;
    const withCurrency = stored.tariffs.map((t) => (t.currency ? t : { ...t, currency: this.currency }));
    const book = new TariffBook([this.fallbackTariff(), ...withCurrency], this.series.calendar);
    this.#book = { stored, book };
    return book;
  }

  async addTariff(input: Record<string, unknown>): Promise<Tariff> {
    if (input.currency !== undefined && input.currency !== null && input.currency !== this.currency) {
      throw new TariffError('ENERGY_TARIFF_INVALID',
        `currency must be ${this.currency} (BALUPI_CURRENCY): costs add up the prices of every tariff`);
    }
    const tariff = await this.tariffs.add(input);
    this.#log.info({ id: tariff.id, kind: tariff.kind, validFrom: tariff.validFrom }, 'tariff added');
    return tariff;
  }

  async acknowledgeAlert(id: string): Promise<Alert> {
    const alert = await this.alerts.acknowledge(id);
    if (!alert) throw new EnergyError('ALERT_NOT_FOUND', `Alert ${id} not found`);
    return alert;
  }

  nas(): NasView {
    const device = this.registry.nasDevice() ?? null;
    if (device && this.#nas?.deviceId === device.id) return { device, snapshot: this.#nas.tracker.snapshot() };
    const reason = device ? 'no reading of the NAS plug yet' : 'no plug has the role nas';
    return { device, snapshot: { state: 'unknown', since: null, reason, powerW: null, lastReadingAt: null } };
  }

  // ---- poller events --------------------------------------------------------------------------------------------

  #onReading(r: PlugReading): void {
    const device = this.registry.get(r.deviceId);
    if (!device) return;
    this.#track(this.series.append(r).catch((err: { code?: string }) => {
      // A toggle's read-back and a poll can answer within the same millisecond; the first one is kept.
      if (err.code === 'ENERGY_OUT_OF_ORDER') this.#log.debug({ err }, 'reading not stored');
      else throw err;
    }));
    let nas: ReturnType<NasPowerTracker['snapshot']> | null = null;
    if (device.role === 'nas') {
      const tracker = this.#trackerFor(device.id);
      tracker.update(r);
      nas = tracker.snapshot();
    }
    this.#track((async () => {
      await this.rules.onReading(r, device);
      if (nas) await this.rules.onNasPower(device.id, nas, r.at);
    })());
  }

  #onStatus(device: PlugDevice, online: boolean, error: Error | null): void {
    const at = Date.now();
    if (online) this.#log.info({ device: device.id, name: device.name }, 'plug online');
    else this.#log.warn({ device: device.id, name: device.name, error: error?.message }, 'plug offline');
    if (!online && this.#nas?.deviceId === device.id) this.#nas.tracker.markUnknown(at, `NAS plug unreachable: ${error?.message ?? 'no answer'}`);
    this.#track(this.rules.onStatus({ deviceId: device.id, online, at, error: error?.message ?? null }));
  }

  #trackerFor(deviceId: number): NasPowerTracker {
    if (this.#nas?.deviceId !== deviceId) {
      const tracker = new NasPowerTracker({ thresholds: this.#nasThresholds });
      tracker.on('change', (ch) => {
        this.#log.info({ device: deviceId, from: ch.from, to: ch.to, reason: ch.reason }, 'NAS power state');
        this.#nasChanges.emit('change', ch);
      });
      this.#nas = { deviceId, tracker };
    }
    return this.#nas.tracker;
  }

  /** Work started by a poller callback: awaited by settled() and stop(); a failure is logged, never thrown. */
  #track(p: Promise<unknown>): void {
    const tracked = p.catch((err) => this.#log.warn({ err }, 'energy event handling failed')).finally(() => this.#pending.delete(tracked));
    this.#pending.add(tracked);
  }
}
