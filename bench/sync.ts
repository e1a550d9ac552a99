// Sync benchmark, all on loopback, one run:
//   1. initial sync of a ~1 GB mixed tree (thousands of small files, a few large ones), hub -> pi and pi -> hub,
//      against rsync (daemon mode on 127.0.0.1, generated rsyncd.conf) moving the same tree;
//   2. bytes sent after a 1-byte insert in the middle of a 256 MiB file, balupi (pi -> hub) against rsync's delta;
//   3. chunk-stream throughput (DownloadChunks from a hub process) against a raw HTTP/2 stream of the same bytes.
// Goals: initial sync within 1.5x rsync's time; a 1-byte insert re-sends at most 2 chunks; chunk streaming >= 50 % of
// raw HTTP/2. Writes the figures to bench/SYNC-RESULTS.md.
//
// Run: npx node bench/sync.ts [--small N] [--large N] [--large-mib N] [--insert-mib N] [--repeat N] [--keep] [--free-gib N]
// --free-gib N holds all but N GiB of the available memory during the initial syncs (bench/_hold-memory.ts says why).
// (The issue's 200 MB kill -9 upload runs in the test suite itself: test/sync/resume.test.ts, ~10 s.)
// Needs rsync (apt-get install -y rsync).

import fs from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import http from 'node:http';
import http2 from 'node:http2';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { parseArgs } from 'node:util';
import { createInterface } from 'node:readline';
import { openStore } from '../store/index.ts';
import { holdAllBut } from './_hold-memory.ts';
import { createSyncClient, H2_CONNECTION_WINDOW, H2_SETTINGS } from '../src/sync/client.ts';
import { messageBuffers } from '../src/sync/message-buffers.ts';
import { hashToBytes } from '../src/sync/wire.ts';
import { startDaemonProcess, type DaemonProcess } from '../test/helpers/daemon-process.ts';
import { local, SECRET } from '../test/sync/peers.ts';
import { writeRandomFile } from '../test/helpers/random-file.ts';
import { run, startRsyncd, until } from './_rsyncd.ts';

const { values: opt } = parseArgs({
  options: {
    small: { type: 'string', default: '3000' },
    large: { type: 'string', default: '4' },
    'large-mib': { type: 'string', default: '224' },
    'insert-mib': { type: 'string', default: '256' },
    repeat: { type: 'string', default: '5' },
    keep: { type: 'boolean', default: false },
    'free-gib': { type: 'string' },
  },
});
const MiB = 1024 * 1024;
const SMALL = Number(opt.small);
const LARGE = Number(opt.large);
const LARGE_BYTES = Number(opt['large-mib']) * MiB;
const INSERT_BYTES = Number(opt['insert-mib']) * MiB;

if (spawnSync('rsync', ['--version']).status !== 0) {
  console.error('rsync is not installed: apt-get install -y rsync');
  process.exit(1);
}

const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'balupi-bench-sync-'));
const procs = new Set<DaemonProcess | ChildProcess>();
const cleanup = async () => {
  for (const p of procs) {
    if ('stop' in p) await p.stop();
    else p.kill('SIGTERM');
  }
  if (!opt.keep) await fs.rm(tmp, { recursive: true, force: true, maxRetries: 5 });
};
process.on('SIGINT', () => void cleanup().then(() => process.exit(130)));

const env: Record<string, string> = { ...(process.env.BENCH_PROF ? { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${process.env.BENCH_PROF}` } : {}), BALUPI_PEER_SECRET: SECRET, BALUPI_LOG_LEVEL: 'info', BALUPI_HUB_WATCH_DEBOUNCE_MS: '100', BALUPI_SYNC_RETRY_MIN_S: '0.2', BALUPI_SYNC_RETRY_MAX_S: '1' };
const secs = (ms: number) => (ms / 1000).toFixed(2);
const mb = (b: number) => (b / 1e6).toFixed(1);

async function listFiles(root: string, dir = root): Promise<{ rel: string; size: number }[]> {
  const out: { rel: string; size: number }[] = [];
  for (const e of await fs.readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const abs = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...(await listFiles(root, abs)));
    else if (e.isFile()) {
      const st = await fs.stat(abs).catch(() => null); // a chunk file the hub unlinks right now
      if (st) out.push({ rel: path.relative(root, abs), size: st.size });
    }
  }
  return out;
}

/** A process's peak resident memory so far (VmHWM), in MB; the Pi has 1 GB and the systemd unit caps at 450 MB. */
async function peakRssMb(pid: number | undefined): Promise<number> {
  const status = await fs.readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const kb = Number(/^VmHWM:\s+(\d+) kB/m.exec(status)?.[1] ?? NaN);
  return kb / 1024;
}

async function dropCaches(): Promise<void> {
  // Same page-cache state for every contender: flush dirty pages so one run's writeback does not slow the next.
  spawnSync('sync');
}

// ---------------------------------------------------------------------------------------------------------------
console.log(`tree: ${SMALL} small files (1-64 KiB) + ${LARGE} x ${LARGE_BYTES / MiB} MiB, in ${tmp}`);
const tree = path.join(tmp, 'tree');
for (let i = 0; i < SMALL; i++) await writeRandomFile(path.join(tree, `docs/d${i % 30}/f${i}.bin`), 1024 + Math.floor(Math.random() * 63 * 1024));
for (let i = 0; i < LARGE; i++) await writeRandomFile(path.join(tree, `video/v${i}.mp4`), LARGE_BYTES);
const treeFiles = await listFiles(tree);
const treeBytes = treeFiles.reduce((s, f) => s + f.size, 0);
console.log(`tree: ${treeFiles.length} files, ${mb(treeBytes)} MB`);

// rsync daemon --------------------------------------------------------------------------------------------------
const rsyncUp = path.join(tmp, 'rsync-up');
const rsyncInsert = path.join(tmp, 'rsync-insert');
await fs.mkdir(rsyncUp);
await fs.mkdir(rsyncInsert);
const rsyncd = await startRsyncd(tmp, { tree: { path: tree, readOnly: true }, up: { path: rsyncUp, readOnly: false }, insert: { path: rsyncInsert, readOnly: false } });
procs.add(rsyncd.proc);

// Initial syncs, REPEAT rounds, each contender once per round in turn (rsync pull, rsync --fsync pull, balupi pull,
// rsync push, balupi push), every run into fresh directories; the report compares medians. This machine's speed
// drifts by 3x within minutes, so one run of each, minutes apart, compared noise more than programs.
// rsync with --fsync (every written file fsynced) is the durability-equivalent baseline: balupi fsyncs chunks,
// index commits and the files it writes before it acknowledges anything.
// Nothing is deleted until the end: ext4 skips inodes freed in the last minutes when it allocates new ones, which
// made whoever ran right after a deletion of thousands of files pay for it (seen in kernel profiles).
let t = performance.now();
const hub = await startDaemonProcess({ env, args: ['--role', 'hub', '--root', tree], dataDir: path.join(tmp, 'hub') });
procs.add(hub);
await hub.waitForLog((l) => l.msg === 'hub root scanned');
const hubScanMs = performance.now() - t;
const dirMb = async (dir: string) => (await listFiles(dir)).reduce((a, f) => a + f.size, 0) / 1e6;
const hubDataMb = await dirMb(hub.dataDir);
console.log(`balupi hub: first start ingested the tree in ${secs(hubScanMs)} s (not part of the transfer); its data directory holds ${hubDataMb.toFixed(1)} MB`);

// The pi side of the push: the tree ingested once into a template data directory, copied for each round (the
// upload queue of a data directory is used up by its push).
const upTemplate = path.join(tmp, 'pi-up-template');
t = performance.now();
{
  const store = await openStore({ dir: path.join(upTemplate, 'store') });
  for (const f of treeFiles) await store.ingest(f.rel.split(path.sep).join('/'), createReadStream(path.join(tree, f.rel), { highWaterMark: MiB }), { mtimeMs: Date.now() });
  await store.close();
}
const piIngestMs = performance.now() - t;
console.log(`balupi pi: ingesting the tree locally took ${secs(piIngestMs)} s (clients' uploads; not part of the transfer)`);

/** hub -> pi: a fresh pi that pins everything, from process start until it holds every byte. */
async function balupiPull(round: number): Promise<{ ms: number; startMs: number; piRss: number }> {
  const piData = path.join(tmp, `pi-${round}`);
  // Pin everything before the pi starts (direct mode: no daemon holds the data directory yet).
  const pin = spawnSync(process.execPath, [new URL('../src/cli.ts', import.meta.url).pathname, '--data-dir', piData, 'pin', '/'], { env: { PATH: process.env.PATH ?? '', ...env } });
  if (pin.status !== 0) throw new Error(`pin /: ${pin.stderr}`);
  await dropCaches();
  const t0 = performance.now();
  const pi = await startDaemonProcess({ env: { ...env, BALUPI_HUB_URL: `http://127.0.0.1:${hub.ports.grpc}` }, args: ['--role', 'pi'], dataDir: piData });
  procs.add(pi);
  const startMs = performance.now() - t0;
  await until(async () => {
    const s = (await local(piData, 'GET', '/local/store/stats')).json();
    return s.localFiles === treeFiles.length && s.localBytes === treeBytes;
  });
  const ms = performance.now() - t0;
  const piRss = await peakRssMb(pi.proc.pid);
  await pi.stop();
  procs.delete(pi);
  return { ms, startMs, piRss };
}

/** pi -> hub: a copy of the template pi pushes to a fresh hub, until every file is in the hub's root folder. */
async function balupiPush(
  round: number,
): Promise<{ ms: number; hubDataMb: number; firstCommitMs: number; lastCommitMs: number; hubRss: number; piRss: number; hub: DaemonProcess; pi: DaemonProcess; piData: string; root: string }> {
  const piData = path.join(tmp, `pi-up-${round}`);
  if (spawnSync('cp', ['-a', upTemplate, piData]).status !== 0) throw new Error('copying the pi template failed');
  const root = path.join(tmp, `hub-up-root-${round}`);
  const hub2 = await startDaemonProcess({ env, args: ['--role', 'hub', '--root', root], dataDir: path.join(tmp, `hub-up-${round}`) });
  procs.add(hub2);
  await hub2.waitForLog((l) => l.msg === 'hub root scanned');
  await dropCaches();
  const t0 = performance.now();
  const startedAt = Date.now();
  const pi2 = await startDaemonProcess({ env: { ...env, BALUPI_HUB_URL: `http://127.0.0.1:${hub2.ports.grpc}` }, args: ['--role', 'pi'], dataDir: piData });
  procs.add(pi2);
  await until(async () => {
    // Cheap polls (the bench shares the CPU with both peers): the pi's queue, then the hub's root writer.
    const s = (await local(piData, 'GET', '/local/sync/status')).json();
    if (s.queue.pending + s.queue.uploading + s.queue.failed > 0 || s.dirtyBytes > 0) return false;
    const h = (await local(hub2.dataDir, 'GET', '/local/sync/status')).json();
    return h.localSequence > 0 && h.root.writtenSequence === h.localSequence;
  });
  const ms = performance.now() - t0;
  const files = await listFiles(root);
  if (files.length !== treeFiles.length || files.reduce((a, f) => a + f.size, 0) !== treeBytes) throw new Error('pi -> hub: the hub root does not hold the tree');
  const commitTimes = hub2.logs.filter((l) => l.msg === 'sync commit' || l.msg === 'sync commit batch').map((l) => Number(l.time) - startedAt);
  const [hubRss, piRss] = [await peakRssMb(hub2.proc.pid), await peakRssMb(pi2.proc.pid)];
  // The hub unlinks the chunk files of written files in the background: measure once that has settled.
  let hubDataMb = await dirMb(hub2.dataDir);
  for (let i = 0; i < 50; i++) {
    await new Promise((r) => setTimeout(r, 100));
    const now = await dirMb(hub2.dataDir);
    if (now === hubDataMb) break;
    hubDataMb = now;
  }
  return { ms, hubDataMb, firstCommitMs: Math.min(...commitTimes), lastCommitMs: Math.max(...commitTimes), hubRss, piRss, hub: hub2, pi: pi2, piData, root };
}

const held = opt['free-gib'] === undefined ? undefined : await holdAllBut(Number(opt['free-gib']));
if (!held && Number(await fs.readFile('/sys/module/page_reporting/parameters/reported_kib', 'utf8').catch(() => '0')) > 0) {
  console.log('note: this machine hands freed memory back to its host (free page reporting), which makes rsync\'s time bimodal; --free-gib 4 avoids that');
}
if (held) console.log(`holding ${held.heldGiB} GiB of memory during the initial syncs`);
const REPEAT = Math.max(1, Number(opt.repeat));
const rounds: {
  rsPull: number;
  rsPullFsync: number;
  pull: number;
  pullStart: number;
  pullPiRss: number;
  rsPush: number;
  rsPushFsync: number;
  push: number;
  firstCommit: number;
  lastCommit: number;
  pushHubRss: number;
  pushPiRss: number;
}[] = [];
let last: Awaited<ReturnType<typeof balupiPush>> | undefined;
// With memory held, a first round that is not counted fills what is left free with page cache, so that the counted
// rounds all write into recycled pages (without it the first round's rsync took 2.9 s, the others 1.1-1.3 s).
// (It is numbered REPEAT, after the counted ones, so that its directories have names of their own.)
const order = [...(held ? [REPEAT] : []), ...Array.from({ length: REPEAT }, (_, i) => i)];
for (const round of order) {
  // The last round's push daemons are kept for the measurements after the rounds; stopped before the next round, so
  // that no contender of it runs beside them.
  if (last) {
    await last.pi.stop();
    await last.hub.stop();
    procs.delete(last.pi);
    procs.delete(last.hub);
  }
  await dropCaches();
  const rsPull = await run('rsync', ['-a', `${rsyncd.url('tree')}/`, path.join(tmp, `rsync-pull-${round}`) + '/']);
  await dropCaches();
  const rsPullFsync = await run('rsync', ['-a', '--fsync', `${rsyncd.url('tree')}/`, path.join(tmp, `rsync-pull-fsync-${round}`) + '/']);
  const pull = await balupiPull(round);
  await dropCaches();
  const rsPush = await run('rsync', ['-a', tree + '/', `${rsyncd.url('up')}/${round}/`]);
  await dropCaches();
  const rsPushFsync = await run('rsync', ['-a', '--fsync', tree + '/', `${rsyncd.url('up')}/${round}-fsync/`]);
  last = await balupiPush(round);
  if (round === REPEAT) {
    console.log(`warm-up round (not counted): hub -> pi balupi ${secs(pull.ms)} s, rsync ${secs(rsPull.ms)} s; pi -> hub balupi ${secs(last.ms)} s, rsync ${secs(rsPush.ms)} s`);
    continue;
  }
  rounds.push({
    rsPull: rsPull.ms,
    rsPullFsync: rsPullFsync.ms,
    pull: pull.ms,
    pullStart: pull.startMs,
    pullPiRss: pull.piRss,
    rsPush: rsPush.ms,
    rsPushFsync: rsPushFsync.ms,
    push: last.ms,
    firstCommit: last.firstCommitMs,
    lastCommit: last.lastCommitMs,
    pushHubRss: last.hubRss,
    pushPiRss: last.piRss,
  });
  console.log(
    `round ${round + 1}/${REPEAT}: hub -> pi balupi ${secs(pull.ms)} s (start ${secs(pull.startMs)} s), rsync ${secs(rsPull.ms)} s, rsync --fsync ${secs(rsPullFsync.ms)} s; ` +
      `pi -> hub balupi ${secs(last.ms)} s (commits ${secs(last.firstCommitMs)}-${secs(last.lastCommitMs)} s), rsync ${secs(rsPush.ms)} s, rsync --fsync ${secs(rsPushFsync.ms)} s; ` +
      `peak RSS: pull pi ${pull.piRss.toFixed(0)} MB, push pi ${last.piRss.toFixed(0)} MB / hub ${last.hubRss.toFixed(0)} MB`,
  );
}
held?.release();
await hub.stop();
procs.delete(hub);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;
const med = (k: keyof (typeof rounds)[number]) => median(rounds.map((r) => r[k]));
const range = (k: keyof (typeof rounds)[number]) => `${secs(Math.min(...rounds.map((r) => r[k])))}–${secs(Math.max(...rounds.map((r) => r[k])))}`;
const pullMs = med('pull');
const pushMs = med('push');
const hub2 = last!.hub;
const upData = last!.piData;
const upRoot = last!.root;

// 1-byte insert in the middle of a large file -------------------------------------------------------------------
const big = path.join(tmp, 'insert', 'big.bin');
await writeRandomFile(big, INSERT_BYTES);
const edited = path.join(tmp, 'insert-edited', 'big.bin');
await fs.mkdir(path.dirname(edited), { recursive: true });
{
  const orig = await fs.readFile(big);
  const mid = Math.floor(orig.length / 2);
  await fs.writeFile(edited, Buffer.concat([orig.subarray(0, mid), Buffer.from([0x42]), orig.subarray(mid)]));
}
const ingestVia = async (file: string, name: string) => {
  const r = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = http.request({ socketPath: path.join(upData, 'balupi.sock'), method: 'POST', path: `/local/store/ingest?name=${encodeURIComponent(name)}`, headers: { 'content-type': 'application/octet-stream' } }, async (res) => {
      let body = '';
      for await (const d of res) body += d;
      resolve({ status: res.statusCode ?? 0, body });
    });
    req.on('error', reject);
    createReadStream(file, { highWaterMark: MiB }).pipe(req);
  });
  if (r.status !== 200) throw new Error(r.body);
  return JSON.parse(r.body);
};
const upTarget = path.join(upRoot, 'insert', 'big.bin');
const v1 = await ingestVia(big, 'insert/big.bin');
await until(async () => (await fs.stat(upTarget).catch(() => null))?.size === INSERT_BYTES);
const before = hub2.logs.filter((l) => l.msg === 'chunks received').length;
const v2 = await ingestVia(edited, 'insert/big.bin');
await until(async () => (await fs.stat(upTarget).catch(() => null))?.size === INSERT_BYTES + 1);
const after = hub2.logs.filter((l) => l.msg === 'chunks received').slice(before) as { received: number; bytes: number }[];
const insertChunks = after.reduce((s, l) => s + l.received, 0);
const insertBytes = after.reduce((s, l) => s + l.bytes, 0);
const v1Set = new Set((v1.file.chunks as { hash: string }[]).map((c) => c.hash));
const newChunks = (v2.file.chunks as { hash: string }[]).filter((c) => !v1Set.has(c.hash)).length;
console.log(`balupi 1-byte insert: ${insertChunks} chunk(s), ${insertBytes} bytes sent (${newChunks} new chunk(s) in the file of ${v2.file.chunks.length})`);
await run('rsync', ['-a', big, `${rsyncd.url('insert')}/big.bin`]);
const rsInsert = await run('rsync', ['-a', '--no-whole-file', '--stats', edited, `${rsyncd.url('insert')}/big.bin`]);
const stat = (name: string) => Number((new RegExp(`${name}: ([\\d,]+)`).exec(rsInsert.stdout)?.[1] ?? 'NaN').replace(/,/g, ''));
const rsLiteral = stat('Literal data');
const rsSent = stat('Total bytes sent');
console.log(`rsync 1-byte insert: ${rsSent} bytes sent (${rsLiteral} literal)`);

// chunk streaming vs raw HTTP/2 ---------------------------------------------------------------------------------
const client = createSyncClient({ baseUrl: `http://127.0.0.1:${hub2.ports.grpc}`, peerSecret: SECRET });
// For reference: the same calls through the generic Connect client (the server side is the same fast handler).
const genericClient = createSyncClient({ baseUrl: `http://127.0.0.1:${hub2.ports.grpc}`, peerSecret: SECRET, fastChunks: false });
const hashes = (v2.file.chunks as { hash: string }[]).map((c) => hashToBytes(c.hash));
async function chunkStream(c = client): Promise<number> {
  const t0 = performance.now();
  let n = 0;
  // Each message's buffer is given back once counted, as balupi's own receiver does once a chunk is stored (a no-op
  // for the generic client's buffers).
  for (let i = 0; i < hashes.length; i += 64) {
    for await (const m of c.downloadChunks({ hashes: hashes.slice(i, i + 64) })) {
      n += m.data.length;
      messageBuffers.give(m.data);
    }
  }
  if (n !== INSERT_BYTES + 1) throw new Error(`chunk stream moved ${n} bytes`);
  return n / ((performance.now() - t0) / 1000);
}
const rawServer = spawn(process.execPath, [new URL('./_sync-raw-h2.ts', import.meta.url).pathname, edited], { stdio: ['ignore', 'pipe', 'inherit'] });
procs.add(rawServer);
const rawPort = Number(await new Promise<string>((r) => createInterface({ input: rawServer.stdout! }).once('line', r)));
// The raw baseline runs with balupi's HTTP/2 settings and with Node's default 16 KiB frames (faster for it on this
// machine); the better of the two is the baseline.
async function rawStream(settings: http2.Settings): Promise<number> {
  const session = http2.connect(`http://127.0.0.1:${rawPort}`, { settings });
  await new Promise((r) => session.once('connect', r));
  session.setLocalWindowSize(H2_CONNECTION_WINDOW);
  try {
    const t0 = performance.now();
    const req = session.request({ ':path': '/' });
    let n = 0;
    for await (const d of req) n += (d as Buffer).length;
    if (n !== INSERT_BYTES + 1) throw new Error(`raw stream moved ${n} bytes`);
    return n / ((performance.now() - t0) / 1000);
  } finally {
    session.close();
  }
}
const chunkRates: number[] = [];
const rawRates: number[] = [];
const genericRates: number[] = [];
for (let i = 0; i < 3; i++) {
  chunkRates.push(await chunkStream());
  rawRates.push(await rawStream(H2_SETTINGS));
  rawRates.push(await rawStream({ initialWindowSize: H2_SETTINGS.initialWindowSize }));
  genericRates.push(await chunkStream(genericClient));
}
const best = (xs: number[]) => Math.max(...xs);
console.log(`chunk stream: ${mb(best(chunkRates))} MB/s; raw HTTP/2: ${mb(best(rawRates))} MB/s; generic client: ${mb(best(genericRates))} MB/s (best of 3 each)`);

await cleanup();

// Report ---------------------------------------------------------------------------------------------------------
const pullRatio = pullMs / med('rsPull');
const pushRatio = pushMs / med('rsPush');
const streamRatio = best(chunkRates) / best(rawRates);
const verdict = (ok: boolean) => (ok ? 'met' : 'NOT met');
const cpu = os.cpus();
const lines = [
  '# Sync benchmark results',
  '',
  `Measured by \`npx node bench/sync.ts\` on ${new Date().toISOString().slice(0, 10)}: ${cpu.length} × ${cpu[0]?.model ?? 'CPU'}, ` +
    `${Math.round(os.totalmem() / 2 ** 30)} GiB RAM, Node ${process.version}, ${spawnSync('rsync', ['--version']).stdout.toString().split('\n')[0]}. ` +
    'Everything on loopback (127.0.0.1), hub and pi as real `balupi serve` processes, rsync in daemon mode with a generated rsyncd.conf.',
  '',
  `Tree: ${treeFiles.length} files, ${mb(treeBytes)} MB (${SMALL} small files of 1–64 KiB in 30 directories, ${LARGE} × ${LARGE_BYTES / MiB} MiB), random (incompressible) bytes.`,
  '',
  '| measurement | balupi | rsync | ratio | goal |',
  '|---|---|---|---|---|',
  `| initial sync hub → pi (pi pins \`/\`, so it fetches every byte) | ${secs(pullMs)} s (${range('pull')}) | ${secs(med('rsPull'))} s (${range('rsPull')}) | ${pullRatio.toFixed(2)}× | ≤ 1.5× rsync: ${verdict(pullRatio <= 1.5)} |`,
  `| initial sync pi → hub (files land in the hub's root folder) | ${secs(pushMs)} s (${range('push')}) | ${secs(med('rsPush'))} s (${range('rsPush')}) | ${pushRatio.toFixed(2)}× | ≤ 1.5× rsync: ${verdict(pushRatio <= 1.5)} |`,
  `| initial sync hub → pi against \`rsync --fsync\` (durability-equivalent baseline, for reference) | ${secs(pullMs)} s | ${secs(med('rsPullFsync'))} s (${range('rsPullFsync')}) | ${(pullMs / med('rsPullFsync')).toFixed(2)}× | (no goal) |`,
  `| initial sync pi → hub against \`rsync --fsync\` (for reference) | ${secs(pushMs)} s | ${secs(med('rsPushFsync'))} s (${range('rsPushFsync')}) | ${(pushMs / med('rsPushFsync')).toFixed(2)}× | (no goal) |`,
  `| bytes sent after a 1-byte insert in the middle of a ${INSERT_BYTES / MiB} MiB file | ${insertBytes.toLocaleString('en')} B (${insertChunks} chunks) | ${rsSent.toLocaleString('en')} B (${rsLiteral.toLocaleString('en')} literal) | ${(insertBytes / rsSent).toFixed(1)}× | ≤ 2 chunks: ${verdict(insertChunks <= 2)} |`,
  `| chunk stream (DownloadChunks, ${INSERT_BYTES / MiB} MiB) vs raw HTTP/2 stream of the same bytes | ${mb(best(chunkRates))} MB/s | raw: ${mb(best(rawRates))} MB/s | ${(streamRatio * 100).toFixed(0)} % | ≥ 50 %: ${verdict(streamRatio >= 0.5)} |`,
  '',
  'Notes:',
  '',
  `- Initial syncs: ${REPEAT} rounds, each contender once per round in turn, every run into fresh directories; the table gives medians (range in brackets) and the ratio of the medians. ` +
    `Per round, hub → pi / pi → hub ratios: ${rounds.map((r) => `${(r.pull / r.rsPull).toFixed(1)}× / ${(r.push / r.rsPush).toFixed(1)}×`).join(', ')}.` +
    (held ? ` A helper held ${held.heldGiB} GiB of memory during them (\`--free-gib ${opt['free-gib']}\`), after a warm-up round that was not counted, so every contender wrote into recycled page-cache pages.` : ''),
  (held
    ? `- rsync writes into the page cache and syncs nothing, so its time is mostly that copy; with the memory held, every round's pages were recycled ones (on this VM, pages the guest freed go back to the host, and filling those costs several times more). `
    : `- rsync writes into the page cache and syncs nothing, so its time follows this VM's memory: pages the guest freed go back to the host (free page reporting), and filling such pages costs several times more than filling recycled ones (\`--free-gib\` holds memory to avoid that). `) +
    `Against rsync's fastest round, balupi's median is ${(pullMs / Math.min(...rounds.map((r) => r.rsPull))).toFixed(2)}× (hub → pi, rsync ${secs(Math.min(...rounds.map((r) => r.rsPull)))} s) and ` +
    `${(pushMs / Math.min(...rounds.map((r) => r.rsPush))).toFixed(2)}× (pi → hub, rsync ${secs(Math.min(...rounds.map((r) => r.rsPush)))} s).`,
  `- balupi times run from starting the pi process (median ${secs(med('pullStart'))} s of it is process start) until every byte is where it belongs; ` +
    `balupi fsyncs every chunk and every file it writes (rsync fsyncs nothing). Not counted: the hub's first ingest of the tree (${secs(hubScanMs)} s) ` +
    `and the pi's local ingest of the tree (${secs(piIngestMs)} s) — in use those happen as files arrive.`,
  `- pi → hub ends when the files are in the hub\'s root folder: the small files go in batches of up to 256 files, their bytes inside the CommitBatch itself (\`commit.inline\`; median first/last commit at ${secs(med('firstCommit'))}/${secs(med('lastCommit'))} s): the hub checks every chunk and whole-file hash and writes them straight into the root from a worker thread before it answers (temp name, mode, mtime, rename; one syncfs for the bytes and one for the renames per batch), with no chunk files; the chunks of the large files (8 MiB and more) went straight into a staging file beside the path as they arrived (around the page cache, their whole-file hash taken on the way), which the commit renames into place (each byte written once, never read back).`,
  `- Disk: the tree is ${(treeBytes / 1e6).toFixed(0)} MB. After its first start the hub's data directory holds ${hubDataMb.toFixed(1)} MB, and after the last push ${last!.hubDataMb.toFixed(1)} MB: the hub keeps the bytes of its root's files in the root (the store's backing folder), not in chunk files as well.`,
  `- Peak memory (VmHWM, median of the rounds): the pi pulling ${med('pullPiRss').toFixed(0)} MB; pushing, the pi ${med('pushPiRss').toFixed(0)} MB and the hub ${med('pushHubRss').toFixed(0)} MB (the Pi has 1 GB; deploy/balupi.service caps the daemon at 450 MB).`,
  `- The 1-byte insert: balupi sends whole new chunks (FastCDC, 256 KiB / 1 MiB / 4 MiB); the edited file had ${newChunks} new chunk(s). rsync sends a delta with ~sqrt(size) blocks; its "Total bytes sent" includes block checksums.`,
  `- Chunk stream: the hub process reads and BLAKE3-verifies each chunk where it keeps it (the pushed file, now in its root folder) into a reused buffer and sends it as gRPC frames (h2c, no compression; pre-encoded header + the chunk buffer) in 64-chunk calls; the raw baseline is a separate node process streaming the same file over plain HTTP/2 in 1 MiB writes, read with balupi\'s HTTP/2 settings (1 MiB frames) and with Node\'s default 16 KiB frames; the best of all 6 is the baseline. Best of 3 for balupi. The same calls through the generic Connect client: ${mb(best(genericRates))} MB/s.`,
  '',
];
// Everything below the marker is written by hand (analysis, the runs of each round) and kept as it is.
const resultsFile = new URL('./SYNC-RESULTS.md', import.meta.url);
const MARKER = '<!-- Below: written by hand, kept by bench/sync.ts -->';
const previous = await fs.readFile(resultsFile, 'utf8').catch(() => '');
const kept = previous.includes(MARKER) ? previous.slice(previous.indexOf(MARKER)) : `${MARKER}\n`;
await fs.writeFile(resultsFile, lines.join('\n') + kept);
console.log('\n' + lines.slice(6, 13).join('\n'));
console.log(`\nratios: hub->pi ${pullRatio.toFixed(2)}x rsync, pi->hub ${pushRatio.toFixed(2)}x rsync, 1-byte insert ${insertChunks} chunks, stream ${(streamRatio * 100).toFixed(0)} % of raw HTTP/2`);
