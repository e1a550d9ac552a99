// Sync soak, all on loopback: a hub and a pi (real processes) while random edits land on both sides at once — files
// written, removed and moved in the hub's root, written and removed on the pi (which pins everything), the hub
// restarted now and then — then a wait until the two agree: the same files, with the same bytes, every one of them
// on the pi, nothing left in its upload queue. Conflict copies are files like any other; both sides must have them.
// Each seed is one such run with its own sequence of edits (timing still varies). Prints one line per seed and, for
// one that does not settle, what differs and the last warnings of both daemons. Exit code 1 if any seed did not.
//
// Run: npx node bench/soak-sync.ts [--seeds 10] [--first 1] [--steps 60]
// Found this way (twentieth round of bench/SYNC-RESULTS.md): conflict copies standing for bytes that were gone.

import fs from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { blake, cli, hubFiles, local, piFiles, piIngest, piStat, startHub, startPi, tempDir, waitFor, type DaemonProcess } from '../test/sync/peers.ts';

const { values: opt } = parseArgs({ options: { seeds: { type: 'string', default: '10' }, first: { type: 'string', default: '1' }, steps: { type: 'string', default: '60' } } });
const NAMES = ['a.txt', 'b.bin', 'd1/c.txt', 'd1/d.bin', 'd2/e.txt', 'd2/sub/f.bin', 'g.txt'];
const SETTLE_MS = 40_000;

/** A small deterministic generator, so that a seed repeats its sequence of edits. */
function generator(seed: number) {
  let s = seed;
  const rnd = () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
  return { rnd, pick: <T>(a: T[]): T => a[Math.floor(rnd() * a.length)]! };
}

async function soak(seed: number, steps: number): Promise<boolean> {
  const { rnd, pick } = generator(seed);
  const content = () => (rnd() < 0.3 ? randomBytes(Math.floor(rnd() * 3_000_000) + 1) : Buffer.from(`text ${rnd()}`));
  const dir = await tempDir('balupi-soak-');
  const root = path.join(dir.path, 'root');
  await fs.mkdir(root);
  const hubData = path.join(dir.path, 'hub');
  let hub: DaemonProcess = await startHub({ root, dataDir: hubData });
  const port = hub.ports.grpc;
  const pi = await startPi({ hubGrpcPort: port, dataDir: path.join(dir.path, 'pi'), env: { BALUPI_SYNC_RETRY_MIN_S: '0.1', BALUPI_SYNC_RETRY_MAX_S: '0.3' } });
  try {
    await cli(pi.dataDir, ['pin', '/']);
    const ops: string[] = [];
    const earlierHubLogs: Record<string, unknown>[] = [];
    const onHub = (name: string) => path.join(root, ...name.split('/'));
    for (let step = 0; step < steps; step++) {
      const r = rnd();
      const name = pick(NAMES);
      try {
        if (r < 0.25) {
          await fs.mkdir(path.dirname(onHub(name)), { recursive: true });
          await fs.writeFile(onHub(name), content());
          ops.push(`hub write ${name}`);
        } else if (r < 0.35) {
          await fs.rm(onHub(name));
          ops.push(`hub rm ${name}`);
        } else if (r < 0.42) {
          const to = pick(NAMES);
          if (to === name) continue;
          await fs.mkdir(path.dirname(onHub(to)), { recursive: true });
          await fs.rename(onHub(name), onHub(to));
          ops.push(`hub mv ${name} ${to}`);
        } else if (r < 0.75) {
          await piIngest(pi.dataDir, name, content());
          ops.push(`pi write ${name}`);
        } else if (r < 0.85) {
          await local(pi.dataDir, 'POST', `/local/store/rm?name=${encodeURIComponent(name)}`);
          ops.push(`pi rm ${name}`);
        } else if (r < 0.9) {
          await hub.stop();
          earlierHubLogs.push(...hub.logs);
          hub = await startHub({ root, dataDir: hubData, grpcPort: port });
          ops.push('hub restart');
        }
      } catch {
        // a file that is not there (rm, mv), or a path that runs through a file: the next edit
      }
      await new Promise((res) => setTimeout(res, rnd() * 60));
    }
    const differences = async (): Promise<string[]> => {
      const h = (await hubFiles(root)).sort();
      const p = (await piFiles(pi.dataDir)).sort();
      const out = [...h.filter((f) => !p.includes(f)).map((f) => `only on the hub: ${f}`), ...p.filter((f) => !h.includes(f)).map((f) => `only on the pi: ${f}`)];
      for (const f of h.filter((x) => p.includes(x))) {
        const st = await piStat(pi.dataDir, f);
        if (st?.state !== 'local' || st.hash !== (await blake(await fs.readFile(onHub(f))))) out.push(`${f}: ${st?.state ?? 'missing'} on the pi, other bytes or none`);
      }
      const q = (await local(pi.dataDir, 'GET', '/local/sync/status')).json().queue;
      if (q.pending + q.uploading + q.failed > 0) out.push(`upload queue: ${JSON.stringify(q)}`);
      return out;
    };
    const settled = await waitFor('the two sides agreeing', async () => (await differences()).length === 0, SETTLE_MS).then(() => true, () => false);
    console.log(`seed ${seed}: ${settled ? 'settled' : 'DID NOT SETTLE'} (${ops.length} edits, ${(await hubFiles(root)).length} files)`);
    if (!settled) {
      const diffs = await differences();
      for (const d of diffs) console.log(`  ${d}`);
      // What the hub logged about those paths (conflicts, failed writes), restarts included.
      const named = diffs.map((d) => d.replace(/^only on the (hub|pi): /, '').split(':')[0]!);
      const base = (n: string) => n.replace(/\.sync-conflict-[^.]*/, '');
      for (const l of [...earlierHubLogs, ...hub.logs]) {
        const line = JSON.stringify(l);
        if (l.msg !== 'request' && named.some((n) => line.includes(n) || line.includes(`"${base(n)}"`))) console.log(`  hub said: ${line.slice(0, 400)}`);
      }
      console.log(`  edits: ${ops.join(' | ')}`);
      const warnings = (p: DaemonProcess) => p.logs.filter((l) => (l.level as number) >= 40).slice(-6).map((l) => `${l.msg} ${JSON.stringify(l.err ?? l.path ?? '')}`.slice(0, 300));
      console.log(`  pi: ${warnings(pi).join('\n      ')}`);
      console.log(`  hub: ${warnings(hub).join('\n       ')}`);
    }
    return settled;
  } finally {
    await pi.stop();
    await hub.stop();
    await dir.remove();
  }
}

const first = Number(opt.first);
let failed = 0;
for (let seed = first; seed < first + Number(opt.seeds); seed++) if (!(await soak(seed, Number(opt.steps)))) failed += 1;
console.log(`${Number(opt.seeds) - failed} of ${opt.seeds} seeds settled`);
process.exitCode = failed > 0 ? 1 : 0;
