// The one place where configuration is read. Every setting has an environment variable (BALUPI_*), an optional
// key in a YAML file (--config FILE or BALUPI_CONFIG), a default that runs out of the box, and a description that
// the README table is checked against. Environment beats YAML beats default. Everything else receives a frozen
// Config object and never looks at process.env.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';

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
  cacheMaxBytes: setting({
    env: 'BALUPI_CACHE_MAX_BYTES', yaml: 'cache_max_bytes', default: null as number | null, parse: optBytes,
    doc: 'Byte budget of the chunk cache (`200G`, `512MiB`, or bytes). Unset: 80 % of the free space at first start.',
  }),
  statusIntervalS: setting({
    env: 'BALUPI_STATUS_INTERVAL_S', yaml: 'status_interval_s', default: 5, parse: positiveInt,
    doc: 'Seconds between background samples of CPU, memory and disk for the status endpoints.',
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
    doc = parseYaml(text);
  } catch (err) {
    throw new ConfigError(`config file ${file} is not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    throw new ConfigError(`config file ${file} must be a mapping of settings (e.g. "port: 8000")`);
  }
  return doc as Record<string, unknown>;
}
