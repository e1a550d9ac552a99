// PlugClient for TP-Link Tapo P110/P115.
//
// Why our own KLAP session instead of tp-link-tapo-connect's for the main path (decided after reading its source,
// v2.0.15): its device object only sends get_device_info, get_energy_usage and set_device_info; the function that
// could send get_current_power / get_emeter_data lives in a closure of klap-transport.js together with the session
// keys and sequence number, so "reusing its session" for the extra methods is impossible — a second module would
// need a second handshake and a second session on the plug for every poll. The library also has no request timeout
// (a hung plug would hang a poll forever), never re-handshakes after a 403, shares one sequence counter between
// concurrent calls (answers then fail to decrypt), and on wrong credentials falls back to the legacy protocol, so
// the user sees the legacy handshake's error instead of "wrong password". KLAP itself is ~150 lines over
// node:crypto (klap-crypto.ts, klap-transport.ts), so this client speaks it directly, batches a poll into one
// multipleRequest, and keeps the library for what it does well: the legacy RSA/AES "securePassthrough" login of
// firmware that answers 404 to KLAP's handshake1. That path reaches only the three methods the library exposes
// (power then comes from get_energy_usage in mW). Only the library's transport module is imported — never its
// cloud or discovery helpers, which scan the LAN.

import { KlapTransport, KlapUnsupportedError } from './klap-transport.ts';
import {
  PlugError,
  formatHostPort,
  type PlugCallOptions,
  type PlugClient,
  type PlugClientFactory,
  type PlugCredentials,
  type PlugDeviceInfo,
  type PlugReadingSample,
} from './plug-client.ts';
import type { PlugDevice } from './types.ts';

export interface TapoClientOptions {
  /** Deadline of one HTTP exchange with the plug, ms (default 5000). */
  timeoutMs?: number;
  now?: () => number;
  /** Try the library's legacy AES login when the plug does not speak KLAP (default true). */
  legacyFallback?: boolean;
}

interface Answer {
  error_code: number;
  result?: unknown;
}

type Obj = Record<string, unknown>;

const UNKNOWN_METHOD = -1002;
// Codes firmware has been seen to answer for a method (or a batch) it does not implement.
const UNSUPPORTED_CODES = new Set([-1, UNKNOWN_METHOD, -1008]);

/** The library's legacy device object, reduced to what it exposes. */
interface LegacyDevice {
  getDeviceInfo(): Promise<Obj>;
  getEnergyUsage(): Promise<Obj>;
  turnOn(): Promise<void>;
  turnOff(): Promise<void>;
}

export class TapoPlugClient implements PlugClient {
  readonly target: string;
  #klap: KlapTransport;
  #creds: PlugCredentials;
  #opts: Required<TapoClientOptions>;
  #legacy: { device: Promise<LegacyDevice> | null } | null = null;
  #closed = false;
  // What this plug's firmware answers; null = not known yet. Re-learnt when the firmware version changes.
  #caps: { batch: boolean | null; currentPower: boolean | null; emeter: boolean | null; firmware: string | null } = {
    batch: null,
    currentPower: null,
    emeter: null,
    firmware: null,
  };

  constructor(device: Pick<PlugDevice, 'host' | 'port'>, credentials: PlugCredentials, options: TapoClientOptions = {}) {
    this.#opts = {
      timeoutMs: options.timeoutMs ?? 5_000,
      now: options.now ?? Date.now,
      legacyFallback: options.legacyFallback ?? true,
    };
    this.#creds = credentials;
    this.target = formatHostPort(device.host, device.port);
    this.#klap = new KlapTransport({
      host: device.host,
      port: device.port,
      username: credentials.username,
      password: credentials.password,
      timeoutMs: this.#opts.timeoutMs,
      now: this.#opts.now,
    });
  }

  /** Completed KLAP handshakes (session reuse makes this stay at 1 across polls). */
  get handshakes(): number {
    return this.#klap.handshakes;
  }

  async getDeviceInfo(options: PlugCallOptions = {}): Promise<PlugDeviceInfo> {
    const info = this.#result('get_device_info', await this.#call('get_device_info', undefined, options.signal));
    const parsed = parseDeviceInfo(info, this.target);
    this.#noteFirmware(parsed.firmware);
    return parsed;
  }

  async getReading(options: PlugCallOptions = {}): Promise<PlugReadingSample> {
    const methods = ['get_device_info', 'get_energy_usage'];
    // Order matters: firmware stops a batch at the first failing method, so the optional ones go last, and
    // get_current_power before get_emeter_data so a plug lacking the latter still reports watts from the former.
    if (this.#caps.currentPower !== false) methods.push('get_current_power');
    if (this.#caps.emeter !== false) methods.push('get_emeter_data');
    const answers = await this.#batch(methods, options.signal);
    const at = this.#opts.now();

    const info = this.#result('get_device_info', answers.get('get_device_info'));
    const usage = this.#result('get_energy_usage', answers.get('get_energy_usage'));
    const firmware = typeof info.fw_ver === 'string' ? info.fw_ver : null;
    this.#noteFirmware(firmware);
    const power = this.#optional('currentPower', answers.get('get_current_power'));
    const emeter = this.#optional('emeter', answers.get('get_emeter_data'));

    // Watts, in python-kasa's order of precedence: emeter mW, then get_current_power W, then energy_usage mW.
    const emeterMw = num(emeter?.power_mw);
    const currentW = num(power?.current_power);
    const usageMw = num(usage.current_power);
    const powerW = emeterMw !== null ? emeterMw / 1000 : currentW !== null ? currentW : usageMw !== null ? usageMw / 1000 : null;
    if (powerW === null) throw new PlugError('PLUG_PROTOCOL', this.target, `Plug ${this.target} reported no power value`);
    const mv = num(emeter?.voltage_mv);
    const ma = num(emeter?.current_ma);
    return {
      at,
      powerW,
      voltageV: mv !== null ? mv / 1000 : null,
      currentA: ma !== null ? ma / 1000 : null,
      todayWh: num(usage.today_energy),
      monthWh: num(usage.month_energy),
      deviceOn: info.device_on === true,
    };
  }

  async setOn(on: boolean, options: PlugCallOptions = {}): Promise<void> {
    const answer = await this.#call('set_device_info', { device_on: on }, options.signal);
    if (answer.error_code !== 0) throw this.#deviceError('set_device_info', answer.error_code);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#klap.close();
    this.#legacy = null;
  }

  #noteFirmware(firmware: string | null): void {
    if (firmware === null || firmware === this.#caps.firmware) return;
    if (this.#caps.firmware === null) {
      this.#caps.firmware = firmware;
      return;
    }
    // A firmware update can add (or remove) methods: learn them again.
    this.#caps = { batch: null, currentPower: null, emeter: null, firmware };
  }

  #optional(cap: 'currentPower' | 'emeter', answer: Answer | undefined): Obj | null {
    if (answer === undefined) return null; // not executed this time (batch stopped earlier): still unknown
    if (answer.error_code !== 0 || !isObj(answer.result)) {
      this.#caps[cap] = false;
      return null;
    }
    this.#caps[cap] = true;
    return answer.result;
  }

  #result(method: string, answer: Answer | undefined): Obj {
    if (!answer) throw new PlugError('PLUG_PROTOCOL', this.target, `Plug ${this.target} did not answer ${method}`);
    if (answer.error_code !== 0) throw this.#deviceError(method, answer.error_code);
    if (!isObj(answer.result)) throw new PlugError('PLUG_PROTOCOL', this.target, `Plug ${this.target} sent no result for ${method}`);
    return answer.result;
  }

  #deviceError(method: string, code: number): PlugError {
    return new PlugError('PLUG_DEVICE', this.target, `Plug ${this.target} answered ${method} with error ${code}`, {
      deviceCode: code,
    });
  }

  async #batch(methods: string[], signal?: AbortSignal): Promise<Map<string, Answer>> {
    const answers = new Map<string, Answer>();
    if (this.#caps.batch !== false && this.#legacy === null) {
      const requests = methods.map((method) => ({ method }));
      const top = await this.#call('multipleRequest', { requests }, signal);
      if (top.error_code === 0) {
        const list = isObj(top.result) && Array.isArray(top.result.responses) ? top.result.responses : null;
        if (!list) throw new PlugError('PLUG_PROTOCOL', this.target, `Plug ${this.target} sent a batch answer without responses`);
        for (const r of list) {
          if (isObj(r) && typeof r.method === 'string' && typeof r.error_code === 'number') {
            answers.set(r.method, { error_code: r.error_code, result: r.result });
          }
        }
        this.#caps.batch = true;
        return answers;
      }
      if (!UNSUPPORTED_CODES.has(top.error_code)) throw this.#deviceError('multipleRequest', top.error_code);
      // Maybe no batching on this firmware: ask one by one, and stop batching if that works.
      const singles = await this.#singles(methods, signal);
      if (singles.get('get_device_info')?.error_code === 0) this.#caps.batch = false;
      return singles;
    }
    return this.#singles(methods, signal);
  }

  async #singles(methods: string[], signal?: AbortSignal): Promise<Map<string, Answer>> {
    const answers = new Map<string, Answer>();
    for (const method of methods) {
      const a = await this.#call(method, undefined, signal);
      answers.set(method, a);
      if (a.error_code !== 0 && (method === 'get_device_info' || method === 'get_energy_usage')) break;
    }
    return answers;
  }

  async #call(method: string, params: unknown, signal?: AbortSignal): Promise<Answer> {
    if (this.#closed) throw new PlugError('PLUG_CLOSED', this.target, `Client for plug ${this.target} is closed`);
    if (this.#legacy) return this.#legacyCall(method, params, signal);
    try {
      return await this.#klap.send(params === undefined ? { method } : { method, params }, signal);
    } catch (err) {
      if (!(err instanceof KlapUnsupportedError) || !this.#opts.legacyFallback) throw err;
      this.#legacy = { device: null };
      this.#caps.batch = false;
      return this.#legacyCall(method, params, signal);
    }
  }

  // ---- legacy AES path through tp-link-tapo-connect ---------------------------------------------------------------

  async #legacyCall(method: string, params: unknown, signal?: AbortSignal): Promise<Answer> {
    const legacy = this.#legacy;
    if (!legacy) throw new PlugError('PLUG_CLOSED', this.target, `Client for plug ${this.target} is closed`);
    const run = async (): Promise<Answer> => {
      legacy.device ??= this.#legacyLogin();
      const dev = await legacy.device;
      switch (method) {
        case 'get_device_info': {
          const info = await dev.getDeviceInfo();
          // The library already decoded nickname/ssid; re-encode so one parser handles both paths.
          return { error_code: 0, result: { ...info, nickname: Buffer.from(String(info.nickname ?? ''), 'utf8').toString('base64') } };
        }
        case 'get_energy_usage':
          return { error_code: 0, result: await dev.getEnergyUsage() };
        case 'set_device_info':
          await ((params as { device_on?: boolean }).device_on ? dev.turnOn() : dev.turnOff());
          return { error_code: 0 };
        default:
          return { error_code: UNKNOWN_METHOD };
      }
    };
    try {
      return await withDeadline(run(), this.#opts.timeoutMs, signal, this.target);
    } catch (err) {
      legacy.device = null; // log in afresh next time
      throw toPlugError(err, this.target);
    }
  }

  async #legacyLogin(): Promise<LegacyDevice> {
    const mod = await import('tp-link-tapo-connect/dist/secure-passthrough-transport.js');
    return (await mod.loginDeviceByIp(this.#creds.username, this.#creds.password, this.target)) as unknown as LegacyDevice;
  }
}

export function createTapoClient(
  device: Pick<PlugDevice, 'host' | 'port'>,
  credentials: PlugCredentials,
  options?: TapoClientOptions,
): TapoPlugClient {
  return new TapoPlugClient(device, credentials, options);
}

/** A PlugClientFactory for the poller with shared options. */
export function tapoClientFactory(options?: TapoClientOptions): PlugClientFactory {
  return (device, credentials) => new TapoPlugClient(device, credentials, options);
}

export function parseDeviceInfo(info: Obj, target: string): PlugDeviceInfo {
  const str = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v : null);
  const model = str(info.model);
  const firmware = str(info.fw_ver);
  if (!model || !firmware) throw new PlugError('PLUG_PROTOCOL', target, `Plug ${target} sent device info without model/firmware`);
  return {
    deviceId: str(info.device_id) ?? '',
    model,
    firmware,
    hardware: str(info.hw_ver),
    mac: normaliseMac(str(info.mac)),
    nickname: decodeBase64Text(str(info.nickname)),
    deviceOn: info.device_on === true,
    onTimeS: num(info.on_time),
    rssi: num(info.rssi),
  };
}

/** Plugs send their nickname base64-encoded (UTF-8 inside). Anything that is not valid base64 is kept as sent. */
export function decodeBase64Text(value: string | null): string {
  if (!value) return '';
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(value) || value.length % 4 !== 0) return value;
  const text = Buffer.from(value, 'base64').toString('utf8');
  return text.includes('\uFFFD') ? value : text;
}

export function normaliseMac(mac: string | null): string | null {
  if (!mac) return null;
  const hex = mac.replace(/[-:.]/g, '').toUpperCase();
  if (!/^[0-9A-F]{12}$/.test(hex)) return null;
  return hex.match(/../g)!.join(':');
}

function num(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function withDeadline<T>(p: Promise<T>, ms: number, signal: AbortSignal | undefined, target: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const fail = () => reject(new PlugError('PLUG_TIMEOUT', target, `Plug ${target} did not answer within ${ms} ms`));
    const timer = setTimeout(fail, ms);
    signal?.addEventListener('abort', fail, { once: true });
    p.then(resolve, reject).finally(() => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', fail);
    });
  });
}

function toPlugError(err: unknown, target: string): PlugError {
  if (err instanceof PlugError) return err;
  const message = err instanceof Error ? err.message : String(err);
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && /^E[A-Z]+/.test(code)) {
    return new PlugError('PLUG_UNREACHABLE', target, `Plug ${target} is unreachable (${code})`, { cause: err });
  }
  if (/credential|password|login/i.test(message)) {
    return new PlugError('PLUG_AUTH', target, `Plug ${target} rejected the Tapo credentials (legacy login: ${message})`, { cause: err });
  }
  return new PlugError('PLUG_PROTOCOL', target, `Plug ${target}: legacy protocol failed (${message})`, { cause: err });
}
