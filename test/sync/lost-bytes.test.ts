// A pi moves a file it never fetched (a name with no bytes here), while the hub, asleep, no longer has those bytes
// either (the file was saved over on the NAS): the new name's push can never succeed. Found by bench/soak-sync.ts
// (seeds 262 and 1001): it was retried at every backoff for good. Now it fails for good, saying why; the
// session stays up, and the rest syncs: the old name comes back with the NAS's edit (modify beats delete).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { blake, cli, local, piCat, piStat, startHub, startPi, tempDir, waitFor } from './peers.ts';

test("a pi's move of a file it never fetched, whose bytes the hub no longer has: the push fails once, for good, with the reason; the session stays up", async () => {
  const dir = await tempDir('balupi-lost-bytes-');
  const root = path.join(dir.path, 'root');
  await fs.mkdir(root);
  await fs.writeFile(path.join(root, 'x.bin'), randomBytes(30_000));
  let hub = await startHub({ root, dataDir: path.join(dir.path, 'hub') });
  const pi = await startPi({ hubGrpcPort: hub.ports.grpc, dataDir: path.join(dir.path, 'pi') });
  try {
    await waitFor('x.bin listed on the pi, not fetched', async () => (await piStat(pi.dataDir, 'x.bin'))?.state === 'remote');
    // The NAS goes to sleep; meanwhile x.bin is saved over there, and the pi moves its x.bin (no bytes here) to y.bin.
    await hub.stop();
    const edit = randomBytes(20_000);
    await fs.writeFile(path.join(root, 'x.bin'), edit);
    const token = (await cli(pi.dataDir, ['token', '--user', 'admin', '--user-role', 'admin'])).stdout.trim();
    const moved = await fetch(`http://127.0.0.1:${pi.ports.http}/api/files/move`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ source_path: 'x.bin', destination_path: 'y.bin' }),
    });
    assert.equal(moved.status, 200);
    hub = await startHub({ root, dataDir: path.join(dir.path, 'hub'), grpcPort: hub.ports.grpc });
    const sinceBack = pi.logs.length; // the pi's log lines from when the NAS is back
    const row = await waitFor('y.bin failed for good', async () => {
      const items = (await local(pi.dataDir, 'GET', '/local/sync/queue')).json().items as { path: string; state: string; nextAttemptAt: number | null; lastError: string | null; attempts: number }[];
      const y = items.find((i) => i.path === 'y.bin');
      return y?.state === 'failed' && y.nextAttemptAt === null ? y : undefined;
    });
    assert.match(row.lastError ?? '', /neither this Pi nor the hub has the bytes of this version/);
    const shown = (await cli(pi.dataDir, ['status'])).stdout;
    assert.match(shown, /failed: y\.bin: neither this Pi nor the hub has the bytes of this version .*\(not retried until the file changes/, shown);
    // The rest syncs in the same session: x.bin comes back on the pi with the NAS's edit (its deletion lost).
    await waitFor("x.bin on the pi with the NAS's edit", async () => (await piStat(pi.dataDir, 'x.bin'))?.hash === (await blake(edit)));
    await cli(pi.dataDir, ['pin', 'x.bin']);
    await waitFor('x.bin fetched', async () => (await piStat(pi.dataDir, 'x.bin'))?.state === 'local');
    assert.ok((await piCat(pi.dataDir, 'x.bin')).equals(edit));
    const status = (await local(pi.dataDir, 'GET', '/local/sync/status')).json();
    assert.equal(status.hub.connection, 'connected');
    const items = (await local(pi.dataDir, 'GET', '/local/sync/queue')).json().items as { path: string; attempts: number }[];
    // (A push that met the hub still scanning, before it had read the edit, may have failed once before that.)
    assert.equal(items.find((i) => i.path === 'y.bin')?.attempts, row.attempts, `not tried again since: ${JSON.stringify(items)}`);
    // (While the hub stopped, the pi may have connected once more, to the stopping hub: those ends are before.)
    const ends = pi.logs.slice(sinceBack).filter((l) => /sync (hub unreachable|session ended)/.test(String(l.msg))).map((l) => l.err);
    assert.deepEqual(ends, [], 'no session ended since the NAS came back: not by the lost bytes either');
  } finally {
    await pi.stop();
    await hub.stop();
    await dir.remove();
  }
});
