// TP-Link "SMART" discovery: a fixed 16-byte probe to UDP 20002; each Tapo device answers with a 16-byte binary header
// and a JSON body naming its model, MAC, transport (KLAP/AES) and HTTP port. This is the probe python-kasa sent for
// years and that current P110/P115 firmware still answers; python-kasa's newer probe (carrying an RSA key, for
// cameras that encrypt their answer) is not needed for plugs and is not sent. The target address is a parameter:
// the daemon passes the broadcast address, tests pass a loopback responder — this module never picks one itself.

import { openBroadcastSocket } from '../udp-socket.ts';
import { parseDeviceAddress } from './device-list.ts';
import { normaliseMac } from './tapo-client.ts';

export const DISCOVERY_PORT = 20002;
export const DEFAULT_DISCOVERY_ADDRESS = `255.255.255.255:${DISCOVERY_PORT}`;
export const DISCOVERY_PROBE = Buffer.from('020000010000000000000000463cb5d3', 'hex');
const HEADER_BYTES = 16;

export interface DiscoveredPlug {
  /** Address the answer came from (what the plug is reached at), and its HTTP port. */
  host: string;
  port: number;
  mac: string | null;
  /** e.g. P110(EU) as advertised; get_device_info later gives the bare model. */
  model: string | null;
  deviceType: string;
  deviceId: string | null;
  encryptType: 'KLAP' | 'AES' | null;
}

export interface DiscoveryOptions {
  /** `host[:port]` to send the probe to; default port 20002. */
  address: string;
  /** How long to listen for answers, ms (default 3000). */
  timeoutMs?: number;
  /** Probes sent (UDP may drop one), spread over the first half of the window. Default 3. */
  probes?: number;
  signal?: AbortSignal;
}

/** Sends the probe and collects the answers until the window closes. Answers that do not parse are ignored. */
export async function discoverPlugs(options: DiscoveryOptions): Promise<DiscoveredPlug[]> {
  const target = parseDeviceAddress(options.address, 0, DISCOVERY_PORT);
  const timeoutMs = options.timeoutMs ?? 3_000;
  const probes = Math.max(1, options.probes ?? 3);
  const socket = await openBroadcastSocket(target.host);
  const found = new Map<string, DiscoveredPlug>();
  const timers: NodeJS.Timeout[] = [];

  try {
    socket.on('message', (msg, rinfo) => {
      const plug = parseDiscoveryAnswer(msg, rinfo.address);
      if (plug) found.set(plug.mac ?? `${plug.host}|${plug.port}`, plug);
    });

    await new Promise<void>((resolve, reject) => {
      const done = () => resolve();
      const abort = () => reject(options.signal?.reason ?? new Error('discovery aborted'));
      if (options.signal?.aborted) return abort();
      options.signal?.addEventListener('abort', abort, { once: true });
      socket.on('error', reject);
      const step = probes > 1 ? timeoutMs / 2 / (probes - 1) : 0;
      for (let i = 0; i < probes; i++) {
        timers.push(setTimeout(() => socket.send(DISCOVERY_PROBE, target.port, target.host), i * step));
      }
      timers.push(setTimeout(done, timeoutMs));
    });
  } finally {
    for (const t of timers) clearTimeout(t);
    await new Promise<void>((resolve) => socket.close(() => resolve()));
  }
  return [...found.values()];
}

/** Parses one answer datagram; null when it is not a well-formed TP-Link SMART discovery answer. */
export function parseDiscoveryAnswer(msg: Buffer, fromHost: string): DiscoveredPlug | null {
  if (msg.length <= HEADER_BYTES || msg[0] !== 0x02) return null;
  let body: unknown;
  try {
    body = JSON.parse(msg.subarray(HEADER_BYTES).toString('utf8'));
  } catch {
    return null;
  }
  const result = (body as { result?: unknown } | null)?.result;
  if (!result || typeof result !== 'object') return null;
  const r = result as Record<string, unknown>;
  const deviceType = typeof r.device_type === 'string' ? r.device_type : null;
  if (!deviceType?.startsWith('SMART.')) return null;
  const schm = (r.mgt_encrypt_schm && typeof r.mgt_encrypt_schm === 'object' ? r.mgt_encrypt_schm : {}) as Record<string, unknown>;
  const port = typeof schm.http_port === 'number' && Number.isInteger(schm.http_port) && schm.http_port > 0 && schm.http_port < 65536 ? schm.http_port : 80;
  const enc = schm.encrypt_type === 'KLAP' || schm.encrypt_type === 'AES' ? schm.encrypt_type : null;
  return {
    host: fromHost,
    port,
    mac: normaliseMac(typeof r.mac === 'string' ? r.mac : null),
    model: typeof r.device_model === 'string' ? r.device_model : null,
    deviceType,
    deviceId: typeof r.device_id === 'string' ? r.device_id : null,
    encryptType: enc,
  };
}
