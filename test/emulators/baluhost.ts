// A stand-in for BaluHost, as far as the Pi's NAS module sees it:
//   - a real HTTP server on 127.0.0.1 with GET /api/health ({"status":"ok","version":...}); it records every
//     request and whether it carried `X-Sync-Trigger`, and models soft sleep the way BaluHost's middleware does
//     (a request outside the whitelist without that header wakes the NAS);
//   - failure modes: down (listener closed: connection refused), hang (accepts, never answers: a suspended host),
//     error (HTTP 503);
//   - the handshake caller, signing exactly like today's BaluHost (backend/app/services/balupi_handshake.py):
//     the body hash is over Python's json.dumps(body, sort_keys=True, separators=(",",":")) while the body sent is
//     json.dumps(body) (httpx < 0.28: ", " / ": ", insertion order, ASCII escapes) or, with httpx 0.28, compact
//     UTF-8. pyDumps below re-implements CPython's encoder for that, independently of src/nas/python-json.ts;
//   - accounts (test/emulators/baluhost-auth.ts): login, verify-2fa, refresh, /auth/me, mobile registration,
//     desktop pairing and register-desktop in BaluHost's shapes, tokens signed with `secret` as PyJWT signs them.
//     Every request's headers and body bytes are kept in `received`.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createHash, createHmac } from 'node:crypto';
import type { AddressInfo, Socket } from 'node:net';
import type { IncomingHttpHeaders } from 'node:http';
import { BaluHostAccounts } from './baluhost-auth.ts';

export type HealthMode = 'up' | 'hang' | 'error';

export interface RecordedRequest {
  method: string;
  path: string;
  syncTrigger: string | null;
}

/** A request as it arrived: headers as sent (lower-case names) and the body bytes. */
export interface ReceivedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** What the stand-in answered (absent for health). */
  response?: { status: number; body: Buffer };
}

/** A Python float (so that 16.0 prints as Python prints it, not as JS's 16). */
export class PyFloat {
  readonly value: number;
  constructor(value: number) {
    this.value = value;
  }
}
export const pyFloat = (x: number) => new PyFloat(x);

/** What pyDumps accepts: Maps keep Python's insertion order even for integer-like keys (JS objects do not). */
export type PyValue = null | boolean | number | bigint | string | PyFloat | PyValue[] | Map<string, PyValue> | { [k: string]: PyValue };

export function pyFloatRepr(x: number): string {
  if (Number.isNaN(x)) return 'NaN';
  if (x === Infinity) return 'Infinity';
  if (x === -Infinity) return '-Infinity';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  // toExponential() without an argument gives the shortest digits that round-trip, as Python's repr does.
  const [mant, e] = x.toExponential().split('e') as [string, string];
  const exp = Number(e);
  const sign = mant.startsWith('-') ? '-' : '';
  const digits = mant.replace('-', '').replace('.', '');
  if (exp < -4 || exp >= 16) {
    const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    return `${sign}${m}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  }
  if (exp >= 0) {
    const int = digits.slice(0, exp + 1).padEnd(exp + 1, '0');
    return `${sign}${int}.${digits.slice(exp + 1) || '0'}`;
  }
  return `${sign}0.${'0'.repeat(-exp - 1)}${digits}`;
}

const ESC: Record<string, string> = { '\\': '\\\\', '"': '\\"', '\b': '\\b', '\f': '\\f', '\n': '\\n', '\r': '\\r', '\t': '\\t' };
const hex4 = (c: string) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;

/** CPython's json.dumps: py_encode_basestring_ascii / py_encode_basestring, item separators, sort_keys. */
export function pyDumps(v: PyValue, opts: { sortKeys?: boolean; compact?: boolean; ensureAscii?: boolean } = {}): string {
  const [item, kv] = opts.compact ? [',', ':'] : [', ', ': '];
  const ascii = opts.ensureAscii ?? true;
  const str = (s: string) => `"${ascii
    ? s.replace(/[\\"]|[^\x20-\x7e]/g, (c) => ESC[c] ?? hex4(c))
    : s.replace(/[\x00-\x1f\\"]/g, (c) => ESC[c] ?? hex4(c))}"`;
  const codePoints = (s: string) => Array.from(s, (c) => c.codePointAt(0)!);
  const cmp = (a: string, b: string) => {
    const x = codePoints(a), y = codePoints(b);
    for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
    return x.length - y.length;
  };
  const enc = (x: PyValue): string => {
    if (x === null) return 'null';
    if (x === true) return 'true';
    if (x === false) return 'false';
    if (typeof x === 'bigint') return x.toString();
    if (typeof x === 'number') {
      if (!Number.isInteger(x)) throw new Error(`${x}: use pyFloat() for Python floats`);
      return String(x);
    }
    if (typeof x === 'string') return str(x);
    if (x instanceof PyFloat) return pyFloatRepr(x.value);
    if (Array.isArray(x)) return `[${x.map(enc).join(item)}]`;
    const entries = x instanceof Map ? [...x] : Object.entries(x);
    if (opts.sortKeys) entries.sort(([a], [b]) => cmp(a, b));
    return `{${entries.map(([k, val]) => `${str(k)}${kv}${enc(val)}`).join(item)}}`;
  };
  return enc(v);
}

/** A snapshot shaped like backend/app/services/snapshot_export.py's, with the values that break naive signing:
 *  unsorted keys, Python floats (16.0, 1e-07), non-ASCII and astral characters, a control character, big ints. */
export function baluhostSnapshot(): Map<string, PyValue> {
  return new Map<string, PyValue>([
    ['version', 1],
    ['generated_at', '2026-08-03T21:00:00.123456+00:00'],
    ['baluhost_version', '1.38.0'],
    ['system', new Map<string, PyValue>([['hostname', 'baluhöst'], ['uptime_seconds', 86400], ['cpu_model', 'AMD Ryzen™ 5 · 😀'], ['ram_total_gb', pyFloat(16)]])],
    ['storage', new Map<string, PyValue>([
      ['arrays', [new Map<string, PyValue>([['name', 'md0'], ['level', 'raid1'], ['state', 'active'], ['size_bytes', 4000787030016], ['devices', ['sda1', 'sdb1']]])]],
      ['total_bytes', 4000787030016], ['used_bytes', 1234567890],
    ])],
    ['smart_health', new Map<string, PyValue>([['sdb', new Map<string, PyValue>([['status', 'PASSED'], ['temperature_c', pyFloat(34.5)], ['power_on_hours', 12000]])], ['sda', new Map<string, PyValue>([['status', 'PASSED'], ['temperature_c', 33], ['power_on_hours', 11999]])]])],
    ['services', new Map<string, PyValue>([['vpn', new Map([['active_clients', 2]])], ['shares', new Map([['active_shares', 5]])], ['backups', new Map<string, PyValue>([['last_backup', null], ['status', 'none']])]])],
    ['users', new Map<string, PyValue>([['total', 3], ['list', [new Map([['username', 'admin'], ['role', 'admin']]), new Map([['username', 'zoë\t"q"'], ['role', 'user']])]]])],
    ['files_summary', new Map<string, PyValue>([['total_files', 12345], ['total_size_bytes', 987654321], ['ratio', pyFloat(1e-7)], ['10', true], ['9', false]])],
  ]);
}

export interface SignedCall {
  method: 'POST';
  path: string;
  headers: Record<string, string>;
  body: Buffer;
}

/**
 * A handshake call exactly as BaluHost builds it. `body` null = no body (coming-online). `httpx` picks how the body
 * goes out: '<0.28' (what BaluHost pins) = json.dumps(body); '0.28' = compact UTF-8.
 */
export function baluhostCall(secret: string, path: string, body: PyValue | undefined | null, opts: { timestamp: number; httpx?: '<0.28' | '0.28' }): SignedCall {
  const signed = body === null || body === undefined ? '' : pyDumps(body, { sortKeys: true, compact: true });
  const ts = String(Math.trunc(opts.timestamp));
  const bodyHash = createHash('sha256').update(Buffer.from(signed, 'utf8')).digest('hex');
  const signature = createHmac('sha256', Buffer.from(secret, 'utf8')).update(`POST:${path}:${ts}:${bodyHash}`).digest('hex');
  const sent = body === null || body === undefined
    ? ''
    : opts.httpx === '0.28' ? pyDumps(body, { compact: true, ensureAscii: false }) : pyDumps(body);
  return {
    method: 'POST',
    path,
    headers: { 'content-type': 'application/json', 'x-balupi-timestamp': ts, 'x-balupi-signature': signature },
    body: Buffer.from(sent, 'utf8'),
  };
}

export const GOING_OFFLINE = '/api/handshake/nas-going-offline';
export const COMING_ONLINE = '/api/handshake/nas-coming-online';

/** Sends a call to the Pi over HTTP, as BaluHost's httpx client would. */
export async function sendCall(piUrl: string, call: SignedCall): Promise<{ status: number; body: any }> {
  const res = await fetch(new URL(call.path, piUrl), { method: call.method, headers: call.headers, body: call.body });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

export class BaluHostEmulator {
  readonly version: string;
  mode: HealthMode = 'up';
  /** BaluHost's sleep manager state: in soft sleep any request outside the whitelist without X-Sync-Trigger wakes it. */
  sleepState: 'awake' | 'soft_sleep' = 'awake';
  /** Requests that woke the emulated NAS from soft sleep. */
  wakeups: RecordedRequest[] = [];
  readonly requests: RecordedRequest[] = [];
  readonly received: ReceivedRequest[] = [];
  /** Users, tokens, pairing; signs with the secret given to start() (BaluHost's SECRET_KEY). */
  readonly accounts: BaluHostAccounts;
  #server: Server | null = null;
  #port = 0;
  readonly #sockets = new Set<Socket>();

  private constructor(version: string, secret: string) {
    this.version = version;
    this.accounts = new BaluHostAccounts(secret);
  }

  static async start(opts: { version?: string; secret?: string } = {}): Promise<BaluHostEmulator> {
    const emu = new BaluHostEmulator(opts.version ?? '1.38.0', opts.secret ?? 'baluhost-emulator-secret-key-of-32-chars');
    await emu.comeBack();
    return emu;
  }

  get port(): number {
    return this.#port;
  }

  get url(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  get listening(): boolean {
    return this.#server !== null;
  }

  /** The backend process stops: the port refuses connections. */
  async goDown(): Promise<void> {
    const server = this.#server;
    if (!server) return;
    this.#server = null;
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** The backend listens again, on the same port. */
  async comeBack(): Promise<void> {
    if (this.#server) return;
    const server = createServer((req, res) => this.#handle(req, res));
    server.on('connection', (s) => {
      this.#sockets.add(s);
      s.on('close', () => this.#sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.#port, '127.0.0.1', () => resolve());
    });
    this.#port = (server.address() as AddressInfo).port;
    this.#server = server;
  }

  async close(): Promise<void> {
    await this.goDown();
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0]!;
    const trigger = req.headers['x-sync-trigger'];
    const r: RecordedRequest = { method: req.method ?? 'GET', path, syncTrigger: typeof trigger === 'string' ? trigger : null };
    this.requests.push(r);
    if (this.mode === 'hang') return; // never answers; the socket is destroyed by goDown()/close()
    // backend/app/middleware/sleep_auto_wake.py: /api/health is not whitelisted; the header suppresses the wake.
    if (this.sleepState === 'soft_sleep' && r.syncTrigger !== 'auto' && r.syncTrigger !== 'scheduled') {
      this.wakeups.push(r);
      this.sleepState = 'awake';
    }
    if (this.mode === 'error') {
      res.writeHead(503, { 'content-type': 'application/json' }).end('{"detail":"Internal server error"}');
      return;
    }
    if (req.method === 'GET' && (path === '/api/health' || path === '/api/ping')) {
      res.writeHead(200, { 'content-type': 'application/json', 'x-api-version': '1', 'x-api-min-version': '1' })
        .end(JSON.stringify({ status: 'ok', version: this.version, api_version: '1', min_api_version: '1' }));
      return;
    }
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => void this.#answer(req, res, path, Buffer.concat(parts)));
  }

  /** The NAS's own power and bookkeeping calls the Pi relays (sleep buttons, push tokens, schedules), in BaluHost's
   *  shapes; token checking is the accounts' business, here a missing token is enough to refuse. */
  #nasCall(method: string, path: string, headers: IncomingMessage['headers']): { status: number; body: unknown; headers?: Record<string, string> } | null {
    const known = method === 'POST' ? /^\/api\/(system\/sleep\/(soft|suspend|wake)|mobile\/devices\/[^/]+\/push-token)$/.test(path)
      : /^\/api\/(system\/sleep\/my-permissions|sync\/schedule\/list|mobile\/upload\/queue\/[^/]+)$/.test(path);
    if (!known) return null;
    if (!/^Bearer \S+$/.test(headers.authorization ?? '')) return { status: 401, body: { detail: 'Not authenticated' } };
    if (path === '/api/system/sleep/soft') {
      this.sleepState = 'soft_sleep';
      return { status: 200, body: { success: true, message: 'Entered soft sleep mode' } };
    }
    if (path === '/api/system/sleep/suspend') return { status: 200, body: { success: true, message: 'System suspended' } };
    if (path === '/api/system/sleep/wake') return { status: 200, body: { success: true, message: 'Exited soft sleep mode' } };
    if (path === '/api/system/sleep/my-permissions') return { status: 200, body: { can_soft_sleep: true, can_wake: true, can_suspend: false, can_wol: true } };
    if (path.endsWith('/push-token')) return { status: 200, body: { message: 'Push token updated' } };
    if (path === '/api/sync/schedule/list') {
      return { status: 200, body: { schedules: [{ schedule_id: 1, device_id: 'dev-1', schedule_type: 'daily', time_of_day: '03:00', enabled: true, sync_deletions: false, resolve_conflicts: 'keep_newest', auto_vpn: false }] } };
    }
    return { status: 200, body: { items: [], total: 0 } };
  }

  async #answer(req: IncomingMessage, res: ServerResponse, path: string, body: Buffer): Promise<void> {
    const entry: ReceivedRequest = { method: req.method ?? 'GET', path, headers: req.headers, body };
    this.received.push(entry);
    let parsed: unknown;
    if (body.length) {
      try {
        parsed = JSON.parse(body.toString('utf8'));
      } catch {
        parsed = body.toString('latin1');
      }
    }
    const reply = this.#nasCall(req.method ?? 'GET', path, req.headers) ?? (await this.accounts.handle(req.method ?? 'GET', path, req.headers, parsed));
    if (!reply) {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"detail":"Not Found"}');
      return;
    }
    const out = Buffer.from(JSON.stringify(reply.body));
    entry.response = { status: reply.status, body: out };
    res.writeHead(reply.status, { 'content-type': 'application/json', 'x-api-version': '1', 'x-api-min-version': '1', ...reply.headers }).end(out);
  }
}
