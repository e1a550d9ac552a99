// The NAS presence module and the sync peer inside one real Pi process, with a real hub process and the BaluHost
// stand-in: the hub link is an input of the NAS state (GET /api/nas/status shows it), and BaluHost's
// nas-coming-online call makes the Pi reconnect and flush its upload queue at once, instead of after its reconnect
// backoff (set to 10 minutes here, so only the handshake can explain a file reaching the hub within the test).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SignJWT } from 'jose';
import { BaluHostEmulator, baluhostCall, sendCall, COMING_ONLINE } from '../emulators/baluhost.ts';
import { hubFiles, piIngest, piStatus, startHub, startPi, tempDir, waitFor, type DaemonProcess } from '../sync/peers.ts';
import { freeTcpPort } from '../helpers/free-port.ts';

const JWT_SECRET = 'a-baluhost-secret-key-of-32-chars!!';
const HANDSHAKE = 'the-shared-handshake-secret-of-48-characters!!!';


async function nasStatus(pi: DaemonProcess): Promise<any> {
  return authed(pi, '/api/nas/status');
}

async function authed(pi: DaemonProcess, path: string): Promise<any> {
  const now = Math.floor(Date.now() / 1000);
  const token = await new SignJWT({ sub: '1', username: 'admin', role: 'admin', type: 'access', iat: now, exp: now + 900 })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).sign(new TextEncoder().encode(JWT_SECRET));
  return (await fetch(`http://127.0.0.1:${pi.ports.http}${path}`, { headers: { authorization: `Bearer ${token}` } })).json();
}

test('hub link feeds the NAS state; nas-coming-online flushes the upload queue without waiting out the backoff', async () => {
  const emu = await BaluHostEmulator.start();
  const piData = await tempDir();
  const root = await tempDir();
  const hubPort = await freeTcpPort();
  let hub: DaemonProcess | null = null;
  const pi = await startPi({
    hubGrpcPort: hubPort,
    dataDir: piData.path,
    waitConnected: false,
    env: {
      BALUPI_NAS_URL: emu.url,
      BALUPI_HANDSHAKE_SECRET: HANDSHAKE,
      BALUPI_JWT_SECRET: JWT_SECRET,
      BALUPI_SYNC_RETRY_MIN_S: '600',
      BALUPI_SYNC_RETRY_MAX_S: '600',
    },
  });
  try {
    // No hub yet: the peer has failed and now waits ~10 minutes; the NAS itself answers health, so it is online.
    const first = await waitFor('NAS online, hub link down', async () => {
      const s = await nasStatus(pi);
      return s.nas_state === 'online' && s.hub_link === false && s;
    });
    assert.equal(first.hub_link, false);
    await waitFor('the peer waiting out a long backoff', async () => {
      const hubState = (await piStatus(piData.path)).hub;
      return hubState.connection === 'disconnected' && hubState.nextAttemptAt > Date.now() + 60_000;
    });

    const data = Buffer.from('written on the Pi while the hub was away\n');
    await piIngest(piData.path, 'notes/while-away.txt', data);
    // BaluHost's Pi dashboard reads the queue toward the NAS as the handshake status's inbox.
    const inbox = await waitFor('the file counted in the inbox', async () => {
      const h = await authed(pi, '/api/handshake/status');
      return h.inbox_files === 1 && h;
    });
    assert.equal(inbox.nas_state, 'online');
    hub = await startHub({ root: root.path, grpcPort: hubPort });
    assert.deepEqual(await hubFiles(root.path), [], 'the Pi is still waiting out its backoff');

    const res = await sendCall(`http://127.0.0.1:${pi.ports.http}`, baluhostCall(HANDSHAKE, COMING_ONLINE, null, { timestamp: Date.now() / 1000 }));
    assert.deepEqual([res.status, res.body.acknowledged], [200, true]);
    await waitFor('the queued file in the hub root', async () => (await hubFiles(root.path)).includes('notes/while-away.txt'), 60_000);
    const linked = await waitFor('hub link up in the NAS status', async () => {
      const s = await nasStatus(pi);
      return s.hub_link === true && s;
    });
    assert.equal(linked.nas_state, 'online');

    // The hub goes away (the NAS sleeps): the link drops and the NAS status says so.
    await hub.stop();
    hub = null;
    await waitFor('hub link down again', async () => (await nasStatus(pi)).hub_link === false);
  } finally {
    await pi.stop();
    await hub?.stop();
    await emu.close();
    await piData.remove();
    await root.remove();
  }
});
