// Parsing of plug addresses as the operator writes them: `host[:port]`, comma-separated in BALUPI_TAPO_DEVICES,
// one at a time in the add-device API. Pure functions; every rejection names the entry and says what is wrong.

import { isIPv4, isIPv6 } from 'node:net';

export const DEFAULT_PLUG_PORT = 80;

export interface PlugAddress {
  host: string; // IPv6 without brackets
  port: number;
}

export class DeviceListError extends Error {
  readonly code = 'DEVICE_LIST_INVALID';
  /** The offending entry as written, and its 1-based position in the list (0 for a single address). */
  readonly entry: string;
  readonly position: number;

  constructor(entry: string, position: number, reason: string) {
    super(position > 0 ? `Plug list entry ${position} ("${entry}"): ${reason}` : `Plug address "${entry}": ${reason}`);
    this.name = 'DeviceListError';
    this.entry = entry;
    this.position = position;
  }
}

const HOST_LABEL = /^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$/;

/** Parses one `host[:port]`: IPv4, a DNS name, or an IPv6 literal (bracketed when a port follows: `[::1]:8080`). */
export function parseDeviceAddress(text: string, position = 0, defaultPort = DEFAULT_PLUG_PORT): PlugAddress {
  const entry = text.trim();
  const fail = (reason: string): never => {
    throw new DeviceListError(entry, position, reason);
  };
  if (entry === '') fail('empty address');
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(entry)) fail('write host[:port] without a scheme such as http://');
  if (/[\s/?#@]/.test(entry)) fail('an address has no spaces, paths or credentials; write host[:port]');

  let host: string;
  let portText: string | null = null;
  if (entry.startsWith('[')) {
    const close = entry.indexOf(']');
    if (close < 0) fail('missing "]" after the IPv6 address');
    host = entry.slice(1, close);
    const rest = entry.slice(close + 1);
    if (rest !== '') {
      if (!rest.startsWith(':')) fail('expected ":port" after "]"');
      portText = rest.slice(1);
    }
    if (!isIPv6(host)) fail(`"${host}" is not an IPv6 address`);
  } else if (entry.indexOf(':') !== entry.lastIndexOf(':')) {
    // Several colons and no brackets: a bare IPv6 address, which cannot carry a port.
    host = entry;
    if (!isIPv6(host)) fail('not a valid IPv6 address (put IPv6 addresses in brackets when adding a port: [::1]:8080)');
  } else {
    const colon = entry.indexOf(':');
    host = colon < 0 ? entry : entry.slice(0, colon);
    if (colon >= 0) portText = entry.slice(colon + 1);
    if (host === '') fail('missing host before ":"');
    if (/^[0-9.]+$/.test(host)) {
      if (!isIPv4(host)) fail(`"${host}" is not a valid IPv4 address`);
    } else if (host.length > 253 || !host.split('.').every((l) => HOST_LABEL.test(l))) {
      fail(`"${host}" is not a valid host name`);
    }
  }

  let port = defaultPort;
  if (portText !== null) {
    if (!/^\d{1,5}$/.test(portText)) fail(`port "${portText}" is not a number`);
    port = Number(portText);
    if (port < 1 || port > 65535) fail(`port ${port} is outside 1-65535`);
  }
  return { host: host.toLowerCase(), port };
}

/** Parses a comma-separated list of `host[:port]`. Blank text is an empty list; an empty entry or a duplicate is an
 *  error, because either usually means a typo in the configuration. */
export function parseDeviceList(text: string): PlugAddress[] {
  if (text.trim() === '') return [];
  const seen = new Map<string, number>();
  return text.split(',').map((raw, i) => {
    const position = i + 1;
    if (raw.trim() === '') throw new DeviceListError(raw.trim(), position, 'empty entry (two commas in a row, or a trailing comma?)');
    const address = parseDeviceAddress(raw, position);
    const key = `${address.host}|${address.port}`;
    const first = seen.get(key);
    if (first !== undefined) throw new DeviceListError(raw.trim(), position, `same plug as entry ${first}`);
    seen.set(key, position);
    return address;
  });
}
