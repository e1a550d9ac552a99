// Wake-on-LAN: the magic packet (6 × 0xFF, then the MAC 16 times: 102 bytes) as one UDP datagram. The target
// address is always a parameter — the daemon passes BALUPI_WOL_ADDRESS (255.255.255.255:9 by default), tests a
// listener on 127.0.0.1 — this module never picks one itself.
import type { Socket } from 'node:dgram';
import { isIP } from 'node:net';
import { openBroadcastSocket } from '../udp-socket.ts';

export class WolError extends Error {
  override name = 'WolError';
  readonly code: 'invalid_argument' | 'wol_send_failed';
  constructor(code: WolError['code'], message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}

/**
 * Accepts `aa:bb:cc:dd:ee:ff`, `AA-BB-CC-DD-EE-FF`, `aabb.ccdd.eeff` and `aabbccddeeff`; one separator style per
 * address. Returns the canonical lower-case colon form. Rejects group (multicast) addresses: a NIC never has one.
 */
export function parseMac(raw: string): string {
  const s = raw.trim();
  const m =
    /^([0-9a-f]{2})([:-])([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})$/i.exec(s) ??
    /^([0-9a-f]{2})([0-9a-f]{2})\.?([0-9a-f]{2})([0-9a-f]{2})\.?([0-9a-f]{2})([0-9a-f]{2})$/i.exec(s);
  if (!m) throw new WolError('invalid_argument', `not a MAC address: ${JSON.stringify(raw)} (expected e.g. aa:bb:cc:dd:ee:ff)`);
  const dotted = s.includes('.');
  if (dotted && !/^[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}$/i.test(s)) {
    throw new WolError('invalid_argument', `not a MAC address: ${JSON.stringify(raw)} (dots go between groups of four)`);
  }
  const hex = s.replace(/[:.-]/g, '').toLowerCase();
  if (parseInt(hex.slice(0, 2), 16) & 1) throw new WolError('invalid_argument', `${raw} is a multicast address, not a network card's`);
  return hex.match(/../g)!.join(':');
}

export function magicPacket(mac: string): Buffer {
  const bytes = Buffer.from(parseMac(mac).replace(/:/g, ''), 'hex');
  const packet = Buffer.alloc(6 + 16 * 6, 0xff);
  for (let i = 0; i < 16; i++) bytes.copy(packet, 6 + i * 6);
  return packet;
}

/** `host:port` or `[v6]:port`; the port defaults to 9 (discard), the usual WoL port. */
export function parseWolAddress(raw: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-f:.]+)\]|([^:\s[\]]+))(?::(\d{1,5}))?$/i.exec(raw.trim());
  const host = m?.[1] ?? m?.[2];
  const port = m?.[3] === undefined ? 9 : Number(m[3]);
  if (!m || !host || isIP(host) === 0 || port < 1 || port > 65535) {
    throw new WolError('invalid_argument', `not an IP address and port: ${JSON.stringify(raw)} (e.g. 255.255.255.255:9 or [ff02::1]:9)`);
  }
  return { host, port };
}

/** Sends one magic packet for `mac` to `address` (`host:port`). */
export async function sendMagicPacket(mac: string, address: string): Promise<void> {
  const packet = magicPacket(mac);
  const { host, port } = parseWolAddress(address);
  let socket: Socket | null = null;
  try {
    socket = await openBroadcastSocket(host);
    const s = socket;
    await new Promise<void>((resolve, reject) => s.send(packet, port, host, (err) => (err ? reject(err) : resolve())));
  } catch (err) {
    throw new WolError('wol_send_failed', `Failed to send WoL packet: ${(err as Error).message}`, { cause: err });
  } finally {
    if (socket) await new Promise<void>((resolve) => socket!.close(() => resolve()));
  }
}
