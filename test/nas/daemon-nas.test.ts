// The NAS module inside a real `balupi serve` process: it polls the BaluHost stand-in, accepts BaluHost's signed
// going-offline call over the network and refuses a replay, announces itself by mDNS (loopback group only), answers
// the NAS status over REST and gRPC, and keeps its state across a restart of the process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SignJWT } from 'jose';
import { createClient } from '@connectrpc/connect';
import { createGrpcTransport } from '@connectrpc/connect-node';
import { NasService } from '../../src/gen/balupi/nas/v1/nas_pb.js';
import { MdnsPresence, type MdnsPeer } from '../../src/nas/mdns.ts';
import { startDaemonProcess, tempDir } from '../helpers/daemon-process.ts';
import { BaluHostEmulator, baluhostCall, baluhostSnapshot, sendCall, COMING_ONLINE, GOING_OFFLINE } from '../emulators/baluhost.ts';
import { freeUdpPort } from '../helpers/free-port.ts';

const JWT_SECRET = 'a-baluhost-secret-key-of-32-chars!!';
const HANDSHAKE = 'the-shared-handshake-secret-of-48-characters!!!';

async function token(): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ sub: '1', username: 'admin', role: 'admin', type: 'access', iat: now, exp: now + 900 })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).sign(new TextEncoder().encode(JWT_SECRET));
}

/** Polls the daemon (another process) until `pred` holds; the deadline turns a hang into a clear failure. */
async function statusUntil(base: string, pred: (s: any) => boolean, what: string): Promise<any> {
  const headers = { authorization: `Bearer ${await token()}` };
  const deadline = Date.now() + 15_000;
  for (;;) {
    const s = await (await fetch(`${base}/api/nas/status`, { headers })).json();
    if (pred(s)) return s;
    if (Date.now() > deadline) throw new Error(`${what}: last status ${JSON.stringify(s)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}


test('a real daemon: polls BaluHost, accepts its going-offline call and refuses the replay, announces on loopback mDNS, restarts offline', async () => {
  const emu = await BaluHostEmulator.start();
  const data = await tempDir();
  const mdnsPort = await freeUdpPort();
  // The test's own mDNS instance on 127.0.0.2; the daemon's on 127.0.0.1; each sends only to the other.
  const browser = new MdnsPresence({ group: { address: '127.0.0.1', port: mdnsPort }, interface: '127.0.0.2', browse: ['_balupi._tcp'] });
  await browser.start();
  const announced = new Promise<MdnsPeer[]>((resolve) => browser.on('change', (t, p) => t === '_balupi._tcp' && p.length && resolve(p)));
  const env = {
    BALUPI_JWT_SECRET: JWT_SECRET,
    BALUPI_PEER_SECRET: 'pairing-secret',
    BALUPI_NAS_URL: emu.url,
    BALUPI_HANDSHAKE_SECRET: HANDSHAKE,
    BALUPI_MDNS: 'on',
    BALUPI_MDNS_GROUP: `127.0.0.2:${mdnsPort}`,
    BALUPI_MDNS_INTERFACE: '127.0.0.1',
    BALUPI_MDNS_ADDRESSES: '127.0.0.1',
    BALUPI_NAS_MAC: '00:11:32:aa:bb:cc',
    BALUPI_WOL_ADDRESS: '127.0.0.1:9',
  };
  let daemon = await startDaemonProcess({ env, dataDir: data.path });
  try {
    const base = `http://127.0.0.1:${daemon.ports.http}`;
    const health = (await (await fetch(`${base}/api/health`)).json()) as { capabilities: string[] };
    assert.ok(health.capabilities.includes('nas.v1'));

    const up = await statusUntil(base, (s) => s.nas_state === 'online', 'first poll makes it online');
    assert.equal(up.version, '1.38.0');
    assert.ok(emu.requests.every((r) => r.syncTrigger === 'auto'));

    const [pi] = await announced;
    assert.equal(pi!.port, daemon.ports.http);
    assert.deepEqual(pi!.addresses, ['127.0.0.1']);
    assert.equal(pi!.txt.role, 'pi');
    assert.equal(pi!.txt.grpc, String(daemon.ports.grpc));

    // BaluHost stops its backend: signed the way it signs today, sent the way httpx < 0.28 sends it.
    const call = baluhostCall(HANDSHAKE, GOING_OFFLINE, baluhostSnapshot(), { timestamp: Date.now() / 1000 });
    const res = await sendCall(base, call);
    assert.deepEqual([res.status, res.body.acknowledged, res.body.snapshot_stored], [200, true, true]);
    const replay = await sendCall(base, call);
    assert.deepEqual([replay.status, replay.body], [401, { detail: 'Replayed request (signature already used)' }]);
    const stale = await sendCall(base, baluhostCall(HANDSHAKE, COMING_ONLINE, null, { timestamp: Date.now() / 1000 - 300 }));
    assert.equal(stale.status, 401);
    const forged = await sendCall(base, baluhostCall('x'.repeat(48), COMING_ONLINE, null, { timestamp: Date.now() / 1000 }));
    assert.deepEqual([forged.status, forged.body], [401, { detail: 'Invalid HMAC signature' }]);
    await emu.goDown();
    const off = await statusUntil(base, (s) => s.nas_state === 'offline', 'going-offline');
    assert.match(off.reason, /BaluHost announced it is going offline/);

    const grpc = createClient(NasService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${daemon.ports.grpc}` }));
    const rpc = await grpc.getStatus({}, { headers: { authorization: 'Bearer pairing-secret' } });
    assert.equal(rpc.nasState, 'offline');
    assert.equal(rpc.online, false);
    assert.equal(rpc.url, emu.url);
    const hist = await grpc.getHistory({ limit: 5 }, { headers: { authorization: 'Bearer pairing-secret' } });
    assert.deepEqual(hist.transitions.map((t) => t.toState).slice(0, 2), ['offline', 'online']);

    await daemon.stop();
    daemon = await startDaemonProcess({ env, dataDir: data.path });
    const after = await statusUntil(`http://127.0.0.1:${daemon.ports.http}`, () => true, 'status after restart');
    assert.deepEqual([after.nas_state, after.since, after.reason], [off.nas_state, off.since, off.reason], 'restored, not re-derived');
    const snap = await fetch(`http://127.0.0.1:${daemon.ports.http}/api/handshake/snapshot`, { headers: { authorization: `Bearer ${await token()}` } });
    assert.equal(((await snap.json()) as { baluhost_version: string }).baluhost_version, '1.38.0');
  } finally {
    await daemon.stop();
    await browser.stop();
    await emu.close();
    await data.remove();
  }
});
