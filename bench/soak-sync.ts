// Sync soak, all on loopback: a hub and one or more pis (real processes) while random edits land on all sides at
// once — files written, removed and moved (files and folders) in the hub's root (some written as BaluHost stores an
// upload, in its .tmp folder and then moved into place, some removed into its trash), written, removed and moved on a pi
// (each pins everything), now and then a file of 9-20 MiB (the large-file paths: staging files, the large fetch lane),
// a daemon stopped or killed with SIGKILL (the hub then stays down for a few edits, as a sleeping NAS) — then a wait
// until all agree: the same files, with the same bytes, every one of them on every pi, nothing left in an upload
// queue. Conflict copies are files like any other; every side must have them. Each seed is one such run with its own
// sequence of edits (timing still varies). Prints one line per seed and, for one that does not settle, what differs,
// the last warnings of each daemon, and where their whole logs were written. Exit code 1 if any seed did not.
//
// Run: npx node bench/soak-sync.ts [--seeds 10] [--first 1] [--steps 60] [--pis 1] [--keep (a failed seed's directories)]
// Found this way (twentieth and twenty-first rounds of bench/SYNC-RESULTS.md): conflict copies standing for bytes that
// were gone, temp files a killed hub left, a watcher blind to a replaced folder, commits stuck in a reconnect loop.

import fs from 'node:fs/promises';
import path from 'node:path';
import os from 'node:os';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { isStagingName } from '../src/sync/staging.ts';
import { DEFAULT_HUB_IGNORE, IgnoreRules } from '../src/sync/ignore.ts';
import { blake, cli, hubFiles, local, piFiles, piIngest, piStat, startHub, startPi, tempDir, waitFor, type DaemonProcess } from '../test/sync/peers.ts';

const { values: opt } = parseArgs({ options: { seeds: { type: 'string', default: '10' }, first: { type: 'string', default: '1' }, steps: { type: 'string', default: '60' }, keep: { type: 'boolean', default: false }, pis: { type: 'string', default: '1' } } });
const NAMES = ['a.txt', 'b.bin', 'd1/c.txt', 'd1/d.bin', 'd2/e.txt', 'd2/sub/f.bin', 'g.txt'];
const DIRS = ['d1', 'd2', 'd2/sub', 'd3'];
const SETTLE_MS = 40_000;
/** The hub's default BALUPI_HUB_IGNORE: its trash and upload folder are not compared. */
const leftOut = new IgnoreRules(DEFAULT_HUB_IGNORE);

class RestartFailed extends Error {}

/** A small deterministic generator, so that a seed repeats its sequence of edits. */
function generator(seed: number) {
  let s = seed;
  const rnd = () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
  return { rnd, pick: <T>(a: T[]): T => a[Math.floor(rnd() * a.length)]! };
}

/** One pi of the soak: its daemon (restarted now and then), its data directory, its logs of earlier runs. */
interface SoakPi {
  name: string;
  data: string;
  proc: DaemonProcess;
  earlierLogs: Record<string, unknown>[];
  token: string;
}

async function soak(seed: number, steps: number, piCount: number): Promise<boolean> {
  const { rnd, pick } = generator(seed);
  const content = () => {
    const r = rnd();
    if (r < 0.05) return randomBytes(9 * 2 ** 20 + Math.floor(rnd() * 11 * 2 ** 20));
    return r < 0.3 ? randomBytes(Math.floor(rnd() * 3_000_000) + 1) : Buffer.from(`text ${rnd()}`);
  };
  const dir = await tempDir('balupi-soak-');
  const root = path.join(dir.path, 'root');
  await fs.mkdir(root);
  const hubData = path.join(dir.path, 'hub');
  // The hub reads its whole root again every 5 s (hourly by default): changes its watcher misses (a folder replaced
  // right after it was made; test/sync/hub-watcher-replaced-dir.test.ts) are then found within the settling wait.
  const hubEnv = { BALUPI_HUB_RESCAN_S: '5' };
  let hub: DaemonProcess = await startHub({ root, dataDir: hubData, env: hubEnv });
  const port = hub.ports.grpc;
  const piEnv = { BALUPI_SYNC_RETRY_MIN_S: '0.1', BALUPI_SYNC_RETRY_MAX_S: '0.3' };
  let settled = false;
  const pis: SoakPi[] = [];
  try {
    for (let i = 0; i < piCount; i++) {
      const name = piCount === 1 ? 'pi' : `pi${i + 1}`;
      const data = path.join(dir.path, name);
      const proc = await startPi({ hubGrpcPort: port, dataDir: data, env: piEnv });
      await cli(data, ['pin', '/']);
      const token = (await cli(data, ['token', '--user', 'admin', '--user-role', 'admin'])).stdout.trim();
      pis.push({ name, data, proc, earlierLogs: [], token });
    }
    // With one pi no pick: a seed's sequence of edits stays what it was before there could be more.
    const anyPi = () => (pis.length === 1 ? pis[0]! : pick(pis));
    const piMove = async (pi: SoakPi, from: string, to: string) => {
      const res = await fetch(`http://127.0.0.1:${pi.proc.ports.http}/api/files/move`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${pi.token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ source_path: from, destination_path: to }),
      });
      if (!res.ok) throw new Error(`move: ${res.status}`);
    };
    const ops: string[] = [];
    const earlierHubLogs: Record<string, unknown>[] = [];
    // The hub stays down for a few edits after it is stopped (the NAS asleep: both sides change meanwhile).
    let hubDownFor = 0;
    const stop = async (p: DaemonProcess, who: string, earlier: Record<string, unknown>[], signal: NodeJS.Signals) => {
      p.proc.kill(signal);
      await p.exited;
      earlier.push(...p.logs);
      ops.push(`${who} ${signal === 'SIGKILL' ? 'killed' : 'stopped'}`);
    };
    const startHubAgain = async () => {
      hub = await startHub({ root, dataDir: hubData, grpcPort: port, env: hubEnv });
      ops.push('hub started');
    };
    const onHub = (name: string) => path.join(root, ...name.split('/'));
    for (let step = 0; step < steps; step++) {
      const r = rnd();
      const name = pick(NAMES);
      try {
        if (r < 0.25) {
          await fs.mkdir(path.dirname(onHub(name)), { recursive: true });
          if (step % 3 === 0) {
            // As BaluHost stores an upload: written in its .tmp folder (left out of the sync), then moved into place.
            const tmp = onHub(`.tmp/upload-${step}`);
            await fs.mkdir(path.dirname(tmp), { recursive: true });
            await fs.writeFile(tmp, content());
            await fs.rename(tmp, onHub(name));
            ops.push(`hub upload ${name}`);
          } else {
            await fs.writeFile(onHub(name), content());
            ops.push(`hub write ${name}`);
          }
        } else if (r < 0.33) {
          if (step % 2 === 0) {
            // Into BaluHost's trash (left out of the sync): gone for the pis, kept on the NAS.
            const trash = onHub(`.Trash-1000/files/${path.basename(name)}.${step}`);
            await fs.mkdir(path.dirname(trash), { recursive: true });
            await fs.rename(onHub(name), trash);
            ops.push(`hub trash ${name}`);
          } else {
            await fs.rm(onHub(name));
            ops.push(`hub rm ${name}`);
          }
        } else if (r < 0.36) {
          const [from, to] = [pick(DIRS), pick(DIRS)];
          if (to.startsWith(from)) continue;
          await fs.rm(onHub(to), { recursive: true, force: true });
          await fs.mkdir(path.dirname(onHub(to)), { recursive: true });
          await fs.rename(onHub(from), onHub(to));
          ops.push(`hub mv ${from}/ ${to}/`);
        } else if (r < 0.42) {
          const to = pick(NAMES);
          if (to === name) continue;
          await fs.mkdir(path.dirname(onHub(to)), { recursive: true });
          await fs.rename(onHub(name), onHub(to));
          ops.push(`hub mv ${name} ${to}`);
        } else if (r < 0.72) {
          const pi = anyPi();
          await piIngest(pi.data, name, content());
          ops.push(`${pi.name} write ${name}`);
        } else if (r < 0.8) {
          const pi = anyPi();
          await local(pi.data, 'POST', `/local/store/rm?name=${encodeURIComponent(name)}`);
          ops.push(`${pi.name} rm ${name}`);
        } else if (r < 0.85) {
          const pi = anyPi();
          const to = pick(NAMES);
          if (to === name) continue;
          await piMove(pi, name, to);
          ops.push(`${pi.name} mv ${name} ${to}`);
        } else if (r < 0.88) {
          if (hubDownFor > 0) continue;
          await stop(hub, 'hub', earlierHubLogs, rnd() < 0.5 ? 'SIGTERM' : 'SIGKILL');
          hubDownFor = 1 + Math.floor(rnd() * 6);
        } else if (r < 0.9) {
          const pi = anyPi();
          await stop(pi.proc, pi.name, pi.earlierLogs, rnd() < 0.5 ? 'SIGTERM' : 'SIGKILL');
          // Outside the edits' catch: a pi that cannot start again is a finding, not a skipped edit.
          pi.proc = await startPi({ hubGrpcPort: port, dataDir: pi.data, env: piEnv, waitConnected: false }).catch((err: unknown) => {
            throw new RestartFailed(`${pi.name} could not start again: ${(err as Error).message}`);
          });
        }
      } catch (err) {
        // a file that is not there (rm, mv), or a path that runs through a file: the next edit
        if (err instanceof RestartFailed) throw err;
      }
      if (hubDownFor > 0 && --hubDownFor === 0) await startHubAgain();
      await new Promise((res) => setTimeout(res, rnd() * 60));
    }
    if (hubDownFor > 0) await startHubAgain();
    const differences = async (): Promise<string[]> => {
      // A staging file of an upload abandoned when its file changed again on the pi stays until the hub's upkeep (a
      // day; README, Sync): not a difference. Any other temp file is.
      const h = (await hubFiles(root)).filter((f) => !isStagingName(path.basename(f)) && !leftOut.ignores(f));
      const out: string[] = [];
      for (const pi of pis) {
        const p = await piFiles(pi.data);
        out.push(...h.filter((f) => !p.includes(f)).map((f) => `only on the hub, not on ${pi.name}: ${f}`), ...p.filter((f) => !h.includes(f)).map((f) => `only on ${pi.name}: ${f}`));
        for (const f of h.filter((x) => p.includes(x))) {
          const st = await piStat(pi.data, f);
          if (st?.state !== 'local' || st.hash !== (await blake(await fs.readFile(onHub(f))))) out.push(`${f}: ${st?.state ?? 'missing'} on ${pi.name}, other bytes or none`);
        }
        const q = (await local(pi.data, 'GET', '/local/sync/status')).json().queue;
        if (q.pending + q.uploading + q.failed > 0) out.push(`upload queue of ${pi.name}: ${JSON.stringify(q)}`);
      }
      return out;
    };
    settled = await waitFor('the sides agreeing', async () => (await differences()).length === 0, SETTLE_MS).then(() => true, () => false);
    const kinds = new Map<string, number>();
    for (const op of ops) {
      const kind = op.split(' ').slice(0, 2).join(' ');
      kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
    }
    const mix = [...kinds].map(([k, n]) => `${n} ${k}`).join(', ');
    // Versions whose bytes the hub lost before writing them, and the pis' uploads of them (lost-versions.ts).
    const count = (logs: Record<string, unknown>[], msg: RegExp) => logs.filter((l) => msg.test(String(l.msg))).length;
    const lost = count([...earlierHubLogs, ...hub.logs], /waiting for a peer to send them again/);
    const resent = pis.reduce((n, pi) => n + count([...pi.earlierLogs, ...pi.proc.logs], /sent the hub bytes it had lost again/), 0);
    // ...and names a pi dropped because nobody had their bytes any more (queue-pusher.ts).
    const dropped = pis.reduce((n, pi) => n + count([...pi.earlierLogs, ...pi.proc.logs], /neither this Pi nor the hub has the bytes/), 0);
    // ...and versions the hub dropped once every pi had acknowledged past them without their bytes (peer-acks.ts).
    const unreachable = count([...earlierHubLogs, ...hub.logs], /no peer has the bytes of this version any more/);
    // ...and versions the root writer had passed that a scan found missing from the root (root-audit.ts).
    const audited = [...earlierHubLogs, ...hub.logs].filter((l) => /root writer had passed are not in the root/.test(String(l.msg))).reduce((n, l) => n + Number(l.files), 0);
    const lostNote =
      (lost + resent > 0 ? `; ${lost} version(s) lost bytes on the hub, ${resent} resend(s)` : '') +
      (dropped > 0 ? `; ${dropped} name(s) without bytes dropped` : '') +
      (unreachable > 0 ? `; ${unreachable} version(s) nobody had dropped by the hub` : '') +
      (audited > 0 ? `; ${audited} version(s) a scan found missing from the root` : '');
    console.log(`seed ${seed}: ${settled ? 'settled' : 'DID NOT SETTLE'} (${ops.length} edits: ${mix}; ${(await hubFiles(root)).length} files${lostNote})`);
    if (!settled) {
      // A daemon that died meanwhile (its socket refuses): say so, with what it wrote to stderr, and go on reporting.
      for (const [who, d] of [['hub', hub], ...pis.map((pi) => [pi.name, pi.proc] as const)] as const) {
        if (d.proc.exitCode !== null || d.proc.signalCode !== null) console.log(`  ${who} EXITED (${d.proc.exitCode ?? d.proc.signalCode}): ${d.stderr().slice(-2000)}`);
      }
      const diffs = await differences().catch((err: unknown) => [`could not compare: ${(err as Error).message}`]);
      for (const d of diffs) console.log(`  ${d}`);
      // What the hub logged about those paths (conflicts, failed writes), restarts included.
      const named = diffs.map((d) => d.replace(/^only on [^:]*: /, '').split(':')[0]!);
      const base = (n: string) => n.replace(/\.sync-conflict-[^.]*/, '');
      for (const l of [...earlierHubLogs, ...hub.logs]) {
        const line = JSON.stringify(l);
        if (l.msg !== 'request' && named.some((n) => line.includes(n) || line.includes(`"${base(n)}"`))) console.log(`  hub said: ${line.slice(0, 400)}`);
      }
      console.log(`  edits: ${ops.join(' | ')}`);
      const warnings = (logs: Record<string, unknown>[]) => logs.filter((l) => (l.level as number) >= 40).slice(-6).map((l) => `${l.msg} ${JSON.stringify(l.err ?? l.path ?? '')}`.slice(0, 300));
      const all: [string, Record<string, unknown>[]][] = [['hub', [...earlierHubLogs, ...hub.logs]], ...pis.map((pi): [string, Record<string, unknown>[]] => [pi.name, [...pi.earlierLogs, ...pi.proc.logs]])];
      const files: string[] = [];
      for (const [who, logs] of all) {
        console.log(`  ${who}: ${warnings(logs).join(`\n  ${' '.repeat(who.length)}  `)}`);
        const file = path.join(os.tmpdir(), `balupi-soak-${seed}-${who}.jsonl`);
        await fs.writeFile(file, logs.map((l) => JSON.stringify(l)).join('\n'));
        files.push(file);
      }
      console.log(`  all logs: ${files.join(', ')}`);
    }
    return settled;
  } finally {
    for (const pi of pis) await pi.proc.stop();
    await hub.stop();
    if (settled || !opt.keep) await dir.remove();
    else console.log(`  kept: ${dir.path} (hub data in hub/, root in root/, pis' data in ${pis.map((p) => `${p.name}/`).join(', ')})`);
  }
}

const first = Number(opt.first);
let failed = 0;
for (let seed = first; seed < first + Number(opt.seeds); seed++) {
  const ok = await soak(seed, Number(opt.steps), Number(opt.pis)).catch((err: unknown) => {
    if (!(err instanceof RestartFailed)) throw err;
    console.log(`seed ${seed}: FAILED: ${err.message.slice(0, 2000)}`);
    return false;
  });
  if (!ok) failed += 1;
}
console.log(`${Number(opt.seeds) - failed} of ${opt.seeds} seeds settled`);
process.exitCode = failed > 0 ? 1 : 0;
