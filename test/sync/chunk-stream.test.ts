// The copy-saving DownloadChunks path (chunk-stream.ts) over real HTTP/2 on loopback: it speaks plain gRPC both ways
// (the generic client reads the fast server, the fast client reads Connect's generic server), checks the peer secret,
// bounds message and request sizes, reports the server's status (NOT_FOUND, DATA_LOSS for a chunk that rotted on
// disk), cancels cleanly, and a peer that sends wrong bytes gets nothing stored.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { randomBytes } from 'node:crypto';
import { Code, ConnectError } from '@connectrpc/connect';
import { connectNodeAdapter, Http2SessionManager } from '@connectrpc/connect-node';
import { SyncService } from '../../src/gen/balupi/sync/v1/sync_pb.js';
import { syncService } from '../../src/sync/service.ts';
import { peerAuthInterceptor } from '../../src/rpc/peer-auth.ts';
import { createSyncClient } from '../../src/sync/client.ts';
import { downloadChunksHandler, downloadChunksStream, DOWNLOAD_CHUNKS_PATH } from '../../src/sync/chunk-stream.ts';
import { downloadInto, sendChunks } from '../../src/sync/transfer.ts';
import { hashToBytes } from '../../src/sync/wire.ts';
import { bytes, h2Servers, node, silent, withRottedChunk, type Node } from './in-process.ts';
import { waitFor } from './peers.ts';

const SECRET = 's';
let hub: Node;
let chunks: { hash: string; size: number }[];
let data: Buffer;
const servers = h2Servers();


let fastUrl: string;
let genericUrl: string;

before(async () => {
  hub = await node('hub');
  data = randomBytes(300_000);
  chunks = (await hub.store.ingest('big.bin', bytes(data))).file.chunks;
  assert.ok(chunks.length >= 4);
  const connect = connectNodeAdapter({
    routes: (r) => r.service(SyncService, syncService({ store: hub.store, state: hub.state, role: 'hub', log: silent })),
    interceptors: [peerAuthInterceptor(SECRET)],
    acceptCompression: [],
  });
  const fast = downloadChunksHandler({ store: hub.store, peerSecret: SECRET });
  fastUrl = await servers.listen((req, res) => fast(req, res) || connect(req, res));
  genericUrl = await servers.listen(connect);
});
after(async () => {
  await servers.close();
  await hub?.close();
});

async function collect(it: AsyncIterable<{ hash: Uint8Array; data: Uint8Array }>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const m of it) parts.push(Buffer.from(m.data));
  return Buffer.concat(parts);
}
const allHashes = () => chunks.map((c) => hashToBytes(c.hash));

test('fast server and fast client speak plain gRPC: every pairing with the generic ends moves the same bytes', async () => {
  for (const [url, fastChunks] of [[fastUrl, true], [fastUrl, false], [genericUrl, true]] as const) {
    const client = createSyncClient({ baseUrl: url, peerSecret: SECRET, fastChunks });
    assert.ok((await collect(client.downloadChunks({ hashes: allHashes() }))).equals(data), `${url === fastUrl ? 'fast' : 'generic'} server, ${fastChunks ? 'fast' : 'generic'} client`);
  }
});

test('the fast server reads chunks into reused buffers and gives every one back: after a full stream, a cancelled one, and an abandoned read-ahead', async () => {
  const inUse = () => hub.store.stats().readBuffersInUse;
  // Leased reads directly: a chunk held by the sender keeps its buffer taken until released; a sender that stops
  // early gets the chunks read ahead for it released as well.
  const gen = sendChunks(hub.store, chunks, { lease: true });
  const first = (await gen.next()).value!;
  assert.ok(Buffer.from(first.data).equals(data.subarray(0, chunks[0]!.size)), 'the leased bytes are the chunk');
  assert.ok(inUse() >= 1, 'the held chunk keeps its buffer');
  first.release();
  first.release(); // a second release gives nothing back twice
  await gen.return(undefined);
  await waitFor('read-ahead buffers returned', async () => inUse() === 0);
  // Through HTTP/2: full stream, then one cancelled after the first message.
  const client = createSyncClient({ baseUrl: fastUrl, peerSecret: SECRET });
  assert.ok((await collect(client.downloadChunks({ hashes: allHashes() }))).equals(data));
  await waitFor('buffers returned after a full stream', async () => inUse() === 0);
  const ac = new AbortController();
  await assert.rejects(async () => {
    for await (const _ of client.downloadChunks({ hashes: allHashes() }, { signal: ac.signal })) ac.abort();
  }, (err: ConnectError) => err.code === Code.Canceled);
  await waitFor('buffers returned after a cancelled stream', async () => inUse() === 0);
});

test('a wrong or missing peer secret is refused with UNAUTHENTICATED and no bytes', async () => {
  for (const secret of ['wrong', '']) {
    const client = createSyncClient({ baseUrl: fastUrl, peerSecret: secret });
    let got = 0;
    await assert.rejects(async () => {
      for await (const m of client.downloadChunks({ hashes: allHashes() })) got += m.data.length;
    }, (err: ConnectError) => err.code === Code.Unauthenticated);
    assert.equal(got, 0);
  }
});

test('a chunk the server lacks ends the stream with NOT_FOUND after the chunks before it; a rotted one with DATA_LOSS', async () => {
  const client = createSyncClient({ baseUrl: fastUrl, peerSecret: SECRET });
  const unknown = hashToBytes('ab'.repeat(32));
  let got = 0;
  await assert.rejects(async () => {
    for await (const _ of client.downloadChunks({ hashes: [allHashes()[0]!, unknown] })) got += 1;
  }, (err: ConnectError) => err.code === Code.NotFound);
  assert.equal(got, 1);
  // A hash of the wrong length is refused as INVALID_ARGUMENT.
  await assert.rejects(collect(client.downloadChunks({ hashes: [new Uint8Array(5)] })), (err: ConnectError) => err.code === Code.InvalidArgument);
  // Rot one chunk file on the server's disk: it is never sent as good bytes.
  await withRottedChunk(hub, chunks[1]!.hash, async () => {
    got = 0;
    await assert.rejects(async () => {
      for await (const _ of client.downloadChunks({ hashes: allHashes().slice(0, 3) })) got += 1;
    }, (err: ConnectError) => err.code === Code.DataLoss);
    assert.equal(got, 1, 'only the chunk before the rotted one arrived');
  });
});

test('sizes are bounded: the client refuses a message above its limit, the server a request above 1 MiB', async () => {
  const sessions = new Http2SessionManager(fastUrl);
  try {
    await assert.rejects(
      collect(downloadChunksStream(sessions, { peerSecret: SECRET, maxMessageBytes: 1000 }, allHashes())),
      (err: ConnectError) => err.code === Code.ResourceExhausted && /larger than the limit/.test(err.rawMessage),
    );
  } finally {
    sessions.abort();
  }
  const session = http2.connect(fastUrl);
  try {
    const req = session.request({ ':method': 'POST', ':path': DOWNLOAD_CHUNKS_PATH, 'content-type': 'application/grpc', authorization: `Bearer ${SECRET}` });
    const head = Buffer.alloc(5);
    head.writeUInt32BE(2 * 1024 * 1024, 1);
    req.end(Buffer.concat([head, Buffer.alloc(2 * 1024 * 1024)]));
    const trailers = await new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
      req.on('trailers', resolve);
      req.on('error', reject);
      req.resume();
    });
    assert.equal(trailers['grpc-status'], String(Code.ResourceExhausted));
  } finally {
    session.close();
  }
});

test('a peer that sends wrong bytes through the fast path gets nothing stored; cancelling a download stops it', async () => {
  // A liar speaking gRPC: the right hash, altered bytes.
  const liarUrl = await servers.listen(async (req, res) => {
    for await (const _ of req);
    const chunk = await hub.store.getChunk(chunks[0]!.hash);
    const bad = Buffer.from(chunk);
    bad[0] = bad[0]! ^ 1;
    const msg = Buffer.concat([Buffer.from([0x0a, 32]), hashToBytes(chunks[0]!.hash), Buffer.from([0x12]), varint(bad.length), bad]);
    const head = Buffer.alloc(5);
    head.writeUInt32BE(msg.length, 1);
    res.writeHead(200, { 'content-type': 'application/grpc' });
    res.addTrailers({ 'grpc-status': '0' });
    res.end(Buffer.concat([head, msg]));
  });
  const pi = await node('pi');
  try {
    const liar = createSyncClient({ baseUrl: liarUrl, peerSecret: SECRET });
    await assert.rejects(downloadInto(liar, pi.store, [chunks[0]!]), (err: { code?: string }) => err.code === 'data_loss');
    assert.deepEqual(await pi.store.hasChunks([chunks[0]!.hash]), [], 'the wrong bytes were not stored');
    // Cancel after the first message: the call ends with CANCELED; the same client still works afterwards.
    const honest = createSyncClient({ baseUrl: fastUrl, peerSecret: SECRET });
    const ac = new AbortController();
    let got = 0;
    await assert.rejects(async () => {
      for await (const _ of honest.downloadChunks({ hashes: allHashes() }, { signal: ac.signal })) {
        got += 1;
        ac.abort();
      }
    }, (err: ConnectError) => err.code === Code.Canceled);
    assert.equal(got, 1);
    const ok = await downloadInto(honest, pi.store, chunks);
    assert.equal(ok.chunks, new Set(chunks.map((c) => c.hash)).size);
  } finally {
    await pi.close();
  }
});

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return Buffer.from(out);
}
