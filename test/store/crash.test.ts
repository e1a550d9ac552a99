import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { blake3, openStore } from '../../store/index.ts';
import { readAll, withTempDir } from './temp-store.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const nodeBin = path.join(here, '..', '..', 'node_modules', '.bin', 'node');
const worker = path.join(here, 'crash-worker.ts');

type Entry = { op: 'begin' | 'done'; kind: 'ingest' | 'delete'; path: string; hash?: string };

/** Committed state per path (hash, or null when deleted) and the operation that was in flight at the kill. */
async function replay(journal: string): Promise<{ committed: Map<string, string | null>; inFlight: Entry[] }> {
  const text = await fs.readFile(journal, 'utf8').catch(() => '');
  const committed = new Map<string, string | null>();
  let open: Entry | null = null;
  const inFlight: Entry[] = [];
  for (const line of text.split('\n')) {
    if (!line.endsWith('}')) continue; // the kill can cut the last line short
    const e = JSON.parse(line) as Entry;
    if (e.op === 'begin') {
      if (open) inFlight.push(open); // a previous round's op that never finished
      open = e;
    } else {
      committed.set(e.path, e.kind === 'delete' ? null : e.hash!);
      open = null;
    }
  }
  if (open) inFlight.push(open);
  return { committed, inFlight };
}

/** Runs the worker until it has completed `ops` operations, then SIGKILLs it after a random extra delay. */
async function runAndKill(dir: string, journal: string, ops: number): Promise<void> {
  const child = spawn(nodeBin, [worker, dir, journal], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => void (stderr += d.toString()));
  const exited = once(child, 'exit');
  let done = 0;
  let buffered = '';
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      buffered += d.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const l of lines) if (l.startsWith('op ') && ++done >= ops) resolve();
    });
    child.on('exit', (code) => reject(new Error(`worker exited early (${code}): ${stderr}`)));
  });
  // The random delay places the kill at an arbitrary point of the next operations (chunk writes, fsyncs, the
  // index batch, the unlinks after it); it is not waiting for anything.
  await new Promise((r) => setTimeout(r, Math.random() * 40));
  child.kill('SIGKILL');
  const [, signal] = await exited;
  assert.equal(signal, 'SIGKILL', `worker should die by SIGKILL; stderr: ${stderr}`);
}

test('SIGKILL at random points during ingests and deletes: committed files read back intact, fsck is clean, leftovers are removed', async () => {
  await withTempDir(async (root) => {
    const dir = path.join(root, 'store');
    const journal = path.join(root, 'journal.ndjson');
    const rounds = 10;
    for (let round = 0; round < rounds; round++) {
      await runAndKill(dir, journal, 1 + Math.floor(Math.random() * 6));
      const { committed, inFlight } = await replay(journal);
      const store = await openStore({ dir });
      try {
        const report = await store.fsck();
        assert.deepEqual(report.problems, [], `round ${round}: fsck after restart`);
        const uncertain = new Map<string, (string | null)[]>();
        for (const e of inFlight) uncertain.set(e.path, [...(uncertain.get(e.path) ?? []), e.kind === 'delete' ? null : e.hash!]);
        const paths = new Set([...committed.keys(), ...uncertain.keys()]);
        for (const p of paths) {
          const rec = await store.record(p);
          const actual = rec && !rec.deleted ? rec.hash : null;
          const allowed = [committed.get(p) ?? null, ...(uncertain.get(p) ?? [])];
          assert.ok(allowed.includes(actual), `round ${round}: ${p} is ${actual}, expected one of ${allowed.join(', ')}`);
          if (actual !== null) {
            const bytes = await readAll(await store.read(p));
            assert.equal(blake3().hash(bytes).toString('hex'), actual, `round ${round}: ${p} reads back byte-identical`);
          }
        }
        const live: string[] = [];
        for await (const r of store.changesSince(0)) if (!r.deleted) live.push(r.path);
        assert.deepEqual(live.filter((p) => !paths.has(p)), [], 'no file the journal does not know about');
        assert.deepEqual(await fs.readdir(path.join(dir, 'tmp')), [], 'temp files cleaned');
      } finally {
        await store.close();
      }
    }
  });
});
