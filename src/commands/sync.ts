// `balupi status | pin | unpin | conflicts | sync --once | forget-peer`: the sync layer's command-line face. Like the store
// commands they work on the data directory directly, or through the running daemon's local API
// (src/routes/local-sync.ts) when the daemon holds the LevelDB locks.

import http from 'node:http';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ClassicLevel } from 'classic-level';
import { openStore, isStoreError, formatBytes } from '../../store/index.ts';
import type { Config } from '../config.ts';
import { createLogger } from '../log.ts';
import { loadSecrets } from '../auth/secrets.ts';
import { SyncRuntime, type PinResult, type SyncStatus } from '../sync/runtime.ts';
import type { ConflictRecord } from '../sync/state.ts';
import type { OnceReport } from '../sync/peer.ts';
import { socketPath } from './store-access.ts';
import { UsageError, type CommandContext } from './context.ts';

interface SyncAccess {
  via: 'direct' | 'daemon';
  status(): Promise<SyncStatus>;
  pin(name: string, pinned: boolean): Promise<PinResult>;
  conflicts(): Promise<ConflictRecord[]>;
  once(): Promise<OnceReport>;
  forgetPeer(peerId: string): Promise<{ forgotten: boolean; dropped: number }>;
  close(): Promise<void>;
}

class DaemonError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

function call<T>(sock: string, method: string, url: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: sock, method, path: url }, async (res) => {
      const parts: Buffer[] = [];
      for await (const p of res) parts.push(p as Buffer);
      try {
        const body = JSON.parse(Buffer.concat(parts).toString('utf8'));
        if ((res.statusCode ?? 500) >= 400) reject(new DaemonError(body?.error?.code ?? 'internal', body?.error?.message ?? `daemon answered ${res.statusCode}`));
        else resolve(body as T);
      } catch (err) {
        reject(err);
      }
    });
    req.on('error', reject);
    req.end();
  });
}

async function openAccess(config: Config): Promise<SyncAccess> {
  let store;
  try {
    store = await openStore({ dir: path.join(config.dataDir, 'store'), cacheMaxBytes: config.cacheMaxBytes });
  } catch (err) {
    if (!isStoreError(err, 'locked')) throw err;
    const sock = socketPath(config.dataDir);
    const q = (params: Record<string, string | boolean>) => '?' + new URLSearchParams(Object.entries(params).map(([k, v]): [string, string] => [k, String(v)])).toString();
    return {
      via: 'daemon',
      status: () => call(sock, 'GET', '/local/sync/status'),
      pin: (name, pinned) => call(sock, 'POST', `/local/sync/pin${q({ name, pinned })}`),
      conflicts: async () => (await call<{ conflicts: ConflictRecord[] }>(sock, 'GET', '/local/sync/conflicts')).conflicts,
      once: () => call(sock, 'POST', '/local/sync/once'),
      forgetPeer: (peer) => call(sock, 'POST', `/local/sync/forget-peer${q({ peer })}`),
      close: async () => {},
    };
  }
  const db = new ClassicLevel<string, string>(path.join(config.dataDir, 'db'), { valueEncoding: 'utf8' });
  try {
    await db.open();
    const secrets = await loadSecrets(config.dataDir, config);
    const log = createLogger({ logLevel: 'warn', logFormat: 'json' }, process.stderr);
    const sync = await SyncRuntime.create({ store, db, log, settings: { ...config, peerSecret: secrets.peerSecret } });
    return {
      via: 'direct',
      status: () => sync.status(),
      pin: (name, pinned) => sync.pin(name, pinned),
      conflicts: () => sync.conflicts(),
      once: () => sync.once(),
      forgetPeer: (peer) => sync.forgetPeer(peer),
      close: async () => {
        await sync.close();
        await store.close();
        await db.close();
      },
    };
  } catch (err) {
    await store.close();
    await db.close().catch(() => {});
    throw err;
  }
}

const ago = (t: number | null): string => (t === null ? 'never' : `${Math.round((Date.now() - t) / 1000)} s ago`);

function printStatus(ctx: CommandContext, s: SyncStatus, via: string): void {
  const out = (line: string) => ctx.stdout.write(line + '\n');
  out(`role ${s.role}, peer id ${s.peerId}, index ${s.indexId}, local sequence ${s.localSequence}${via === 'direct' ? ' (daemon not running)' : ''}`);
  if (s.hub) {
    const h = s.hub;
    out(`hub ${h.hubUrl}: ${h.connection}${h.hub ? ` (peer ${h.hub.peerId}, sequence ${h.cursor} of ${h.hub.maxSequence}${h.caughtUp ? ', caught up' : ''})` : ''}`);
    if (h.lastError) out(`  last error: ${h.lastError} (${ago(h.disconnectedAt)}${h.nextAttemptAt ? `, next attempt in ${Math.max(0, Math.round((h.nextAttemptAt - Date.now()) / 1000))} s` : ''})`);
    if (h.fetchError) out(`  cannot fetch wanted files: ${h.fetchError}${h.fetchRetryAt ? ` (next attempt in ${Math.max(0, Math.round((h.fetchRetryAt - Date.now()) / 1000))} s)` : ''}`);
  } else if (s.role === 'pi') {
    out('hub: not configured (BALUPI_HUB_URL)');
  }
  if (s.root) out(`root ${s.root.path}: ${s.root.scanned ? 'scanned' : 'not scanned yet'}, written up to sequence ${s.root.writtenSequence}; ${s.root.ignore.length > 0 ? `left out: ${s.root.ignore.join(', ')}` : 'nothing left out'}`);
  if (s.root) {
    const k = s.root.kept;
    out(`  kept versions of replaced files: ${k.days > 0 ? `${k.bytes === null ? 'not counted yet' : formatBytes(k.bytes)} for ${k.days} days${k.maxBytes ? `, at most ${formatBytes(k.maxBytes)}` : ''}` : 'none (BALUPI_HUB_KEEP_DAYS=0)'}`);
  }
  if (s.root && s.root.awaitingBytes > 0) {
    out(`  ${s.root.awaitingBytes} file version(s) wait for a peer to send bytes that were changed or removed on disk before they were written`);
    out(`  ${s.root.awaitingPeers.length > 0 ? `peers not asked yet: ${s.root.awaitingPeers.join(', ')} (once every peer has been, versions nobody could send are dropped)` : 'every peer has been asked'}`);
  }
  for (const p of s.peers) out(`peer ${p.peerId} (${p.role}): last hello ${ago(p.at)}`);
  const q = s.queue;
  out(`upload queue: ${q.pending} pending, ${q.uploading} uploading, ${q.failed} failed, ${q.synced} synced; ${formatBytes(q.bytesPending)} in queued files, ${formatBytes(s.dirtyBytes)} of chunks not yet on the hub`);
  for (const f of s.failedUploads) {
    const retry = f.nextAttemptAt === null ? 'not retried until the file changes or `balupi sync --once`' : `next attempt in ${Math.max(0, Math.round((f.nextAttemptAt - Date.now()) / 1000))} s`;
    out(`  failed: ${f.path}: ${f.lastError ?? 'unknown error'} (${retry})`);
  }
  if (s.failedUploads.length < q.failed) out(`  (and ${q.failed - s.failedUploads.length} more failed)`);
  out(`conflicts: ${s.conflicts}; files waiting for their bytes: ${s.wantedFiles}`);
}

function options(args: string[]) {
  try {
    return parseArgs({ args, options: { json: { type: 'boolean' }, once: { type: 'boolean' } }, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

async function run(ctx: CommandContext, name: string, fn: (sync: SyncAccess) => Promise<number>): Promise<number> {
  let sync: SyncAccess | undefined;
  try {
    sync = await openAccess(ctx.config);
    return await fn(sync);
  } catch (err) {
    if (err instanceof UsageError) throw err;
    const code = (err as { code?: string }).code;
    ctx.stderr.write(`balupi ${name}: ${(err as Error).message}${code ? ` [${code}]` : ''}\n`);
    return 1;
  } finally {
    await sync?.close().catch(() => {});
  }
}

export async function status(args: string[], ctx: CommandContext): Promise<number> {
  const { values } = options(args);
  return run(ctx, 'status', async (sync) => {
    const s = await sync.status();
    if (values.json) ctx.stdout.write(JSON.stringify({ ...s, via: sync.via }, null, 2) + '\n');
    else printStatus(ctx, s, sync.via);
    return 0;
  });
}

export async function pin(args: string[], ctx: CommandContext, pinned: boolean): Promise<number> {
  const { values, positionals } = options(args);
  if (positionals.length !== 1) throw new UsageError(`usage: balupi ${pinned ? 'pin' : 'unpin'} NAME (a file or a directory; / for everything)`);
  return run(ctx, pinned ? 'pin' : 'unpin', async (sync) => {
    const r = await sync.pin(positionals[0]!, pinned);
    if (values.json) ctx.stdout.write(JSON.stringify(r, null, 2) + '\n');
    else ctx.stdout.write(`${pinned ? 'pinned' : 'unpinned'} ${r.files} file(s) at ${r.path || '/'}${r.wanted ? `; fetching the bytes of ${r.wanted}` : ''}\n`);
    return 0;
  });
}

export async function conflicts(args: string[], ctx: CommandContext): Promise<number> {
  const { values } = options(args);
  return run(ctx, 'conflicts', async (sync) => {
    const list = await sync.conflicts();
    if (values.json) ctx.stdout.write(JSON.stringify(list, null, 2) + '\n');
    else if (list.length === 0) ctx.stdout.write('no conflicts\n');
    else {
      for (const c of list) {
        const kept = c.copy ? `losing version kept as ${c.copy}` : 'the deletion lost, the file was kept';
        ctx.stdout.write(`${new Date(c.at).toISOString()}  ${c.path}: ${c.reason.replace('_', ' ')}; ${kept} (lost: ${c.loserPeer}, won: ${c.winnerPeer})\n`);
      }
    }
    return 0;
  });
}

export async function syncCommand(args: string[], ctx: CommandContext): Promise<number> {
  const { values } = options(args);
  if (!values.once) throw new UsageError('usage: balupi sync --once [--json] (the daemon syncs continuously by itself)');
  return run(ctx, 'sync', async (sync) => {
    const r = await sync.once();
    if (values.json) ctx.stdout.write(JSON.stringify(r, null, 2) + '\n');
    else ctx.stdout.write(`pulled ${r.pulled} change(s) (hub sequence ${r.cursor}), pushed ${r.pushed}, conflicts ${r.conflicts}, failed ${r.failed}, fetched ${r.fetchedFiles} file(s) (${formatBytes(r.fetchedBytes)})\n`);
    return r.failed > 0 ? 1 : 0;
  });
}

export async function forgetPeer(args: string[], ctx: CommandContext): Promise<number> {
  const { values, positionals } = options(args);
  if (positionals.length !== 1) throw new UsageError('usage: balupi forget-peer PEER_ID (on a hub: a pi that will not come back; see balupi status)');
  return run(ctx, 'forget-peer', async (sync) => {
    const r = await sync.forgetPeer(positionals[0]!);
    if (values.json) ctx.stdout.write(JSON.stringify(r, null, 2) + '\n');
    else ctx.stdout.write(r.forgotten ? `forgot peer ${positionals[0]}; ${r.dropped} version(s) nobody else could send dropped\n` : `no peer ${positionals[0]} known here\n`);
    return r.forgotten ? 0 : 1;
  });
}
