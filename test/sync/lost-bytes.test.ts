// A pi moves a file it never fetched (a name with no bytes here), while the hub, asleep, no longer has those bytes
// either (the file was saved over on the NAS): the new name's push can never succeed. Found by bench/soak-sync.ts
// (seeds 262 and 1001): it was retried at every backoff for good; then (twenty-first round) it failed for good, and
// the name stayed on that pi without bytes, a file no client could read (seeds 365, 1001, 1315). Now the name goes
// there too, listed as a conflict the NAS's edit won; the session stays up, and the rest syncs: the old name comes
// back with the NAS's edit (modify beats delete).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { blake, cli, local, piCat, piStat, startHub, startPi, tempDir, waitFor } from './peers.ts';

test("a pi's move of a file it never fetched, whose bytes the hub no longer has: the new name goes on the pi too, listed as a conflict; nothing is retried; the session stays up", async () => {
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
    // The pi says so once it has removed the name and listed the conflict.
    const said = (l: Record<string, unknown>) => /neither this Pi nor the hub has the bytes of this version/.test(String(l.msg));
    await waitFor('the pi saying why y.bin goes', async () => pi.logs.some(said));
    assert.equal(await piStat(pi.dataDir, 'y.bin'), null, 'y.bin gone on the pi');
    const dropped = pi.logs.filter(said);
    assert.equal(dropped.length, 1, 'said once, with the reason');
    assert.equal(dropped[0]!.path, 'y.bin');
    const conflicts = JSON.parse((await cli(pi.dataDir, ['conflicts', '--json'])).stdout) as { path: string; copy: string | null; reason: string; loserPeer: string }[];
    const c = conflicts.find((x) => x.path === 'y.bin');
    assert.equal(c?.reason, 'modified_vs_deleted', JSON.stringify(conflicts));
    assert.equal(c?.copy, null, 'nothing to keep: nobody has the bytes');
    // The rest syncs in the same session: x.bin comes back on the pi with the NAS's edit (its deletion lost).
    await waitFor("x.bin on the pi with the NAS's edit", async () => (await piStat(pi.dataDir, 'x.bin'))?.hash === (await blake(edit)));
    await cli(pi.dataDir, ['pin', 'x.bin']);
    await waitFor('x.bin fetched', async () => (await piStat(pi.dataDir, 'x.bin'))?.state === 'local');
    assert.ok((await piCat(pi.dataDir, 'x.bin')).equals(edit));
    // Both sides agree: y.bin nowhere, nothing left in the queue.
    await assert.rejects(fs.stat(path.join(root, 'y.bin')), { code: 'ENOENT' });
    await waitFor('the upload queue empty', async () => {
      const q = (await local(pi.dataDir, 'GET', '/local/sync/status')).json().queue;
      return q.pending + q.uploading + q.failed === 0;
    });
    const status = (await local(pi.dataDir, 'GET', '/local/sync/status')).json();
    assert.equal(status.hub.connection, 'connected');
    // (While the hub stopped, the pi may have connected once more, to the stopping hub: those ends are before.)
    const ends = pi.logs.slice(sinceBack).filter((l) => /sync (hub unreachable|session ended)/.test(String(l.msg))).map((l) => l.err);
    assert.deepEqual(ends, [], 'no session ended since the NAS came back: not by the lost bytes either');
  } finally {
    await pi.stop();
    await hub.stop();
    await dir.remove();
  }
});
