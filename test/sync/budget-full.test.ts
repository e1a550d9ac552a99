// A pi told to keep more than its cache budget holds: it pins everything on a hub whose files do not all fit. The
// fetch then fails with cache_full, which is the pi's own condition, not the hub's. The session must stay up: ending
// it made the pi reconnect in a loop and cancel its downloads, and the hub answered with ENHANCE_YOUR_CALM (seen in a
// benchmark that filled the disk). The error must show in `balupi status`, and once there is room the retry fetches
// the rest. Two real processes on loopback.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { cli, piStat, piStatus, startHub, startPi, tempDir, waitFor, writeRandomFile } from './peers.ts';

const MiB = 1024 * 1024;
const retrying = (l: Record<string, unknown>) => l.msg === 'sync cannot store the wanted files here; will retry';
const connected = (l: Record<string, unknown>) => l.msg === 'sync connected to the hub';

test('pinned files beyond the cache budget: the pi stays connected, says why in status, and fetches the rest once there is room', async () => {
  const root = await tempDir();
  const piDir = await tempDir();
  const hub = await startHub({ root: root.path });
  try {
    // 4 x 3 MiB of incompressible bytes against a 10 MiB budget: three fit, the fourth cannot.
    await fs.mkdir(path.join(root.path, 'big'));
    for (let i = 0; i < 4; i++) await writeRandomFile(path.join(root.path, 'big', `f${i}.bin`), 3 * MiB);
    assert.equal((await cli(piDir.path, ['pin', '/'])).code, 0);
    const pi = await startPi({ hubGrpcPort: hub.ports.grpc, dataDir: piDir.path, env: { BALUPI_CACHE_MAX_BYTES: String(10 * MiB) }, waitConnected: false });
    try {
      const names = ['big/f0.bin', 'big/f1.bin', 'big/f2.bin', 'big/f3.bin'];
      await waitFor('all four records on the pi', async () => (await Promise.all(names.map((n) => piStat(piDir.path, n)))).every((s) => s !== null), 60_000);
      // Two failed attempts in a row, and still the one connection of the start.
      await pi.waitForLog(retrying);
      await waitFor('a second fetch attempt', async () => pi.logs.filter(retrying).length >= 2, 60_000);
      assert.equal(pi.logs.filter(connected).length, 1, 'the session was not ended for a full budget');
      const s = await piStatus(piDir.path);
      assert.equal(s.hub.connection, 'connected');
      assert.match(s.hub.fetchError, /cache full/);
      assert.equal(s.hub.lastError, null);
      const states = await Promise.all(names.map(async (n) => (await piStat(piDir.path, n)).state));
      assert.ok(states.includes('remote') && states.includes('local'), `some files fetched, some waiting: ${states}`);
      const shown = await cli(piDir.path, ['status']);
      assert.match(shown.stdout, /cannot fetch wanted files: cache full/);

      // Room: one of the fetched files is deleted on the hub; the pi deletes it too, and the waiting file fits now.
      const gone = names[states.indexOf('local')]!;
      await fs.rm(path.join(root.path, gone));
      const rest = names.filter((n) => n !== gone);
      await waitFor('the remaining files local on the pi', async () => (await Promise.all(rest.map((n) => piStat(piDir.path, n)))).every((st) => st?.state === 'local'), 60_000);
      await waitFor('the fetch error cleared', async () => (await piStatus(piDir.path)).hub.fetchError === null);
      assert.equal(await piStat(piDir.path, gone).then((st) => st?.deleted ?? st === null), true);
      assert.equal(pi.logs.filter(connected).length, 1, 'still the first session');
    } finally {
      await pi.stop();
    }
  } finally {
    await hub.stop();
    await root.remove();
    await piDir.remove();
  }
});
