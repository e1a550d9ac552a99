// A version the hub acknowledged and then lost the bytes of, that no peer has any more (bench/soak-sync.ts, three pis:
// seeds 2120, 4305). A conflict made a copy of a pi's version while that version waited for its bytes, and by then the
// pi had pushed a newer one and its old chunks were gone. Before, the copy waited for good: listed on every pi and
// never downloadable. Now every pi acknowledges the feed once it has sent what it held of the incomplete versions
// (SyncService.Acknowledge, resend.ts); once every peer that said Hello has acknowledged past such a version, nobody
// can complete it and the hub drops it (lost-versions.ts dropUnreachable). A peer that is away keeps it waiting, since
// it may hold the bytes.
//
// The pi is a real process; the hub is this project's hub code served over HTTP/2 in this process (h2-hub.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { PROTOCOL_VERSION } from '../../src/sync/wire.ts';
import { createSyncClient } from '../../src/sync/client.ts';
import { Role } from '../../src/gen/balupi/sync/v1/sync_pb.js';
import { blake, piIngest, piStat, SECRET, startPi, waitFor } from './peers.ts';
import { withH2Hub } from './h2-hub.ts';
import { Code, ConnectError } from '@connectrpc/connect';

test('a version whose bytes no peer has any more is dropped once every peer that said Hello acknowledged past it; a peer that is away keeps it waiting', async () => {
  await withH2Hub('balupi-lost-drop-', async ({ root, store, hub, acks, port, followStore }) => {
    followStore();
    // Input: a peer that said Hello once and has been away since (it may hold the bytes)...
    const away = createSyncClient({ baseUrl: `http://127.0.0.1:${port}`, peerSecret: SECRET });
    await away.hello({ peerId: 'AWAYPI2', role: Role.PI, protocolVersion: PROTOCOL_VERSION });
    // ...and a conflict copy the hub keeps of a version whose only chunk nobody holds (what keepCopy leaves when the
    // bytes went with an edit on the NAS and the pi that pushed them has dropped them since).
    const lost = randomBytes(200_000);
    const hash = await blake(lost);
    const name = 'docs/report.sync-conflict-20261125-080000-AWAYPI2.txt';
    const copy = await store.commitFile(name, { size: lost.length, mtimeMs: Date.now() - 60_000, mode: 0o644, chunks: [{ hash, size: lost.length }], hash }, { baseVersion: 0, allowRemote: true });
    assert.equal(copy.state, 'remote');
    assert.equal(hub.lost.size, 1, 'it waits for its bytes');
    // A file that does reach the hub meanwhile, to know when the pi has read past the copy.
    await fs.mkdir(path.join(root, 'docs'));
    await fs.writeFile(path.join(root, 'docs', 'after.txt'), 'a later change');
    await hub.refresh('docs/after.txt');

    const pi = await startPi({ hubGrpcPort: port });
    try {
      await waitFor('the pi read past the copy', async () => (await piStat(pi.dataDir, 'docs/after.txt')) !== null);
      await waitFor("the pi's acknowledgement", async () => acks.list(store.indexId).some((p) => p.peerId !== 'AWAYPI2' && p.acknowledged >= copy.seq));
      assert.ok(await piStat(pi.dataDir, name), 'listed on the pi, waiting');
      assert.equal((await store.record(name))?.state, 'remote', 'still waiting: AWAYPI2 has not been asked');
      assert.equal(hub.lost.size, 1);
      // An acknowledgement of another index, or of a sequence before the copy, changes nothing.
      await away.acknowledge({ peerId: 'AWAYPI2', indexId: 'not-this-index', sequence: BigInt(copy.seq + 100) });
      await away.acknowledge({ peerId: 'AWAYPI2', indexId: store.indexId, sequence: BigInt(copy.seq - 1) });
      assert.equal((await store.record(name))?.state, 'remote');
      // A request without a peer id is refused.
      await assert.rejects(away.acknowledge({ indexId: store.indexId, sequence: BigInt(copy.seq) }), /peer id/);

      // AWAYPI2 comes back, has nothing to send, and acknowledges past the copy: nobody is left to ask.
      await away.acknowledge({ peerId: 'AWAYPI2', indexId: store.indexId, sequence: BigInt(store.seq) });
      const dropped = await store.record(name);
      assert.equal(dropped?.deleted, true, 'dropped on the hub (a tombstone in the feed)');
      assert.equal(hub.lost.size, 0);
      await waitFor('gone from the pi too', async () => (await piStat(pi.dataDir, name)) === null);
      assert.deepEqual(await fs.readdir(path.join(root, 'docs')), ['after.txt'], 'nothing of it in the root');

      // A version whose bytes a peer does send is completed, not dropped, even when every acknowledgement is in.
      const kept = randomBytes(150_000);
      const keptHash = await blake(kept);
      const waiting = await store.commitFile('docs/kept.txt', { size: kept.length, mtimeMs: Date.now() - 60_000, mode: 0o644, chunks: [{ hash: keptHash, size: kept.length }], hash: keptHash }, { baseVersion: 0, allowRemote: true });
      assert.equal(waiting.state, 'remote');
      await piIngest(pi.dataDir, 'elsewhere/same-bytes.txt', kept); // the pi holds them, under another name
      await waitFor('written into the root once the pi sent them', async () => (await fs.readFile(path.join(root, 'docs', 'kept.txt')).catch(() => null))?.equals(kept));
      await away.acknowledge({ peerId: 'AWAYPI2', indexId: store.indexId, sequence: BigInt(store.seq) });
      assert.equal((await store.record('docs/kept.txt'))?.state, 'local');
    } finally {
      await pi.stop();
    }
  });
});

test('a pi whose resend the hub refuses (its disk is full) does not acknowledge that page, so the version is not dropped; it sends the bytes once the hub takes them', async () => {
  // Input: the hub refuses every upload with RESOURCE_EXHAUSTED, as with a full disk, while a version the pi holds the
  // bytes of waits on it. Before, the pi logged the refusal, acknowledged the page, and the hub, with every other
  // peer's acknowledgement in, dropped a version the pi could complete.
  let refusing = true;
  let refused = 0;
  await withH2Hub(
    'balupi-lost-refused-',
    async ({ root, store, hub, acks, port, followStore }) => {
      followStore();
      const pi = await startPi({ hubGrpcPort: port });
      try {
        // The pi holds the bytes (a file above the inline size, so its own push uploads and is refused too).
        const data = randomBytes(600_000);
        await piIngest(pi.dataDir, 'mine.bin', data);
        const chunks = (await piStat(pi.dataDir, 'mine.bin')).chunks as { hash: string; size: number }[];
        const waiting = await store.commitFile('waiting.bin', { size: data.length, mtimeMs: Date.now() - 60_000, mode: 0o644, chunks, hash: await blake(data) }, { baseVersion: 0, allowRemote: true });
        assert.equal(waiting.state, 'remote');
        await waitFor('the pi tried to resend, and was refused', async () => refused >= 2 && pi.logs.some((l) => l.msg === 'sync session ended by an error; will start over'));
        const mine = acks.list(store.indexId).find((p) => p.peerId !== 'AWAYPI2')!;
        assert.ok(mine.acknowledged < waiting.seq, `the pi did not acknowledge past it (${mine.acknowledged} < ${waiting.seq})`);
        // The only other peer acknowledges: still not dropped, the pi has not.
        const other = createSyncClient({ baseUrl: `http://127.0.0.1:${port}`, peerSecret: SECRET });
        await other.hello({ peerId: 'AWAYPI2', role: Role.PI, protocolVersion: PROTOCOL_VERSION });
        await other.acknowledge({ peerId: 'AWAYPI2', indexId: store.indexId, sequence: BigInt(store.seq) });
        assert.equal((await store.record('waiting.bin'))?.state, 'remote', 'kept waiting');
        // The hub has room again: the pi's next session sends the bytes, and the version is written.
        refusing = false;
        await waitFor('waiting.bin written into the root', async () => (await fs.readFile(path.join(root, 'waiting.bin')).catch(() => null))?.equals(data));
        assert.equal((await store.record('waiting.bin'))?.state, 'local');
        assert.equal(hub.lost.size, 0);
      } finally {
        await pi.stop();
      }
    },
    {
      override: (real) => ({
        uploadChunks: async (requests, ctx) => {
          if (!refusing) return real.uploadChunks(requests, ctx);
          refused += 1;
          for await (const _ of requests); // read the stream as a server does before answering
          throw new ConnectError('no space left on device', Code.ResourceExhausted);
        },
      }),
    },
  );
});
