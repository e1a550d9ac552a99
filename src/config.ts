// The one place where configuration is read. Every setting has an environment variable (BALUPI_*), an optional
// key in a YAML file (--config FILE or BALUPI_CONFIG), a default that runs out of the box, and a description that
// the README table is checked against. Environment beats YAML beats default. Everything else receives a frozen
// Config object and never looks at process.env.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { isIP } from 'node:net';
import { createRequire } from 'node:module';
import { parseDeviceList, type PlugAddress } from './energy/device-list.ts';
import { DEFAULT_HUB_IGNORE, parseIgnoreList } from './sync/ignore.ts';
import { parseMac, parseWolAddress } from './nas/wol.ts';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

type Parser<T> = (raw: string) => T;

interface Setting<T> {
  env: string;
  /** Key in the YAML file (snake_case, flat). */
  yaml: string;
  default: T;
  /** Shown in the README table. */
  doc: string;
  parse: Parser<T>;
}

const fail = (msg: string): never => {
  throw new Error(msg);
};

const str: Parser<string> = (raw) => raw;
const optStr: Parser<string | null> = (raw) => (raw === '' ? null : raw);
const port: Parser<number> = (raw) => {
  const n = Number(raw);
  return /^\d+$/.test(raw.trim()) && n >= 0 && n <= 65535 ? n : fail('must be a port number from 0 to 65535');
};
const positiveInt: Parser<number> = (raw) =>
  /^\d+$/.test(raw.trim()) && Number(raw) > 0 ? Number(raw) : fail('must be a whole number greater than 0');
const oneOf =
  <T extends string>(...values: T[]): Parser<T> =>
  (raw) =>
    (values as string[]).includes(raw) ? (raw as T) : fail(`must be one of: ${values.join(', ')}`);
const optBytes: Parser<number | null> = (raw) => {
  if (raw === '') return null;
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?$/i.exec(raw.trim());
  if (!m) return fail('must be a byte count such as 500000000, 200G or 512MiB');
  const unit = (m[2] ?? '').toLowerCase().replace(/i?b$/, '');
  const mult = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 }[unit];
  return mult === undefined ? fail('has an unknown unit') : Math.floor(Number(m[1]) * mult);
};

const nonNegative: Parser<number> = (raw) =>
  /^\d+(\.\d+)?$/.test(raw.trim()) ? Number(raw) : fail('must be a number of 0 or more');
const timeZone: Parser<string> = (raw) => {
  try {
    return new Intl.DateTimeFormat('en-US', { timeZone: raw }).resolvedOptions().timeZone;
  } catch {
    return fail('must be an IANA time zone such as Europe/Berlin');
  }
};
const hostPort: Parser<string> = (raw) =>
  /^(\[[0-9a-f:.]+\]|[^:\s]+):\d{1,5}$/i.test(raw.trim()) ? raw.trim() : fail('must be host:port, e.g. 255.255.255.255:20002');
const optUrl: Parser<string | null> = (raw) => {
  if (raw === '') return null;
  try {
    const u = new URL(raw);
    return u.protocol === 'http:' || u.protocol === 'https:' ? raw : fail('must be an http:// or https:// URL');
  } catch {
    return fail('must be an http:// or https:// URL');
  }
};
const deviceList: Parser<PlugAddress[]> = (raw) => parseDeviceList(raw);
const ignoreList: Parser<string[]> = (raw) => parseIgnoreList(raw);
/** Runs a parser from another module, keeping only its message (the caller adds the setting's name). */
const wrapped = <T>(p: (raw: string) => T): Parser<T> => (raw) => {
  try {
    return p(raw);
  } catch (err) {
    return fail((err as Error).message);
  }
};
const onOff: Parser<boolean> = (raw) => {
  const v = raw.trim().toLowerCase();
  if (['on', 'true', 'yes', '1'].includes(v)) return true;
  if (['off', 'false', 'no', '0'].includes(v)) return false;
  return fail('must be on or off');
};
const optIPv4: Parser<string | null> = (raw) => (raw === '' ? null : isIP(raw.trim()) === 4 ? raw.trim() : fail('must be an IPv4 address such as 192.168.1.20'));
const ipList: Parser<string[]> = (raw) => {
  const items = raw.split(',').map((x) => x.trim()).filter(Boolean);
  for (const ip of items) if (isIP(ip) === 0) fail(`${JSON.stringify(ip)} is not an IP address`);
  return items;
};
const thresholds: Parser<[number, number, number]> = (raw) => {
  const parts = raw.split(',').map((x) => Number(x.trim()));
  return parts.length === 3 && parts.every((x) => Number.isFinite(x) && x >= 0) && parts[0]! < parts[1]! && parts[1]! < parts[2]!
    ? (parts as [number, number, number])
    : fail('must be three rising watt values "off,standby,idle", e.g. 3,15,40');
};

const setting = <T>(s: Setting<T>): Setting<T> => s;

/** Every setting BaluPi reads. Add a setting here and in the README table (a test keeps them in step). */
export const SETTINGS = {
  dataDir: setting({
    env: 'BALUPI_DATA_DIR', yaml: 'data_dir', default: './data', parse: str,
    doc: 'Directory for all state: LevelDB indexes, chunks, generated secrets. Created if missing.',
  }),
  host: setting({
    env: 'BALUPI_HOST', yaml: 'host', default: '0.0.0.0', parse: str,
    doc: 'Address both listeners bind to.',
  }),
  port: setting({
    env: 'BALUPI_PORT', yaml: 'port', default: 8000, parse: port,
    doc: 'REST API and Connect/gRPC-Web over HTTP/1.1.',
  }),
  grpcPort: setting({
    env: 'BALUPI_GRPC_PORT', yaml: 'grpc_port', default: 50051, parse: port,
    doc: 'gRPC, Connect and gRPC-Web over HTTP/2 cleartext (h2c, prior knowledge).',
  }),
  role: setting({
    env: 'BALUPI_ROLE', yaml: 'role', default: 'pi' as 'pi' | 'hub', parse: oneOf('pi', 'hub'),
    doc: '`pi` (cache in front of the NAS) or `hub` (beside BaluHost on the NAS).',
  }),
  logLevel: setting({
    env: 'BALUPI_LOG_LEVEL', yaml: 'log_level', default: 'info' as LogLevel,
    parse: oneOf('fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'),
    doc: '`fatal`, `error`, `warn`, `info`, `debug`, `trace` or `silent`.',
  }),
  logFormat: setting({
    env: 'BALUPI_LOG_FORMAT', yaml: 'log_format', default: 'auto' as 'auto' | 'json' | 'pretty',
    parse: oneOf('auto', 'json', 'pretty'),
    doc: '`json` (one JSON object per line), `pretty` (for a terminal) or `auto` (pretty on a terminal, JSON otherwise).',
  }),
  jwtSecret: setting({
    env: 'BALUPI_JWT_SECRET', yaml: 'jwt_secret', default: null as string | null, parse: optStr,
    doc: "BaluHost's `SECRET_KEY`, to verify the tokens it issues. Unset: a random secret is generated at first start and kept in the data directory (`balupi token` prints tokens for it).",
  }),
  peerSecret: setting({
    env: 'BALUPI_PEER_SECRET', yaml: 'peer_secret', default: null as string | null, parse: optStr,
    doc: 'Pairing secret shared by sync peers; RPC calls carry it as `Authorization: Bearer <secret>`. Unset: generated at first start and kept in the data directory.',
  }),
  hubUrl: setting({
    env: 'BALUPI_HUB_URL', yaml: 'hub_url', default: null as string | null, parse: optUrl,
    doc: 'Pi role: the hub\'s gRPC address, e.g. `http://nas.local:50051` (its BALUPI_GRPC_PORT). Unset: the Pi does not sync.',
  }),
  hubRoot: setting({
    env: 'BALUPI_HUB_ROOT', yaml: 'hub_root', default: null as string | null, parse: (raw) => (raw === '' ? null : resolve(raw)),
    doc: 'Hub role: the folder the hub serves and watches (BaluHost\'s files). First start ingests it. `--root DIR` overrides it.',
  }),
  syncHotThreshold: setting({
    env: 'BALUPI_SYNC_HOT_THRESHOLD', yaml: 'sync_hot_threshold', default: 0.5, parse: nonNegative,
    doc: 'Pi role: a file changed on the hub has its new bytes fetched at once if pinned or at least this hot (decayed access count; one access counts 1 and halves every week).',
  }),
  syncRetryMinS: setting({
    env: 'BALUPI_SYNC_RETRY_MIN_S', yaml: 'sync_retry_min_s', default: 1, parse: nonNegative,
    doc: 'Pi role: first wait before reconnecting to the hub or retrying a failed upload; doubles per failure (with jitter).',
  }),
  syncRetryMaxS: setting({
    env: 'BALUPI_SYNC_RETRY_MAX_S', yaml: 'sync_retry_max_s', default: 300, parse: nonNegative,
    doc: 'Pi role: longest wait between reconnects and upload retries.',
  }),
  syncMaxSendRate: setting({
    env: 'BALUPI_SYNC_MAX_SEND_RATE', yaml: 'sync_max_send_rate', default: null as number | null, parse: optBytes,
    doc: 'Bytes per second this peer sends in chunk streams (`10MiB`); leaves the Pi\'s shared USB link to clients. Unset: unlimited.',
  }),
  hubWatchDebounceMs: setting({
    env: 'BALUPI_HUB_WATCH_DEBOUNCE_MS', yaml: 'hub_watch_debounce_ms', default: 300, parse: positiveInt,
    doc: 'Hub role: a file in the root enters the change feed once it has been quiet this long.',
  }),
  hubRescanS: setting({
    env: 'BALUPI_HUB_RESCAN_S', yaml: 'hub_rescan_s', default: 3600, parse: nonNegative,
    doc: 'Hub role: how often the whole root is read again for changes its watcher missed (0: never). Unchanged files cost one lstat each.',
  }),
  hubIgnore: setting({
    env: 'BALUPI_HUB_IGNORE', yaml: 'hub_ignore', default: [...DEFAULT_HUB_IGNORE] as string[], parse: ignoreList,
    doc: `Hub role: paths of the root left out of the sync, comma-separated (a YAML list works too). \`*\` and \`?\` match within a name; a pattern without \`/\` matches that name anywhere, one with \`/\` from the root; a folder takes everything below it. Empty: everything syncs. Default: BaluHost's own \`${DEFAULT_HUB_IGNORE.join(',')}\`.`,
  }),
  hubKeepDays: setting({
    env: 'BALUPI_HUB_KEEP_DAYS', yaml: 'hub_keep_days', default: 30, parse: nonNegative,
    doc: 'Hub role: a file of the root that a peer\'s change deletes or replaces is kept this many days in `.balupi-versions/` of the root (same path, the time before the extension; never synced). 0: not kept.',
  }),
  hubKeepMaxBytes: setting({
    env: 'BALUPI_HUB_KEEP_MAX_BYTES', yaml: 'hub_keep_max_bytes', default: null as number | null, parse: optBytes,
    doc: 'Hub role: the most bytes the kept versions hold (`20G`); past it the oldest go first. 0: no bound. Unset: a tenth of the size of the file system the root is on.',
  }),
  cacheMaxBytes: setting({
    env: 'BALUPI_CACHE_MAX_BYTES', yaml: 'cache_max_bytes', default: null as number | null, parse: optBytes,
    doc: 'Byte budget of the chunk cache (`200G`, `512MiB`, or bytes). Unset: 80 % of the free space at first start. On a hub it bounds only chunks in transit: its root\'s files hold their own bytes.',
  }),
  statusIntervalS: setting({
    env: 'BALUPI_STATUS_INTERVAL_S', yaml: 'status_interval_s', default: 5, parse: positiveInt,
    doc: 'Seconds between background samples of CPU, memory and disk for the status endpoints.',
  }),
  nasUrl: setting({
    env: 'BALUPI_NAS_URL', yaml: 'nas_url', default: null as string | null, parse: optUrl,
    doc: "BaluHost's base URL, e.g. `http://192.168.1.10:8000`; its `/api/health` is polled with `X-Sync-Trigger: auto`, so a soft-sleeping NAS is not woken. Unset: the address mDNS finds for `_baluhost._tcp`.",
  }),
  nasMac: setting({
    env: 'BALUPI_NAS_MAC', yaml: 'nas_mac', default: null as string | null, parse: (raw) => (raw === '' ? null : wrapped(parseMac)(raw)),
    doc: "The NAS's MAC address for Wake-on-LAN (`aa:bb:cc:dd:ee:ff`, `aa-bb-cc-dd-ee-ff`, `aabb.ccdd.eeff` or `aabbccddeeff`). Unset: the NAS is never woken.",
  }),
  wolAddress: setting({
    env: 'BALUPI_WOL_ADDRESS', yaml: 'wol_address', default: '255.255.255.255:9', parse: (raw) => (wrapped(parseWolAddress)(raw), raw.trim()),
    doc: 'Where the Wake-on-LAN packet is sent, `ip:port` (IPv6 as `[addr]:port`); a directed broadcast such as `192.168.1.255:9` also works.',
  }),
  nasBootTimeoutS: setting({
    env: 'BALUPI_NAS_BOOT_TIMEOUT_S', yaml: 'nas_boot_timeout_s', default: 180, parse: positiveInt,
    doc: 'Seconds a booting NAS (after a wake, or power rising on its plug) has to answer before the boot counts as failed and the state goes back.',
  }),
  nasPollIntervalS: setting({
    env: 'BALUPI_NAS_POLL_INTERVAL_S', yaml: 'nas_poll_interval_s', default: 30, parse: positiveInt,
    doc: "Seconds between probes of BaluHost's `/api/health`.",
  }),
  nasFastPollIntervalS: setting({
    env: 'BALUPI_NAS_FAST_POLL_INTERVAL_S', yaml: 'nas_fast_poll_interval_s', default: 5, parse: positiveInt,
    doc: 'Seconds between probes while the NAS boots or shuts down, or while a failed probe waits for confirmation.',
  }),
  wakeWaitS: setting({
    env: 'BALUPI_WAKE_WAIT_S', yaml: 'wake_wait_s', default: 90, parse: positiveInt,
    doc: 'Pi role: how long a download of a file the Pi holds only as metadata waits for the NAS (woken if asleep) and the hub on it, before it is answered 503 with `Retry-After`. Uploads never wait.',
  }),
  handshakeSecret: setting({
    env: 'BALUPI_HANDSHAKE_SECRET', yaml: 'handshake_secret', default: null as string | null, parse: optStr,
    doc: "The same value as BaluHost's `BALUPI_HANDSHAKE_SECRET`: the HMAC key of its going-offline / coming-online calls. Unset: those calls are answered 503.",
  }),
  mdns: setting({
    env: 'BALUPI_MDNS', yaml: 'mdns', default: true, parse: onOff,
    doc: 'mDNS: announce this node as `_balupi._tcp.local` (port; TXT role, version) and browse for `_baluhost._tcp.local`. `on` or `off`.',
  }),
  mdnsInterface: setting({
    env: 'BALUPI_MDNS_INTERFACE', yaml: 'mdns_interface', default: null as string | null, parse: optIPv4,
    doc: 'IPv4 address of the network interface mDNS uses. Unset: all interfaces.',
  }),
  mdnsAddresses: setting({
    env: 'BALUPI_MDNS_ADDRESSES', yaml: 'mdns_addresses', default: [] as string[], parse: ipList,
    doc: 'Addresses announced for this node, comma-separated. Unset: those of the mDNS interface, or every external address.',
  }),
  mdnsGroup: setting({
    env: 'BALUPI_MDNS_GROUP', yaml: 'mdns_group', default: '224.0.0.251:5353', parse: (raw) => (wrapped(parseWolAddress)(raw), raw.trim()),
    doc: 'Where mDNS packets go. For tests: a loopback address such as `127.0.0.2:5353` keeps mDNS on one machine (plain UDP, no multicast).',
  }),
  tapoUsername: setting({
    env: 'BALUPI_TAPO_USERNAME', yaml: 'tapo_username', default: '', parse: str,
    doc: 'TP-Link (Tapo app) account e-mail; the plugs check it locally, nothing goes to the cloud.',
  }),
  tapoPassword: setting({
    env: 'BALUPI_TAPO_PASSWORD', yaml: 'tapo_password', default: '', parse: str,
    doc: 'TP-Link account password.',
  }),
  tapoDevices: setting({
    env: 'BALUPI_TAPO_DEVICES', yaml: 'tapo_devices', default: [] as PlugAddress[], parse: deviceList,
    doc: 'Plugs to poll, comma-separated `host[:port]` (`192.168.1.20, [fd00::5]:80`). More can be added through the API.',
  }),
  tapoDiscoveryAddress: setting({
    env: 'BALUPI_TAPO_DISCOVERY_ADDRESS', yaml: 'tapo_discovery_address', default: '255.255.255.255:20002', parse: hostPort,
    doc: 'Where `POST /api/tapo/devices/discover` sends TP-Link\'s UDP discovery probe.',
  }),
  energyIntervalS: setting({
    env: 'BALUPI_ENERGY_INTERVAL_S', yaml: 'energy_interval_s', default: 30, parse: positiveInt,
    doc: 'Seconds between polls of each plug.',
  }),
  energyRetentionDays: setting({
    env: 'BALUPI_ENERGY_RETENTION_DAYS', yaml: 'energy_retention_days', default: 365, parse: positiveInt,
    doc: 'Days raw samples are kept (hour/day/month rollups are kept for ever).',
  }),
  timeZone: setting({
    env: 'BALUPI_TIMEZONE', yaml: 'timezone', default: Intl.DateTimeFormat().resolvedOptions().timeZone, parse: timeZone,
    doc: 'IANA time zone for days, months and time-of-use tariffs. Default: the system\'s.',
  }),
  energyPrice: setting({
    env: 'BALUPI_ENERGY_PRICE', yaml: 'energy_price', default: 0.32, parse: nonNegative,
    doc: 'Price per kWh (currency units) used until a tariff is set through `POST /api/energy/prices`.',
  }),
  currency: setting({
    env: 'BALUPI_CURRENCY', yaml: 'currency', default: 'EUR', parse: (raw) => (/^[A-Z]{3}$/.test(raw) ? raw : fail('must be an ISO 4217 code such as EUR')),
    doc: 'Currency of prices and costs.',
  }),
  nasPowerThresholds: setting({
    env: 'BALUPI_NAS_POWER_THRESHOLDS', yaml: 'nas_power_thresholds', default: [3, 15, 40] as [number, number, number], parse: thresholds,
    doc: 'Watts separating the NAS plug\'s states `off,standby,idle` (above the last: active).',
  }),
  alertWebhook: setting({
    env: 'BALUPI_ALERT_WEBHOOK', yaml: 'alert_webhook', default: null as string | null, parse: optUrl,
    doc: 'URL that receives every new alert as a JSON POST.',
  }),
  demoPlugs: setting({
    env: 'BALUPI_DEMO_PLUGS', yaml: 'demo_plugs', default: 0, parse: (raw) => (/^\d+$/.test(raw) && Number(raw) <= 10 ? Number(raw) : fail('must be a number of plugs from 0 to 10')),
    doc: 'Start this many emulated Tapo plugs on 127.0.0.1 and poll them (demo without hardware).',
  }),
} as const;

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
type Settings = typeof SETTINGS;
export type Config = Readonly<{ [K in keyof Settings]: Settings[K]['default'] }> & {
  /** Where the YAML file came from, if any (for the log line at start). */
  readonly configFile: string | null;
};

/**
 * Builds the configuration from the environment and an optional YAML file. Throws ConfigError with a message that
 * names the setting and the offending value; the CLI prints it without a stack trace.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, configFile?: string): Config {
  const file = configFile ?? (env.BALUPI_CONFIG || undefined);
  const fromYaml = file ? readYaml(file) : {};
  const known = new Set(Object.values(SETTINGS).map((s) => s.yaml));
  for (const key of Object.keys(fromYaml)) {
    if (!known.has(key)) throw new ConfigError(`${file}: unknown setting "${key}" (known: ${[...known].join(', ')})`);
  }
  const out: Record<string, unknown> = { configFile: file ?? null };
  for (const [name, s] of Object.entries(SETTINGS) as [string, Setting<unknown>][]) {
    const envValue = env[s.env];
    let raw: string | undefined;
    let source: string;
    if (envValue !== undefined) {
      raw = envValue;
      source = s.env;
    } else if (fromYaml[s.yaml] !== undefined && fromYaml[s.yaml] !== null) {
      raw = String(fromYaml[s.yaml]);
      source = `${s.yaml} in ${file}`;
    } else {
      out[name] = s.default;
      continue;
    }
    try {
      out[name] = s.parse(raw);
    } catch (err) {
      throw new ConfigError(`invalid ${source}=${JSON.stringify(raw)}: ${(err as Error).message}`);
    }
  }
  out.dataDir = resolve(out.dataDir as string);
  return Object.freeze(out) as Config;
}

function readYaml(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  let doc: unknown;
  try {
    // yaml (~70 modules) loads only when there is a file to read.
    doc = (createRequire(import.meta.url)('yaml') as typeof import('yaml')).parse(text);
  } catch (err) {
    throw new ConfigError(`config file ${file} is not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    throw new ConfigError(`config file ${file} must be a mapping of settings (e.g. "port: 8000")`);
  }
  return doc as Record<string, unknown>;
}
