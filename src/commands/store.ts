// `balupi ingest|cat|ls|rm|fsck|gc|stats`: the store's command-line face. The dispatcher (src/cli.ts) resolves the
// data directory and passes it in ctx; each handler parses its own flags and returns the exit code:
// 0 ok, 1 the operation failed (or fsck found problems), 2 usage error or the store is unreachable.

import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { pipeline } from 'node:stream/promises';
import type { DirEntry, FsckReport, IngestResult, StoreStats } from '../../store/index.ts';
import { formatBytes, isStoreError } from '../../store/index.ts';
import type { StoreAccess } from './store-access.ts';
import { StoreUnavailable, openStoreAccess } from './store-access.ts';

export interface StoreCommandContext {
  dataDir: string;
  cacheMaxBytes: number | null;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

type Handler = (args: string[], ctx: StoreCommandContext) => Promise<number>;

class UsageError extends Error {}

const USAGE: Record<string, string> = {
  ingest: 'balupi ingest PATH... [--as NAME] [--json]',
  cat: 'balupi cat NAME',
  ls: 'balupi ls [DIR] [--json]',
  rm: 'balupi rm NAME [--json]',
  fsck: 'balupi fsck [--json]',
  gc: 'balupi gc [--json]',
  stats: 'balupi stats [--json]',
};

function parse(cmd: string, args: string[], extra: Record<string, { type: 'string' | 'boolean' }> = {}) {
  try {
    return parseArgs({ args, options: { json: { type: 'boolean' }, ...extra }, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(`${(err as Error).message}\nusage: ${USAGE[cmd]}`);
  }
}

const json = (ctx: StoreCommandContext, value: unknown): void => void ctx.stdout.write(JSON.stringify(value, null, 2) + '\n');
const out = (ctx: StoreCommandContext, line: string): void => void ctx.stdout.write(line + '\n');

function errorText(err: unknown): string {
  if (isStoreError(err)) return `${err.message} [${err.code}]`;
  return (err as Error)?.message ?? String(err);
}

/** Runs a command against the store (direct or through the daemon), mapping failures to messages and exit codes. */
function command(cmd: string, body: (args: string[], ctx: StoreCommandContext, store: StoreAccess) => Promise<number>): Handler {
  return async (args, ctx) => {
    let store: StoreAccess | undefined;
    try {
      store = await openStoreAccess(ctx.dataDir, ctx.cacheMaxBytes);
      return await body(args, ctx, store);
    } catch (err) {
      ctx.stderr.write(`balupi ${cmd}: ${errorText(err)}\n`);
      return err instanceof UsageError || err instanceof StoreUnavailable ? 2 : 1;
    } finally {
      await store?.close().catch(() => {});
    }
  };
}

/** Flags are checked before the store is opened, so a typo never waits for (or locks) the store. */
function checked(cmd: string, extra: Record<string, { type: 'string' | 'boolean' }>, run: Handler): Handler {
  return async (args, ctx) => {
    try {
      parse(cmd, args, extra);
    } catch (err) {
      ctx.stderr.write(`balupi ${cmd}: ${(err as Error).message}\n`);
      return 2;
    }
    return run(args, ctx);
  };
}

function ingestSummary(source: string, r: IngestResult): Record<string, unknown> {
  return { source, path: r.file.path, size: r.file.size, hash: r.file.hash, chunks: r.file.chunks.length, new_chunks: r.newChunks, new_bytes: r.newBytes, version: r.file.version };
}

const ingest = command('ingest', async (args, ctx, store) => {
  const { values, positionals } = parseArgs({ args, options: { json: { type: 'boolean' }, as: { type: 'string' } }, allowPositionals: true });
  if (positionals.length === 0) throw new UsageError(`no file given\nusage: ${USAGE.ingest}`);
  if (values.as !== undefined && positionals.length !== 1) throw new UsageError(`--as names one file, ${positionals.length} given`);
  const results: Record<string, unknown>[] = [];
  let failed = 0;
  for (const src of positionals) {
    const name = values.as ?? path.basename(src);
    try {
      const st = await fs.promises.stat(src);
      if (!st.isFile()) throw new Error(`${src} is not a regular file`);
      const r = await store.ingest(name, src, { mtimeMs: st.mtimeMs, mode: st.mode & 0o7777 });
      const s = ingestSummary(src, r);
      results.push(s);
      if (!values.json) {
        out(ctx, `${r.file.path}\t${r.file.size} bytes\tblake3 ${r.file.hash}\t${r.file.chunks.length} chunks (${r.newChunks} new, ${formatBytes(r.newBytes)} new)`);
      }
    } catch (err) {
      failed += 1;
      results.push({ source: src, path: name, error: { code: isStoreError(err) ? err.code : 'io', message: errorText(err) } });
      ctx.stderr.write(`balupi ingest: ${src}: ${errorText(err)}\n`);
    }
  }
  if (values.json) json(ctx, results);
  return failed > 0 ? 1 : 0;
});

const cat = command('cat', async (args, ctx, store) => {
  const { positionals } = parse('cat', args);
  if (positionals.length !== 1) throw new UsageError(`usage: ${USAGE.cat}`);
  const stream = await store.cat(positionals[0]!);
  // Every chunk is verified before its bytes are written; a damaged chunk stops the output there with an error.
  await pipeline(stream, ctx.stdout, { end: false });
  return 0;
});

function lsLine(e: DirEntry): string {
  if (e.type === 'dir') return `${''.padStart(12)}  ${''.padEnd(19)}  ${'dir'.padEnd(10)}  ${e.name}/`;
  const when = new Date(e.mtimeMs ?? 0).toISOString().slice(0, 19).replace('T', ' ');
  const state = `${e.state}${e.pinned ? ',pinned' : ''}`;
  return `${String(e.size).padStart(12)}  ${when}  ${state.padEnd(10)}  ${e.name}`;
}

const ls = command('ls', async (args, ctx, store) => {
  const { values, positionals } = parse('ls', args);
  if (positionals.length > 1) throw new UsageError(`usage: ${USAGE.ls}`);
  const entries = await store.list(positionals[0]);
  if (values.json) json(ctx, entries);
  else for (const e of entries) out(ctx, lsLine(e));
  return 0;
});

const rm = command('rm', async (args, ctx, store) => {
  const { values, positionals } = parse('rm', args);
  if (positionals.length !== 1) throw new UsageError(`usage: ${USAGE.rm}`);
  const tomb = await store.remove(positionals[0]!);
  if (values.json) json(ctx, { path: tomb.path, version: tomb.version, seq: tomb.seq, deleted: true });
  else out(ctx, `removed ${tomb.path}`);
  return 0;
});

function fsckText(ctx: StoreCommandContext, r: FsckReport): void {
  for (const p of r.problems) out(ctx, `${p.kind}\t${p.path ?? p.hash ?? '-'}\t${p.detail}`);
  const summary = `${r.files} files, ${r.chunks} chunks, ${formatBytes(r.bytesVerified)} re-hashed`;
  out(ctx, r.ok ? `fsck: ok (${summary})` : `fsck: ${r.problems.length} problem(s) (${summary})`);
}

const fsck = command('fsck', async (args, ctx, store) => {
  const { values } = parse('fsck', args);
  const r = await store.fsck();
  if (values.json) json(ctx, { ok: r.ok, files: r.files, chunks: r.chunks, bytes_verified: r.bytesVerified, problems: r.problems });
  else fsckText(ctx, r);
  return r.ok ? 0 : 1;
});

const gc = command('gc', async (args, ctx, store) => {
  const { values } = parse('gc', args);
  const r = await store.gc();
  if (values.json) {
    json(ctx, { temp_files: r.tempFiles, orphan_files: r.orphanFiles, orphan_bytes: r.orphanBytes, staged_chunks: r.stagedChunks, staged_bytes: r.stagedBytes });
  } else {
    out(ctx, `gc: removed ${r.tempFiles} temp file(s), ${r.orphanFiles} unreferenced chunk file(s) (${formatBytes(r.orphanBytes)}), ` +
      `${r.stagedChunks} expired staged chunk(s) (${formatBytes(r.stagedBytes)})`);
  }
  return 0;
});

function statsJson(s: StoreStats): Record<string, unknown> {
  return {
    files: s.files,
    local_files: s.localFiles,
    logical_bytes: s.logicalBytes,
    local_bytes: s.localBytes,
    stored_bytes: s.storedBytes,
    chunks: s.chunks,
    dedup_ratio: s.dedupRatio,
    dirty_chunks: s.dirtyChunks,
    dirty_bytes: s.dirtyBytes,
    budget_bytes: s.budgetBytes,
    budget_use: s.budgetUse,
    high_water: s.highWater,
    low_water: s.lowWater,
    seq: s.seq,
    hasher: s.hasher,
    chunk_params: { min: s.chunkParams.minSize, avg: s.chunkParams.avgSize, max: s.chunkParams.maxSize },
    backing_dir: s.backingDir ?? null,
  };
}

const stats = command('stats', async (args, ctx, store) => {
  const { values } = parse('stats', args);
  const s = await store.stats();
  if (values.json) {
    json(ctx, statsJson(s));
    return 0;
  }
  const pct = (x: number): string => `${(x * 100).toFixed(1)} %`;
  const rows: [string, string][] = [
    ['files', `${s.files} (${s.localFiles} local, ${s.files - s.localFiles} remote)`],
    ['logical bytes', `${formatBytes(s.logicalBytes)} (${s.logicalBytes})`],
    ['stored bytes', `${formatBytes(s.storedBytes)} (${s.storedBytes}) in chunk files` + (s.backingDir ? `; the files of ${s.backingDir} hold their own bytes` : '')],
    ['chunks', String(s.chunks)],
    ['dedup ratio', s.dedupRatio.toFixed(2)],
    ['dirty bytes', `${formatBytes(s.dirtyBytes)} in ${s.dirtyChunks} chunks (not yet on the hub)`],
    ['budget', `${pct(s.budgetUse)} of ${formatBytes(s.budgetBytes)} (evicts above ${pct(s.highWater)} down to ${pct(s.lowWater)})`],
    ['hasher', `BLAKE3 ${s.hasher}`],
  ];
  for (const [k, v] of rows) out(ctx, `${k.padEnd(14)} ${v}`);
  return 0;
});

export const storeCommands: Record<string, Handler> = {
  ingest: checked('ingest', { as: { type: 'string' } }, ingest),
  cat: checked('cat', {}, cat),
  ls: checked('ls', {}, ls),
  rm: checked('rm', {}, rm),
  fsck: checked('fsck', {}, fsck),
  gc: checked('gc', {}, gc),
  stats: checked('stats', {}, stats),
};
