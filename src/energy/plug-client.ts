// The one boundary between BaluPi and a smart plug. The poller, the toggle route and discovery enrichment talk to
// this interface only; the Tapo implementation (tapo-client.ts) and any test double stand behind it.

import type { PlugDevice, PlugReading } from './types.ts';

export interface PlugCredentials {
  /** TP-Link (Tapo app) account e-mail: Tapo plugs authenticate local clients with the cloud account. */
  username: string;
  password: string;
}

/** What a plug says about itself (get_device_info), decoded: nickname is plain text, mac is AA:BB:CC:DD:EE:FF. */
export interface PlugDeviceInfo {
  deviceId: string;
  model: string;
  firmware: string;
  hardware: string | null;
  mac: string | null;
  nickname: string;
  deviceOn: boolean;
  /** Seconds since the relay was switched on (0 when off). */
  onTimeS: number | null;
  rssi: number | null;
}

export type PlugReadingSample = Omit<PlugReading, 'deviceId'>;

export interface PlugCallOptions {
  /** Aborts the call (the poller's per-poll deadline); the client fails with PLUG_TIMEOUT. */
  signal?: AbortSignal;
}

export interface PlugClient {
  getDeviceInfo(options?: PlugCallOptions): Promise<PlugDeviceInfo>;
  getReading(options?: PlugCallOptions): Promise<PlugReadingSample>;
  setOn(on: boolean, options?: PlugCallOptions): Promise<void>;
  /** Aborts calls in flight and forgets the session; later calls fail with PLUG_CLOSED. */
  close(): Promise<void>;
}

export type PlugClientFactory = (device: Pick<PlugDevice, 'host' | 'port'>, credentials: PlugCredentials) => PlugClient;

export type PlugErrorCode =
  /** The plug does not accept these credentials (wrong account, changed password, or a reset plug). */
  | 'PLUG_AUTH'
  /** Connection refused, reset, or no route: the plug is off, unplugged or has another address. */
  | 'PLUG_UNREACHABLE'
  /** No answer in time. */
  | 'PLUG_TIMEOUT'
  /** The plug answered something this client does not understand (not a Tapo plug, unsupported protocol). */
  | 'PLUG_PROTOCOL'
  /** The plug executed the request and reported an error code. */
  | 'PLUG_DEVICE'
  | 'PLUG_CLOSED';

export class PlugError extends Error {
  readonly code: PlugErrorCode;
  /** `host:port` of the plug. */
  readonly target: string;
  /** The firmware's error_code for PLUG_DEVICE, else null. */
  readonly deviceCode: number | null;

  constructor(code: PlugErrorCode, target: string, message: string, options?: { deviceCode?: number; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'PlugError';
    this.code = code;
    this.target = target;
    this.deviceCode = options?.deviceCode ?? null;
  }
}

/** `host:port`, with IPv6 literals bracketed. */
export function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
