// Cache misses through real processes: a hub with a root folder and a pi that knows the hub's files as metadata only.
// A download streams the bytes from the hub and keeps them (the next one is a hit); a miss while the NAS sleeps wakes
// it (the magic packet reaches a UDP listener on 127.0.0.1; the test then brings BaluHost's stand-in and the hub back)
// and is served; if the NAS never answers, the answer is 503 with Retry-After. Uploads never wait for the NAS.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { SignJWT } from 'jose';
import { piStat, sha, startHub, startPi, tempDir, waitFor } from '../sync/peers.ts';
import { BaluHostEmulator } from '../emulators/baluhost.ts';
import { udpListener } from '../helpers/udp-listener.ts';
import { magicPacket } from '../../src/nas/wol.ts';

const JWT_SECRET = 'a-baluhost-secret-key-of-32-chars!!';
const MAC = 'aa:bb:cc:dd:ee:0f';

async function auth(username = 'alice', sub = '5', role = 'user'): Promise<Record<string, string>> {
  const now = Math.floor(Date.now() / 1000);
  const t = await new SignJWT({ sub, username, role, type: 'access', iat: now, exp: now + 900 }).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).sign(new TextEncoder().encode(JWT_SECRET));
  return { authorization: `Bearer ${t}` };
}

async function get(port: number, url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: Buffer; headers: Headers }> {
  const res = await fetch(`http://127.0.0.1:${port}${url}`, { headers: { ...(await auth()), ...headers } });
  return { status: res.status, body: Buffer.from(await res.arrayBuffer()), headers: res.headers };
}

/** A hub whose root holds alice's files, and a pi that has pulled their metadata. */
async function pair(files: Record<string, Buffer>, piEnv: Record<string, string> = {}) {
  const dir = await tempDir('balupi-miss-');
  const root = path.join(dir.path, 'root');
  for (const [name, data] of Object.entries(files)) {
    await fs.mkdir(path.dirname(path.join(root, name)), { recursive: true });
    await fs.writeFile(path.join(root, name), data);
  }
  const hubDir = path.join(dir.path, 'hub');
  let hub = await startHub({ root, dataDir: hubDir });
  const pi = await startPi({ hubGrpcPort: hub.ports.grpc, dataDir: path.join(dir.path, 'pi'), env: { BALUPI_JWT_SECRET: JWT_SECRET, ...piEnv } });
  for (const name of Object.keys(files)) await waitFor(`${name} known on the pi`, async () => (await piStat(pi.dataDir, name))?.state === 'remote');
  return {
    root,
    pi,
    get hub() {
      return hub;
    },
    /** The NAS (and the hub on it) goes to sleep. */
    async stopHub() {
      await hub.stop();
    },
    async restartHub() {
      hub = await startHub({ root, dataDir: hubDir, grpcPort: hub.ports.grpc });
    },
    async close() {
      await pi.stop();
      await hub.stop();
      await dir.remove();
    },
  };
}

test('a miss streams the file from a real hub and keeps it: the next download is a hit; a range fetches only its chunks', async () => {
  const film = randomBytes(6 * 1024 * 1024);
  const other = randomBytes(5 * 1024 * 1024);
  const p = await pair({ 'alice/Movies/film.bin': film, 'alice/Movies/other.bin': other });
  try {
    const port = p.pi.ports.http;
    const list = JSON.parse((await get(port, '/api/files/list?path=alice/Movies')).body.toString()).files;
    assert.equal(list.find((f: any) => f.name === 'film.bin').checksum, sha(film), 'the hub\'s SHA-256 is the listing\'s checksum');
    const first = await get(port, '/api/files/download/alice/Movies/film.bin');
    assert.equal(first.status, 200);
    assert.ok(first.body.equals(film), 'the bytes from the hub');
    assert.equal(first.headers.get('content-length'), String(film.length));
    await waitFor('film.bin local on the pi', async () => (await piStat(p.pi.dataDir, 'alice/Movies/film.bin'))?.state === 'local');
    const second = await get(port, '/api/files/download/alice/Movies/film.bin');
    assert.ok(second.body.equals(film));
    let stats = JSON.parse((await get(port, '/api/cache/stats')).body.toString());
    assert.deepEqual([stats.misses, stats.hits], [1, 1]);

    const part = await get(port, '/api/files/download/alice/Movies/other.bin', { range: 'bytes=100-199' });
    assert.equal(part.status, 206);
    assert.ok(part.body.equals(other.subarray(100, 200)));
    const rec = await piStat(p.pi.dataDir, 'alice/Movies/other.bin');
    assert.equal(rec.state, 'remote', 'only the chunks of the range were fetched');
    stats = JSON.parse((await get(port, '/api/cache/stats')).body.toString());
    assert.equal(stats.misses, 2);
    assert.ok(stats.cached_bytes >= film.length && stats.cached_bytes < film.length + other.length, `cached ${stats.cached_bytes}`);
    const sync = JSON.parse((await get(port, '/api/files/sync/status')).body.toString());
    assert.equal(sync.hub.connection, 'connected');
    assert.equal(sync.hub.fetch_error, null, 'everything wanted could be stored');
    assert.equal(typeof sync.bytes_pending, 'number');
  } finally {
    await p.close();
  }
});

test('a miss while the NAS sleeps wakes it (magic packet on loopback), waits, and is served once it is back', async () => {
  const wol = await udpListener();
  const emu = await BaluHostEmulator.start();
  const data = randomBytes(3 * 1024 * 1024);
  const p = await pair({ 'alice/asleep.bin': data }, {
    BALUPI_NAS_URL: emu.url,
    BALUPI_NAS_MAC: MAC,
    BALUPI_WOL_ADDRESS: wol.address,
    BALUPI_NAS_POLL_INTERVAL_S: '1',
    BALUPI_NAS_FAST_POLL_INTERVAL_S: '1',
    BALUPI_WAKE_WAIT_S: '60',
  });
  try {
    await p.stopHub();
    await emu.goDown();
    await p.pi.waitForLog((l) => l.msg === 'NAS is offline');
    const download = get(p.pi.ports.http, '/api/files/download/alice/asleep.bin');
    assert.deepEqual(await wol.next(), magicPacket(MAC), 'the pi sent a magic packet for the NAS');
    // The NAS boots: BaluHost answers again and the hub on it starts.
    await emu.comeBack();
    await p.restartHub();
    const res = await download;
    assert.equal(res.status, 200);
    assert.ok(res.body.equals(data));
    assert.deepEqual(await wol.drain(), [magicPacket(MAC)], 'exactly one packet reached the listener');
  } finally {
    await p.close();
    await emu.close();
    await wol.close();
  }
});

test('a NAS that never comes up: 503 with Retry-After after BALUPI_WAKE_WAIT_S; without a NAS to wake: 503 at once; uploads do not wait', async () => {
  const wol = await udpListener();
  const emu = await BaluHostEmulator.start();
  const data = randomBytes(100_000);
  const p = await pair({ 'alice/never.bin': data }, {
    BALUPI_NAS_URL: emu.url,
    BALUPI_NAS_MAC: MAC,
    BALUPI_WOL_ADDRESS: wol.address,
    BALUPI_NAS_POLL_INTERVAL_S: '1',
    BALUPI_NAS_FAST_POLL_INTERVAL_S: '1',
    BALUPI_WAKE_WAIT_S: '2',
  });
  try {
    await p.stopHub();
    await emu.goDown();
    await p.pi.waitForLog((l) => l.msg === 'NAS is offline');
    const res = await get(p.pi.ports.http, '/api/files/download/alice/never.bin');
    assert.equal(res.status, 503);
    assert.match(res.headers.get('retry-after') ?? '', /^\d+$/);
    assert.match(JSON.parse(res.body.toString()).detail, /not reachable/);
    assert.deepEqual(await wol.next(), magicPacket(MAC), 'it did try to wake the NAS');
    // An upload is stored on the pi at once, NAS or not.
    const form = new FormData();
    form.append('file', new Blob([Buffer.from('written while the NAS sleeps')]), 'note.txt');
    form.append('path', 'alice/note.txt');
    const up = await fetch(`http://127.0.0.1:${p.pi.ports.http}/api/files/upload`, { method: 'POST', headers: await auth(), body: form });
    assert.equal(up.status, 200);
    const queued = JSON.parse((await get(p.pi.ports.http, '/api/files/sync/status')).body.toString());
    assert.ok(queued.files_pending >= 1, JSON.stringify(queued));
    assert.notEqual(queued.hub.connection, 'connected');
  } finally {
    await p.close();
    await emu.close();
    await wol.close();
  }
  // A pi whose hub is gone and that has no NAS to wake (no MAC): 503 without waiting.
  const q = await pair({ 'alice/x.bin': data }, { BALUPI_WAKE_WAIT_S: '600' });
  try {
    await q.stopHub();
    const res = await get(q.pi.ports.http, '/api/files/download/alice/x.bin');
    assert.equal(res.status, 503);
    assert.ok(res.headers.get('retry-after'));
  } finally {
    await q.close();
  }
});
