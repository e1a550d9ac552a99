// Builds the NAS module from the configuration: the NAS presence service (pi role only) and mDNS (announce this
// node; browse for BaluHost on a pi). Two steps because mDNS must announce the port actually bound: open() before
// the server is built (the routes need the service), start() once it listens.
import { hostname } from 'node:os';
import type { AbstractLevel } from 'abstract-level';
import type { Config } from '../config.ts';
import type { Logger } from '../log.ts';
import { VERSION } from '../version.ts';
import { NasService, BALUHOST_SERVICE_TYPE, type HubLinkSource, type NasPowerSource } from './service.ts';
import { NasStateStore } from './state-store.ts';
import { MdnsPresence, localAddresses } from './mdns.ts';
import { parseWolAddress } from './wol.ts';

export const BALUPI_SERVICE_TYPE = '_balupi._tcp';

export interface NasModuleDeps {
  db: AbstractLevel<any, any, any>;
  log: Logger;
  /** The NAS plug's power state (the energy monitor's NasPowerTracker). */
  power?: NasPowerSource | null;
  /** The sync connection to the hub, when one is configured. */
  hubLink?: HubLinkSource | null;
  /** Upload queue size, for GET /api/handshake/status. */
  inbox?: () => { files: number; bytes: number } | Promise<{ files: number; bytes: number }>;
}

export class NasModule {
  readonly service: NasService | null;
  readonly mdns: MdnsPresence | null;
  readonly #config: Config;
  readonly #log: Logger;

  private constructor(config: Config, log: Logger, service: NasService | null, mdns: MdnsPresence | null) {
    this.#config = config;
    this.#log = log;
    this.service = service;
    this.mdns = mdns;
  }

  static async open(config: Config, deps: NasModuleDeps): Promise<NasModule> {
    const log = deps.log.child({ module: 'nas' });
    const group = parseWolAddress(config.mdnsGroup);
    const mdns = config.mdns
      ? new MdnsPresence({
        group: { address: group.host, port: group.port },
        interface: config.mdnsInterface,
        browse: config.role === 'pi' ? [BALUHOST_SERVICE_TYPE] : [],
      })
      : null;
    mdns?.on('warning', (err) => log.debug({ err: err.message }, 'mDNS warning'));
    let service: NasService | null = null;
    if (config.role === 'pi') {
      if (config.handshakeSecret !== null && config.handshakeSecret.length < 32) {
        log.warn('BALUPI_HANDSHAKE_SECRET is shorter than 32 characters; BaluHost refuses such a secret in production');
      }
      service = await NasService.open({
        store: new NasStateStore(deps.db, (err) => log.error({ err }, 'cannot persist the NAS state')),
        log,
        nasUrl: config.nasUrl,
        nasMac: config.nasMac,
        wolAddress: config.wolAddress,
        handshakeSecret: config.handshakeSecret,
        bootTimeoutMs: config.nasBootTimeoutS * 1000,
        pollIntervalMs: config.nasPollIntervalS * 1000,
        fastPollIntervalMs: config.nasFastPollIntervalS * 1000,
        power: deps.power ?? null,
        hubLink: deps.hubLink ?? null,
        discovery: mdns,
        inbox: deps.inbox,
      });
    }
    return new NasModule(config, log, service, mdns);
  }

  /** Health capabilities this module adds. */
  get capabilities(): string[] {
    return this.service ? ['nas.v1'] : [];
  }

  async start(ports: { http: number; grpc: number }): Promise<void> {
    if (this.mdns) {
      const c = this.#config;
      const host = hostname().split('.')[0] || 'balupi';
      this.mdns.setAnnouncement({
        type: BALUPI_SERVICE_TYPE,
        instance: `BaluPi ${host}`,
        host,
        port: ports.http,
        txt: { role: c.role, version: VERSION, api: '1', grpc: String(ports.grpc) },
        addresses: c.mdnsAddresses.length ? c.mdnsAddresses : localAddresses(c.mdnsInterface),
      });
      try {
        await this.mdns.start();
        this.#log.info({ group: c.mdnsGroup, interface: c.mdnsInterface ?? 'all' }, 'mDNS: announcing and browsing');
      } catch (err) {
        // A port another responder holds exclusively must not stop the daemon: presence works without mDNS.
        this.#log.warn({ err: (err as Error).message }, 'mDNS unavailable; continuing without it');
      }
    }
    this.service?.start();
  }

  async close(): Promise<void> {
    await this.service?.stop();
    await this.mdns?.stop();
  }
}
