// A Tapo P110/P115 on loopback: a real HTTP server speaking KLAP v2 (handshake1/handshake2/encrypted requests with
// the TP_SESSIONID cookie), answering the SMART methods BaluPi uses with the shapes and units real firmware uses
// (recorded fixtures: current_power in mW in get_energy_usage, whole W in get_current_power, Wh and minutes in the
// counters, base64 nickname/ssid), and a UDP responder for TP-Link's port-20002 discovery probe.
// Exported as a class so the daemon's demo mode can run a few of these instead of real plugs.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import type { Socket } from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import {
  KLAP_SEED_BYTES,
  klapAuthHash,
  klapClientProof,
  klapDeriveKeys,
  klapOpen,
  klapSeal,
  klapServerProof,
  klapVerify,
  type KlapKeys,
} from '../../src/energy/klap-crypto.ts';
import { formatHostPort } from '../../src/energy/plug-client.ts';
import { TapoMeter } from './tapo-meter.ts';
import { discoveryFrame } from './tapo-discovery-frame.ts';

export type EmulatedModel = 'P110' | 'P115';

export interface TapoPlugEmulatorOptions {
  username: string;
  password: string;
  model?: EmulatedModel;
  /** e.g. '1.3.1 Build 240621 Rel.162048' */
  firmware?: string;
  /** Newer firmware (energy_monitoring v2 with emeter) answers get_emeter_data with voltage and current. */
  hasEmeterData?: boolean;
  /** P110 1.0.x firmware lacks get_current_power; later firmware answers it (whole watts). */
  hasCurrentPower?: boolean;
  /** Batched requests (method multipleRequest), as python-kasa sends them. */
  multipleRequest?: boolean;
  /** false: a plug that does not speak KLAP (404 on /app/handshake1). The legacy AES handshake is not emulated. */
  klap?: boolean;
  /** Error code answered for methods the emulated firmware lacks (python-kasa: UNKNOWN_METHOD_ERROR = -1002). */
  missingMethodErrorCode?: number;
  /** Watts drawn by the load while the relay is on, as a function of the emulated clock (ms since epoch). */
  powerCurve?: (tMs: number) => number;
  voltageV?: number;
  nickname?: string;
  mac?: string;
  deviceOn?: boolean;
  /** Minutes the plug's local time is ahead of UTC (get_device_info.time_diff); its midnight resets today_energy. */
  timeDiffMin?: number;
  region?: string;
  /** The emulated clock; defaults to Date.now. */
  now?: () => number;
  host?: string;
  port?: number;
  /** TIMEOUT announced with the session cookie, seconds. */
  sessionTimeoutS?: number;
}

export interface TapoPlugEmulatorCounters {
  handshake1: number;
  handshake2: number;
  /** Encrypted /app/request calls that reached a live session. */
  requests: number;
  /** Methods executed, including those inside multipleRequest. */
  methods: Record<string, number>;
  forbidden: number;
  legacyHandshakes: number;
  discoveryProbes: number;
}

interface Session {
  localSeed: Buffer;
  remoteSeed: Buffer;
  keys: KlapKeys;
  confirmed: boolean;
  expiresAt: number;
}

interface Answer {
  error_code: number;
  result?: unknown;
}

const MAX_SESSIONS = 8; // small devices keep few; the oldest is dropped, as a plug forgets it
const MAX_BODY = 64 * 1024;
const UNKNOWN_METHOD = -1002;

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');

export class TapoPlugEmulator {
  readonly options: Required<Omit<TapoPlugEmulatorOptions, 'now' | 'powerCurve'>>;
  readonly counters: TapoPlugEmulatorCounters = {
    handshake1: 0,
    handshake2: 0,
    requests: 0,
    methods: {},
    forbidden: 0,
    legacyHandshakes: 0,
    discoveryProbes: 0,
  };
  /** When true the plug acts as if registered to another TP-Link account. */
  rejectCredentials = false;

  #now: () => number;
  #authHash: Buffer;
  #sessions = new Map<string, Session>();
  #server: Server | null = null;
  #sockets = new Set<Socket>();
  #port = 0;
  #offline = false;
  #hanging = false;
  #held = new Set<ServerResponse>();
  #failures: { left: number; code: number } = { left: 0, code: -1 };
  #udp: UdpSocket | null = null;
  #deviceId: string;
  #meter: TapoMeter;

  constructor(options: TapoPlugEmulatorOptions) {
    const model = options.model ?? 'P110';
    this.options = {
      username: options.username,
      password: options.password,
      model,
      firmware: options.firmware ?? (model === 'P110' ? '1.3.1 Build 240621 Rel.162048' : '1.2.3 Build 230425 Rel.142542'),
      hasEmeterData: options.hasEmeterData ?? model === 'P110',
      hasCurrentPower: options.hasCurrentPower ?? true,
      multipleRequest: options.multipleRequest ?? true,
      klap: options.klap ?? true,
      missingMethodErrorCode: options.missingMethodErrorCode ?? UNKNOWN_METHOD,
      voltageV: options.voltageV ?? 230,
      nickname: options.nickname ?? `${model} emulated`,
      mac: options.mac ?? randomMac(),
      deviceOn: options.deviceOn ?? true,
      timeDiffMin: options.timeDiffMin ?? 60,
      region: options.region ?? 'Europe/Berlin',
      host: options.host ?? '127.0.0.1',
      port: options.port ?? 0,
      sessionTimeoutS: options.sessionTimeoutS ?? 86_400,
    };
    this.#now = options.now ?? Date.now;
    this.#authHash = klapAuthHash(options.username, options.password);
    this.#deviceId = randomBytes(20).toString('hex').toUpperCase();
    this.#meter = new TapoMeter({
      now: this.#now,
      curve: options.powerCurve ?? (() => 0),
      on: this.options.deviceOn,
      timeDiffMin: this.options.timeDiffMin,
    });
  }

  get port(): number {
    return this.#port;
  }

  /** `host:port` as BaluPi's device list takes it. */
  get address(): string {
    return formatHostPort(this.options.host, this.#port);
  }

  get deviceOn(): boolean {
    return this.#meter.on;
  }

  async start(): Promise<number> {
    if (this.#server) return this.#port;
    await this.#listen(this.options.port);
    return this.#port;
  }

  async stop(): Promise<void> {
    this.#releaseHeld();
    await this.#close();
    if (this.#udp) {
      const udp = this.#udp;
      this.#udp = null;
      await new Promise<void>((resolve) => udp.close(() => resolve()));
    }
  }

  /** Offline: the port refuses connections and open ones are cut (a plug unplugged or off the Wi-Fi).
   *  Back online it listens on the same port again and has forgotten its sessions, like a rebooted plug. */
  async setOffline(offline: boolean): Promise<void> {
    if (offline === this.#offline) return;
    this.#offline = offline;
    if (offline) {
      this.#releaseHeld();
      await this.#close();
      this.#sessions.clear();
    } else {
      await this.#listen(this.#port);
    }
  }

  /** Hanging: connections are accepted but requests never answered (a plug whose Wi-Fi stalls). */
  setHanging(hanging: boolean): void {
    this.#hanging = hanging;
    if (!hanging) this.#releaseHeld();
  }

  /** The next `n` encrypted requests answer with this device error code instead of executing. */
  failNext(n: number, errorCode = -1): void {
    this.#failures = { left: n, code: errorCode };
  }

  /** Forget every session, as the firmware does after its timeout or a reboot; the next request gets 403. */
  expireSessions(): void {
    this.#sessions.clear();
  }

  setOn(on: boolean): void {
    this.#meter.setOn(on);
  }

  setPowerCurve(curve: (tMs: number) => number): void {
    this.#meter.setCurve(curve);
  }

  /** Starts answering the discovery probe on a loopback UDP port; returns the port. */
  async startDiscovery(port = 0): Promise<number> {
    const udp = createSocket('udp4');
    this.#udp = udp;
    udp.on('message', (msg, rinfo) => {
      // The fixed probe is 16 bytes starting with version 2; anything else is not for us.
      if (msg.length < 16 || msg[0] !== 0x02) return;
      this.counters.discoveryProbes++;
      udp.send(this.discoveryReply(), rinfo.port, rinfo.address);
    });
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind(port, this.options.host, () => resolve());
    });
    return udp.address().port;
  }

  /** The answer to the discovery probe, naming this plug's model, MAC, transport and HTTP port. */
  discoveryReply(): Buffer {
    return discoveryFrame({
      error_code: 0,
      result: {
        device_id: this.#deviceId.slice(0, 32),
        device_model: `${this.options.model}(EU)`,
        device_type: 'SMART.TAPOPLUG',
        factory_default: false,
        ip: this.options.host,
        is_support_iot_cloud: true,
        mac: this.options.mac,
        mgt_encrypt_schm: {
          encrypt_type: this.options.klap ? 'KLAP' : 'AES',
          http_port: this.#port,
          is_support_https: false,
          lv: 2,
        },
        obd_src: 'tplink',
        owner: createHash('md5').update(this.options.username).digest('hex').toUpperCase(),
        protocol_version: 1,
      },
    });
  }

  // ---- state the methods report ---------------------------------------------------------------------------------

  #deviceInfo(): Record<string, unknown> {
    const newerFw = !this.options.firmware.startsWith('1.0.');
    return {
      device_id: this.#deviceId,
      fw_ver: this.options.firmware,
      hw_ver: '1.0',
      type: 'SMART.TAPOPLUG',
      model: this.options.model,
      mac: this.options.mac,
      hw_id: '00000000000000000000000000000000',
      fw_id: '00000000000000000000000000000000',
      oem_id: '00000000000000000000000000000000',
      ip: this.options.host,
      time_diff: this.options.timeDiffMin,
      ssid: b64('BaluNet'),
      rssi: -48,
      signal_level: 3,
      latitude: 0,
      longitude: 0,
      lang: 'en_US',
      avatar: 'plug',
      region: this.options.region,
      specs: '',
      nickname: b64(this.options.nickname),
      has_set_location_info: false,
      device_on: this.#meter.on,
      on_time: this.#meter.onTimeS,
      default_states: { state: {}, type: 'last_states' },
      overheated: false,
      power_protection_status: 'normal',
      ...(newerFw ? { overcurrent_status: 'normal', auto_off_status: 'off', auto_off_remain_time: 0 } : {}),
    };
  }

  #execute(method: string, params: unknown): Answer {
    this.counters.methods[method] = (this.counters.methods[method] ?? 0) + 1;
    const missing: Answer = { error_code: this.options.missingMethodErrorCode };
    switch (method) {
      case 'get_device_info':
        return { error_code: 0, result: this.#deviceInfo() };
      case 'get_energy_usage':
        return { error_code: 0, result: this.#meter.energyUsage() };
      case 'get_current_power':
        // Firmware reports whole watts here (a P115 drawing 8962 mW answered 9).
        return this.options.hasCurrentPower
          ? { error_code: 0, result: { current_power: Math.round(this.#meter.powerW()) } }
          : missing;
      case 'get_emeter_data':
        return this.options.hasEmeterData ? { error_code: 0, result: this.#meter.emeterData(this.options.voltageV) } : missing;
      case 'component_nego':
        return {
          error_code: 0,
          result: {
            component_list: [
              { id: 'device', ver_code: 2 },
              { id: 'energy_monitoring', ver_code: this.options.hasCurrentPower ? 2 : 1 },
            ],
          },
        };
      case 'set_device_info': {
        const p = (params ?? {}) as { device_on?: unknown; nickname?: unknown };
        if (p.device_on !== undefined) {
          if (typeof p.device_on !== 'boolean') return { error_code: -1008 };
          this.setOn(p.device_on);
        }
        if (typeof p.nickname === 'string') this.options.nickname = Buffer.from(p.nickname, 'base64').toString('utf8');
        return { error_code: 0 };
      }
      case 'multipleRequest': {
        if (!this.options.multipleRequest) return missing;
        const reqs = (params as { requests?: unknown } | undefined)?.requests;
        if (!Array.isArray(reqs)) return { error_code: -1008 };
        const responses: Array<Answer & { method: string }> = [];
        for (const r of reqs as Array<{ method?: unknown; params?: unknown }>) {
          const m = typeof r.method === 'string' ? r.method : '';
          const a = m === 'multipleRequest' ? { error_code: -1008 } : this.#execute(m, r.params);
          responses.push({ method: m, ...a });
          if (a.error_code !== 0) break; // firmware stops at the first failing method
        }
        return { error_code: 0, result: { responses } };
      }
      default:
        return missing;
    }
  }

  // ---- HTTP / KLAP ------------------------------------------------------------------------------------------------

  async #listen(port: number): Promise<void> {
    const server = createServer((req, res) => void this.#handle(req, res));
    server.keepAliveTimeout = 5_000;
    server.on('connection', (s) => {
      this.#sockets.add(s);
      s.on('close', () => this.#sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, this.options.host, () => resolve());
    });
    const addr = server.address();
    if (addr && typeof addr === 'object') this.#port = addr.port;
    this.#server = server;
  }

  async #close(): Promise<void> {
    const server = this.#server;
    this.#server = null;
    if (!server) return;
    for (const s of this.#sockets) s.destroy();
    this.#sockets.clear();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  #releaseHeld(): void {
    for (const res of this.#held) res.destroy();
    this.#held.clear();
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let body: Buffer;
    try {
      body = await readBody(req);
    } catch {
      res.destroy();
      return;
    }
    if (this.#hanging) {
      this.#held.add(res);
      res.on('close', () => this.#held.delete(res));
      return;
    }
    const url = new URL(req.url ?? '/', 'http://plug');
    if (req.method !== 'POST') return send(res, 405);
    switch (url.pathname) {
      case '/app/handshake1':
        return this.options.klap ? this.#handshake1(body, res) : send(res, 404);
      case '/app/handshake2':
        return this.options.klap ? this.#handshake2(req, body, res) : send(res, 404);
      case '/app/request':
        return this.options.klap ? this.#request(req, url, body, res) : send(res, 404);
      case '/app':
        // The legacy RSA/AES securePassthrough handshake is not emulated: answer it as a failed handshake.
        this.counters.legacyHandshakes++;
        return send(res, 200, Buffer.from(JSON.stringify({ error_code: -1010 })), 'application/json');
      default:
        return send(res, 404);
    }
  }

  #handshake1(body: Buffer, res: ServerResponse): void {
    if (body.length !== KLAP_SEED_BYTES) return send(res, 400);
    this.counters.handshake1++;
    const remoteSeed = randomBytes(KLAP_SEED_BYTES);
    const authHash = this.rejectCredentials ? klapAuthHash(`other-${this.options.username}`, 'x') : this.#authHash;
    const id = randomBytes(16).toString('hex').toUpperCase();
    this.#sessions.set(id, {
      localSeed: body,
      remoteSeed,
      keys: klapDeriveKeys(body, remoteSeed, authHash),
      confirmed: false,
      expiresAt: this.#now() + this.options.sessionTimeoutS * 1000,
    });
    while (this.#sessions.size > MAX_SESSIONS) {
      const oldest = this.#sessions.keys().next().value;
      if (oldest === undefined) break;
      this.#sessions.delete(oldest);
    }
    res.setHeader('Set-Cookie', [`TP_SESSIONID=${id};TIMEOUT=${this.options.sessionTimeoutS}`]);
    send(res, 200, Buffer.concat([remoteSeed, klapServerProof(body, remoteSeed, authHash)]));
  }

  #session(req: IncomingMessage): [string, Session] | null {
    const m = /(?:^|;\s*)TP_SESSIONID=([0-9A-Fa-f]+)/.exec(req.headers.cookie ?? '');
    const id = m?.[1];
    const s = id === undefined ? undefined : this.#sessions.get(id);
    if (id === undefined || !s) return null;
    if (s.expiresAt <= this.#now()) {
      this.#sessions.delete(id);
      return null;
    }
    return [id, s];
  }

  #forbid(res: ServerResponse): void {
    this.counters.forbidden++;
    send(res, 403);
  }

  #handshake2(req: IncomingMessage, body: Buffer, res: ServerResponse): void {
    const found = this.#session(req);
    if (!found) return this.#forbid(res);
    const [id, s] = found;
    this.counters.handshake2++;
    const authHash = this.rejectCredentials ? null : this.#authHash;
    if (!authHash || !body.equals(klapClientProof(s.localSeed, s.remoteSeed, authHash))) {
      this.#sessions.delete(id);
      return this.#forbid(res);
    }
    s.confirmed = true;
    send(res, 200);
  }

  #request(req: IncomingMessage, url: URL, body: Buffer, res: ServerResponse): void {
    const found = this.#session(req);
    const seqText = url.searchParams.get('seq');
    const seq = seqText === null ? NaN : Number(seqText);
    if (!found || !found[1].confirmed || !Number.isInteger(seq)) return this.#forbid(res);
    const keys = found[1].keys;
    if (!klapVerify(keys, seq, body)) return this.#forbid(res);
    let request: { method?: unknown; params?: unknown };
    try {
      request = JSON.parse(klapOpen(keys, seq, body).toString('utf8')) as typeof request;
    } catch {
      return send(res, 200, klapSeal(keys, seq, Buffer.from(JSON.stringify({ error_code: -1003 }))));
    }
    this.counters.requests++;
    let answer: Answer;
    if (this.#failures.left > 0) {
      this.#failures.left--;
      answer = { error_code: this.#failures.code };
    } else {
      answer = this.#execute(typeof request.method === 'string' ? request.method : '', request.params);
    }
    send(res, 200, klapSeal(keys, seq, Buffer.from(JSON.stringify(answer))));
  }
}

function send(res: ServerResponse, status: number, body?: Buffer, type = 'application/octet-stream'): void {
  res.statusCode = status;
  if (body) {
    res.setHeader('Content-Type', type);
    res.setHeader('Content-Length', body.length);
    res.end(body);
  } else {
    res.setHeader('Content-Length', 0);
    res.end();
  }
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new Error('body too large'));
        req.destroy();
        return;
      }
      parts.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(parts)));
    req.on('error', reject);
  });
}

function randomMac(): string {
  const b = randomBytes(3);
  return ['9C', '53', '22', ...[...b].map((x) => x.toString(16).padStart(2, '0').toUpperCase())].join('-');
}
