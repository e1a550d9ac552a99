// Bytes the hub lost before it wrote a pi's version out, sent again by the pi (lost-versions.ts, resend.ts). Found by
// bench/soak-sync.ts (seeds 140, 368; two pis 1011, 1014): a pi's version the hub acknowledged relied on chunks only a
// file of the hub's root held, and that file was saved over on the NAS before the root writer wrote the version. The
// hub could never write it, while the pi had the bytes; nothing told the pi.
//
// The pi is a real process. The hub is this project's hub code run in this process and served over HTTP/2 on loopback
// (h2-hub.ts), so that the test decides when its root writer starts: after the NAS's edit, which in the daemon lands
// within the milliseconds between the commit and the write.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { blake, piIngest, piStat, startPi, waitFor } from './peers.ts';
import { withH2Hub } from './h2-hub.ts';

test("a pi's version the hub acknowledged on bytes a root file held, that file saved over on the NAS before the hub wrote it: the pi sends those bytes again and the file is written", async () => {
  await withH2Hub('balupi-lost-resend-', async ({ root, store, state, hub, port, followStore }) => {
    const pi = await startPi({ hubGrpcPort: port });
    try {
      // 1.5 MiB: above the size whose bytes go inside the commit, so the pi's push relies on what the hub holds.
      const content = randomBytes(1536 * 1024);
      await fs.writeFile(path.join(root, 'a.bin'), content);
      await hub.refresh('a.bin');
      await waitFor('a.bin listed on the pi', async () => (await piStat(pi.dataDir, 'a.bin')) !== null);
      // The pi saves the same content as b.bin: the hub has every chunk (in a.bin), so none is uploaded.
      await piIngest(pi.dataDir, 'b.bin', content);
      const acked = await waitFor('b.bin acknowledged by the hub', async () => {
        const rec = await store.record('b.bin');
        return rec && !rec.deleted && rec.hash === (await blake(content)) ? rec : undefined;
      });
      assert.equal(store.stats().storedBytes, 0, 'no chunk was uploaded for it: its bytes are only in a.bin');
      // a.bin is saved over on the NAS before the hub's root writer got to b.bin, and the hub reads that edit.
      await fs.writeFile(path.join(root, 'a.bin'), randomBytes(content.length));
      await hub.refresh('a.bin');
      followStore();
      // The writer cannot write b.bin: it waits for its bytes, says so in the feed, the pi sends them, and it is written.
      const written = await waitFor('b.bin written into the root', async () => {
        const data = await fs.readFile(path.join(root, 'b.bin')).catch(() => null);
        return data?.equals(content) ? data : undefined;
      });
      assert.equal(written.length, content.length);
      const now = (await store.record('b.bin'))!;
      assert.equal(now.version, acked.version, 'the version the pi pushed, not a new one');
      assert.equal(now.state, 'local');
      assert.ok(now.seq > acked.seq, 'announced again');
      assert.equal(hub.lost.size, 0, 'nothing waits any more');
      // (The pi logs it once the upload's answer came, which may be after the hub wrote the file.)
      const resentLine = (l: Record<string, unknown>) => l.msg === 'sync sent the hub bytes it had lost again';
      await waitFor('the pi saying it sent them', async () => pi.logs.some(resentLine));
      const resent = pi.logs.filter(resentLine);
      assert.equal(resent.length, 1, 'the pi sent them once');
      assert.equal(resent[0]!.first, 'b.bin');
      // No conflict anywhere: the same name, the same version on both sides.
      assert.deepEqual((await fs.readdir(root)).filter((n) => n.includes('sync-conflict')), []);
      assert.equal((await state.listConflicts()).length, 0);
      const onPi = await waitFor('the pi in step', async () => {
        const s = await piStat(pi.dataDir, 'b.bin');
        return s?.hash === now.hash ? s : undefined;
      });
      assert.equal(onPi.state, 'local');
    } finally {
      await pi.stop();
    }
  });
});
