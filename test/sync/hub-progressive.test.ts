// Files written into the hub's root bit by bit, as a copy or a download into the NAS folder writes them. chokidar drops
// a path's 'change' events for 50 ms after one it reported, so the hub must read such a file again after the last
// burst, not keep the version it read in the middle; and a file still growing while the hub reads it must not become
// a conflict with itself. Against a real hub process; the store is read back over its local API.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { local, startHub, tempDir, waitFor, type DaemonProcess } from './peers.ts';

let dir: Awaited<ReturnType<typeof tempDir>> | undefined;
let hub: DaemonProcess | undefined;
after(async () => {
  await hub?.stop();
  await dir?.remove();
});

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test('files written in bursts closer together than chokidar\'s change throttle end up in the hub complete, without conflicts', async () => {
  dir = await tempDir('balupi-progressive-');
  const root = path.join(dir.path, 'root');
  const hubData = path.join(dir.path, 'hub');
  await fs.mkdir(root);
  hub = await startHub({ root, dataDir: hubData });
  // Input: a small file appended to every 15 ms (inside the 50 ms throttle) and a 24 MiB one written in 1 MiB pieces
  // (long enough that the hub reads it while it grows). The pauses shape the writes; nothing waits on them.
  const small = path.join(root, 'notes', 'log.txt');
  const large = path.join(root, 'video', 'copy.bin');
  await fs.mkdir(path.dirname(small));
  await fs.mkdir(path.dirname(large));
  const smallWrites = (async () => {
    for (let i = 0; i < 12; i++) {
      await fs.appendFile(small, `line ${i}\n`);
      await pause(15);
    }
  })();
  const largeWrites = (async () => {
    const fh = await fs.open(large, 'w');
    try {
      for (let i = 0; i < 24; i++) {
        await fh.write(randomBytes(1024 * 1024));
        await pause(5);
      }
    } finally {
      await fh.close();
    }
  })();
  await Promise.all([smallWrites, largeWrites]);
  for (const [name, abs] of [['notes/log.txt', small], ['video/copy.bin', large]] as const) {
    const want = await fs.readFile(abs);
    await waitFor(`the hub holds all of ${name}`, async () => {
      const res = await local(hubData, 'GET', `/local/store/cat?name=${encodeURIComponent(name)}`);
      return res.status === 200 && res.body.equals(want);
    });
  }
  const conflicts = (await local(hubData, 'GET', '/local/sync/conflicts')).json();
  assert.deepEqual(conflicts.conflicts, [], 'no conflict recorded');
  const names = [...(await fs.readdir(path.join(root, 'notes'))), ...(await fs.readdir(path.join(root, 'video')))];
  assert.deepEqual(names.filter((n) => n.includes('sync-conflict')), [], 'no conflict copy in the root');
});
