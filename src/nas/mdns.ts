// mDNS / DNS-SD with `multicast-dns`: announces this node (e.g. `_balupi._tcp.local` with port and TXT role/version)
// and browses for other services (the NAS's `_baluhost._tcp.local`), reporting what it finds with address, port and
// TXT, and noticing when it goes (goodbye packets, or records not refreshed within their TTL).
//
// Where packets go is configuration, never a guess of this module: `group` is 224.0.0.251:5353 in production;
// tests give a loopback unicast address (127.0.0.x), in which case no multicast option is set on the socket at all
// and every datagram goes to that address only.
import { EventEmitter } from 'node:events';
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import makeMdns from 'multicast-dns';
import type { Answer, Question } from 'dns-packet';
import type { RemoteInfo } from 'node:dgram';
import { systemClock, type Clock, type TimerHandle } from './clock.ts';

export const MDNS_GROUP = { address: '224.0.0.251', port: 5353 } as const;

export interface MdnsAnnouncement {
  /** Service type without `.local`, e.g. `_balupi._tcp`. */
  type: string;
  /** Instance label, e.g. `BaluPi raspberrypi` (dots are replaced: they would split the label). */
  instance: string;
  /** Host label; records name `${host}.local`. */
  host: string;
  port: number;
  txt: Record<string, string>;
  /** A / AAAA records for the host. */
  addresses: string[];
}

export interface MdnsPeer {
  type: string;
  instance: string;
  host: string;
  port: number;
  addresses: string[];
  txt: Record<string, string>;
  expiresAt: number;
}

export interface MdnsOptions {
  group?: { address: string; port: number };
  /** IPv4 address of the interface to use; null: all interfaces. */
  interface?: string | null;
  announce?: MdnsAnnouncement | null;
  /** Service types to look for, e.g. ['_baluhost._tcp']. */
  browse?: string[];
  /** Re-query interval (default 60 s); answers also refresh presence. */
  requeryMs?: number;
  /** Presence lasts at most this long without a refresh, whatever TTL the records carry (default 180 s). */
  maxTtlS?: number;
  clock?: Clock;
}

interface Entry {
  instance: string;
  host: string | null;
  port: number | null;
  txt: Record<string, string>;
  srvExpires: number;
  fallbackAddress: string | null;
}

const lc = (s: string) => s.toLowerCase();
const label = (s: string) => s.replace(/\./g, '-').slice(0, 63);

export function isMulticastAddress(ip: string): boolean {
  if (isIP(ip) === 4) {
    const first = Number(ip.split('.')[0]);
    return first >= 224 && first <= 239;
  }
  return isIP(ip) === 6 && /^ff/i.test(ip);
}

/** Addresses to announce: those of the interface that holds `iface`, or every external address. */
export function localAddresses(iface: string | null): string[] {
  const out: string[] = [];
  for (const addrs of Object.values(networkInterfaces())) {
    if (!addrs) continue;
    if (iface && !addrs.some((a) => a.address === iface)) continue;
    for (const a of addrs) {
      if (a.internal && !iface) continue;
      if (a.family === 'IPv6' && a.scopeid) continue; // link-local needs a zone: useless in an AAAA record
      out.push(a.address);
    }
  }
  return out;
}

export class MdnsPresence extends EventEmitter<{ change: [type: string, peers: MdnsPeer[]]; warning: [Error] }> {
  readonly #opts: Required<Omit<MdnsOptions, 'announce' | 'interface'>> & { announce: MdnsAnnouncement | null; interface: string | null };
  readonly #clock: Clock;
  #mdns: ReturnType<typeof makeMdns> | null = null;
  readonly #entries = new Map<string, Map<string, Entry>>();
  readonly #hosts = new Map<string, Map<string, number>>();
  readonly #lastEmitted = new Map<string, string>();
  #requery: TimerHandle | null = null;
  #expiry: TimerHandle | null = null;
  #announceAgain: TimerHandle | null = null;

  constructor(opts: MdnsOptions) {
    super();
    this.#clock = opts.clock ?? systemClock;
    this.#opts = {
      group: opts.group ?? MDNS_GROUP,
      interface: opts.interface ?? null,
      announce: opts.announce ? { ...opts.announce, instance: label(opts.announce.instance), host: label(opts.announce.host) } : null,
      browse: opts.browse ?? [],
      requeryMs: opts.requeryMs ?? 60_000,
      maxTtlS: opts.maxTtlS ?? 180,
      clock: this.#clock,
    };
    for (const t of this.#opts.browse) this.#entries.set(lc(`${t}.local`), new Map());
  }

  /** Sets what this node announces (before start(): the listening port is known only once the server listens). */
  setAnnouncement(a: MdnsAnnouncement | null): void {
    if (this.#mdns) throw new Error('setAnnouncement() must come before start()');
    this.#opts.announce = a ? { ...a, instance: label(a.instance), host: label(a.host) } : null;
  }

  /** Binds, announces (twice, 1 s apart, as RFC 6762 §8.3 asks) and sends the first query. */
  async start(): Promise<void> {
    if (this.#mdns) return;
    const { group } = this.#opts;
    const iface = this.#opts.interface ?? undefined;
    const multicast = isMulticastAddress(group.address);
    const mdns = makeMdns(multicast
      ? { ip: group.address, port: group.port, interface: iface, bind: '0.0.0.0', multicast: true, loopback: true, reuseAddr: true }
      // A unicast "group" (loopback in tests): plain UDP to that address, no multicast membership or options.
      : { ip: group.address, port: group.port, interface: iface, bind: iface ?? '0.0.0.0', multicast: false, reuseAddr: true });
    this.#mdns = mdns;
    mdns.on('warning', (err: Error) => this.emit('warning', err));
    try {
      await new Promise<void>((resolve, reject) => {
        mdns.once('ready', resolve);
        mdns.once('error', reject);
      });
    } catch (err) {
      this.#mdns = null;
      mdns.destroy();
      throw err;
    }
    mdns.on('error', (err: Error) => this.emit('warning', err));
    mdns.on('query', (q, rinfo) => this.#onQuery(q.questions ?? [], rinfo));
    mdns.on('response', (r, rinfo) => this.#onResponse([...(r.answers ?? []), ...(r.additionals ?? [])], rinfo));
    if (this.#opts.announce) {
      this.#respond(this.#records(false));
      this.#announceAgain = this.#clock.setTimeout(() => this.#respond(this.#records(false)), 1000);
    }
    this.#query();
  }

  /** Sends goodbye records (TTL 0) so browsers drop this node at once, then closes the socket. */
  async stop(): Promise<void> {
    const mdns = this.#mdns;
    if (!mdns) return;
    this.#mdns = null;
    for (const t of [this.#requery, this.#expiry, this.#announceAgain]) if (t) this.#clock.clearTimeout(t);
    if (this.#opts.announce) {
      await new Promise<void>((resolve) => mdns.respond({ answers: this.#records(true) }, () => resolve()));
    }
    await new Promise<void>((resolve) => mdns.destroy(() => resolve()));
  }

  /** Peers currently present for a browsed type. */
  peers(type: string): MdnsPeer[] {
    return this.#compute(lc(`${type}.local`));
  }

  #query(): void {
    if (!this.#mdns) return;
    if (this.#requery) this.#clock.clearTimeout(this.#requery);
    const questions: Question[] = this.#opts.browse.map((t) => ({ name: `${t}.local`, type: 'PTR' }));
    if (questions.length) this.#mdns.query({ questions });
    this.#requery = this.#clock.setTimeout(() => this.#query(), this.#opts.requeryMs);
  }

  #respond(answers: Answer[]): void {
    if (answers.length) this.#mdns?.respond({ answers });
  }

  /** Every record describing this node; goodbye = TTL 0. */
  #records(goodbye: boolean): Answer[] {
    const a = this.#opts.announce!;
    const type = `${a.type}.local`;
    const instance = `${a.instance}.${type}`;
    const host = `${a.host}.local`;
    const ttl = (normal: number) => (goodbye ? 0 : normal);
    return [
      { name: type, type: 'PTR', ttl: ttl(4500), data: instance },
      { name: instance, type: 'SRV', ttl: ttl(120), flush: true, data: { port: a.port, target: host, priority: 0, weight: 0 } },
      { name: instance, type: 'TXT', ttl: ttl(4500), flush: true, data: Object.entries(a.txt).map(([k, v]) => `${k}=${v}`) },
      ...this.#addressRecords(goodbye),
    ];
  }

  #addressRecords(goodbye: boolean): Answer[] {
    const a = this.#opts.announce!;
    return a.addresses.map((ip): Answer => ({ name: `${a.host}.local`, type: isIP(ip) === 6 ? 'AAAA' : 'A', ttl: goodbye ? 0 : 120, flush: true, data: ip }));
  }

  #onQuery(questions: Question[], _rinfo: RemoteInfo): void {
    const a = this.#opts.announce;
    if (!a) return;
    const type = lc(`${a.type}.local`);
    const instance = lc(`${a.instance}.${a.type}.local`);
    const host = lc(`${a.host}.local`);
    const all = this.#records(false);
    const answers: Answer[] = [];
    for (const q of questions) {
      const name = lc(q.name);
      // dns-packet decodes QTYPE 255 as 'ANY', which its typings do not list.
      const any = (q.type as string) === 'ANY';
      if (name === type && (any || q.type === 'PTR')) answers.push(...all);
      else if (name === instance && (any || q.type === 'SRV' || q.type === 'TXT')) answers.push(...all.slice(1));
      else if (name === host && (any || q.type === 'A' || q.type === 'AAAA')) answers.push(...this.#addressRecords(false));
      else if (name === '_services._dns-sd._udp.local' && (any || q.type === 'PTR')) {
        answers.push({ name: '_services._dns-sd._udp.local', type: 'PTR', ttl: 4500, data: `${a.type}.local` });
      }
    }
    if (answers.length) this.#respond([...new Map(answers.map((r) => [`${r.type}|${r.name}|${JSON.stringify((r as { data?: unknown }).data)}`, r])).values()]);
  }

  #onResponse(records: Answer[], rinfo: RemoteInfo): void {
    const now = this.#clock.now();
    const ownInstance = this.#opts.announce ? lc(`${this.#opts.announce.instance}.${this.#opts.announce.type}.local`) : null;
    const expires = (ttl: number | undefined) => now + Math.min(ttl ?? 120, this.#opts.maxTtlS) * 1000;
    const touched = new Set<string>();
    const typeOf = (name: string) => [...this.#entries.keys()].find((t) => name.endsWith(`.${t}`));
    const entry = (type: string, instance: string) => {
      const map = this.#entries.get(type)!;
      let e = map.get(instance);
      if (!e) map.set(instance, (e = { instance, host: null, port: null, txt: {}, srvExpires: 0, fallbackAddress: null }));
      return e;
    };
    for (const r of records) {
      const name = lc(r.name);
      if (r.type === 'PTR' && this.#entries.has(name)) {
        const instance = lc(String(r.data));
        if (instance === ownInstance) continue;
        touched.add(name);
        if (r.ttl === 0) this.#entries.get(name)!.delete(instance);
        else entry(name, instance);
      } else if (r.type === 'SRV' || r.type === 'TXT') {
        const type = typeOf(name);
        if (!type || name === ownInstance) continue;
        touched.add(type);
        if (r.ttl === 0) {
          this.#entries.get(type)!.delete(name);
          continue;
        }
        const e = entry(type, name);
        e.fallbackAddress = rinfo.address;
        if (r.type === 'SRV') {
          const d = r.data as { port: number; target: string };
          e.host = lc(d.target);
          e.port = d.port;
          e.srvExpires = expires(r.ttl);
        } else {
          e.txt = parseTxt(r.data);
        }
      } else if (r.type === 'A' || r.type === 'AAAA') {
        let addrs = this.#hosts.get(name);
        if (!addrs) this.#hosts.set(name, (addrs = new Map()));
        if (r.ttl === 0) addrs.delete(String(r.data));
        else addrs.set(String(r.data), expires(r.ttl));
        for (const t of this.#entries.keys()) touched.add(t);
      }
    }
    // Some responders answer a PTR query with the PTR alone: ask for what is missing.
    const missing: Question[] = [];
    for (const type of touched) {
      for (const e of this.#entries.get(type)?.values() ?? []) if (e.host === null) missing.push({ name: e.instance, type: 'SRV' }, { name: e.instance, type: 'TXT' });
    }
    if (missing.length && this.#mdns) this.#mdns.query({ questions: missing });
    for (const type of touched) this.#emitIfChanged(type);
    this.#scheduleExpiry();
  }

  #compute(type: string): MdnsPeer[] {
    const now = this.#clock.now();
    const map = this.#entries.get(type);
    if (!map) return [];
    const peers: MdnsPeer[] = [];
    for (const e of map.values()) {
      if (e.host === null || e.port === null || e.srvExpires <= now) continue;
      const known = [...(this.#hosts.get(e.host) ?? new Map<string, number>())].filter(([, exp]) => exp > now).map(([ip]) => ip);
      const addresses = known.length ? known : e.fallbackAddress ? [e.fallbackAddress] : [];
      if (!addresses.length) continue;
      const typeLabel = type.replace(/\.local$/, '');
      peers.push({ type: typeLabel, instance: e.instance.slice(0, -(type.length + 1)), host: e.host, port: e.port, addresses, txt: e.txt, expiresAt: e.srvExpires });
    }
    return peers.sort((a, b) => a.instance.localeCompare(b.instance));
  }

  #emitIfChanged(type: string): void {
    const peers = this.#compute(type);
    const key = JSON.stringify(peers.map(({ expiresAt: _e, ...p }) => p));
    if (this.#lastEmitted.get(type) === key) return;
    this.#lastEmitted.set(type, key);
    this.emit('change', type.replace(/\.local$/, ''), peers);
  }

  #scheduleExpiry(): void {
    if (this.#expiry) this.#clock.clearTimeout(this.#expiry);
    this.#expiry = null;
    const now = this.#clock.now();
    let next = Infinity;
    for (const map of this.#entries.values()) for (const e of map.values()) if (e.srvExpires > now) next = Math.min(next, e.srvExpires);
    if (next === Infinity || !this.#mdns) return;
    this.#expiry = this.#clock.setTimeout(() => {
      this.#expiry = null;
      for (const t of this.#entries.keys()) this.#emitIfChanged(t);
      this.#scheduleExpiry();
    }, next - now);
  }
}

function parseTxt(data: unknown): Record<string, string> {
  const parts = Array.isArray(data) ? data : [data];
  const out: Record<string, string> = {};
  for (const p of parts) {
    const s = Buffer.isBuffer(p) ? p.toString('utf8') : String(p ?? '');
    const eq = s.indexOf('=');
    if (s.length === 0) continue;
    if (eq === -1) out[s] = '';
    else out[s.slice(0, eq)] = s.slice(eq + 1);
  }
  return out;
}
