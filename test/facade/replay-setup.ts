// A real `balupi serve` (pi role) in front of the BaluHost stand-in, for replaying the clients' sessions of
// ../shared/reference/clients.md §C on the wire: the NAS is online (its health answers), its accounts know `sven`,
// two demo plugs (KLAP emulators inside the daemon, on 127.0.0.1) feed the energy screens, and Wake-on-LAN points at
// loopback.
import assert from 'node:assert/strict';
import { BaluHostEmulator } from '../emulators/baluhost.ts';
import { startDaemonProcess, tempDir, type DaemonProcess } from '../helpers/daemon-process.ts';
import { TokenVerifier } from '../../src/auth/tokens.ts';
import { send, type WireResponse } from '../helpers/wire-clients.ts';

export const SECRET = 'replay-baluhost-secret-key-of-32-chars!!';
export const PASSWORD = 'Sven-pass-1';
export const ISO_Z = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$/;

export interface Replay {
  emu: BaluHostEmulator;
  pi: DaemonProcess;
  base: string;
  close(): Promise<void>;
}

export async function startReplay(): Promise<Replay> {
  const emu = await BaluHostEmulator.start({ secret: SECRET });
  emu.accounts.addUser({ username: 'sven', password: PASSWORD, role: 'admin' });
  const data = await tempDir('balupi-replay-');
  const pi = await startDaemonProcess({
    dataDir: data.path,
    env: {
      BALUPI_JWT_SECRET: SECRET,
      BALUPI_NAS_URL: emu.url,
      BALUPI_NAS_MAC: '00:11:32:aa:bb:cc',
      BALUPI_WOL_ADDRESS: '127.0.0.1:9',
      BALUPI_DEMO_PLUGS: '2',
    },
  });
  const base = `http://127.0.0.1:${pi.ports.http}`;
  // Wait (bounded) until the Pi has seen the NAS answer, so relayed calls go to it.
  const admin = await new TokenVerifier(SECRET).issueAccess({ id: 999, username: 'probe', role: 'admin' });
  const deadline = Date.now() + 20_000;
  for (;;) {
    const s = (await send(base, 'GET', '/api/nas/status', [['Authorization', `Bearer ${admin}`]])).json();
    if (s.nas_state === 'online') break;
    if (Date.now() > deadline) throw new Error(`the Pi never saw the NAS online: ${JSON.stringify(s)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    emu, pi, base,
    async close() {
      await pi.stop();
      await emu.close();
      await data.remove();
    },
  };
}

/** 2xx or a failure naming the request and the answer. */
export function ok(res: WireResponse, what: string): WireResponse {
  assert.ok(res.status >= 200 && res.status < 300, `${what}: ${res.status} ${res.text().slice(0, 300)}`);
  return res;
}
