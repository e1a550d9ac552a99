// One pino logger for the process: JSON lines for journald and log shippers, or pino-pretty on a terminal.
import { pino, type Logger } from 'pino';
import { createRequire } from 'node:module';
import type { Config } from './config.ts';

export type { Logger };

export function createLogger(config: Pick<Config, 'logLevel' | 'logFormat'>, stream: NodeJS.WritableStream = process.stdout): Logger {
  const usePretty = config.logFormat === 'pretty' || (config.logFormat === 'auto' && (stream as { isTTY?: boolean }).isTTY === true);
  const options = { level: config.logLevel, base: { service: 'balupi' } };
  if (!usePretty) return pino(options, stream);
  // Synchronous pretty stream rather than a worker-thread transport: one thread less on a 1 GB Pi. Loaded only here
  // (~30 modules): under systemd the daemon logs JSON.
  const pretty = createRequire(import.meta.url)('pino-pretty') as typeof import('pino-pretty');
  return pino(options, pretty({ destination: stream, colorize: true, ignore: 'pid,hostname,service', translateTime: 'SYS:HH:MM:ss.l' }));
}
