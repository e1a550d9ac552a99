// A NasService wired the way the daemon wires it, against the BaluHost stand-in, a real NasPowerTracker fed with plug
// readings, a LevelDB in a temp dir, and a manual clock: hours of NAS behaviour run in milliseconds. Health probes
// are real HTTP requests to 127.0.0.1; the Wake-on-LAN target is a UDP listener on 127.0.0.1.
import { join } from 'node:path';
import { ClassicLevel } from 'classic-level';
import { NasPowerTracker } from '../../src/energy/nas-power.ts';
import { NasService, type NasServiceOptions } from '../../src/nas/service.ts';
import { NasStateStore } from '../../src/nas/state-store.ts';
import { sendMagicPacket } from '../../src/nas/wol.ts';
import { createLogger } from '../../src/log.ts';
import { ManualClock } from '../helpers/manual-clock.ts';
import { tempDir } from '../helpers/daemon-process.ts';
import { udpListener, type UdpListener } from '../helpers/udp-listener.ts';
import { BaluHostEmulator } from '../emulators/baluhost.ts';

export const MAC = '00:11:32:aa:bb:cc';
export const SECRET = 'handshake-secret-of-at-least-32-characters!';

export interface Testbed {
  clock: ManualClock;
  emu: BaluHostEmulator;
  tracker: NasPowerTracker;
  wol: UdpListener;
  nas: NasService;
  /** Calls to the Wake-on-LAN sender. */
  wolSends: number;
  /** One plug reading now (the energy poller's job in the daemon). */
  plug(watts: number, relayOn?: boolean): void;
  /**
   * `steps` energy-poll periods of 30 s: the clock moves 30 s (health polls due in it run), then the plug reads
   * `watts`, then whatever probe that reading triggered finishes.
   */
  run(steps: number, watts: number): Promise<void>;
  /** Closes the service and reopens it on the same database (a daemon restart). */
  restart(extra?: Partial<NasServiceOptions>): Promise<void>;
  close(): Promise<void>;
}

export async function testbed(opts: Partial<NasServiceOptions> & { withPlug?: boolean } = {}): Promise<Testbed> {
  const dir = await tempDir('balupi-nas-');
  const db = new ClassicLevel<string, string>(join(dir.path, 'db'), { valueEncoding: 'utf8' });
  await db.open();
  const clock = new ManualClock();
  const emu = await BaluHostEmulator.start();
  const wol = await udpListener();
  const tracker = new NasPowerTracker();
  const log = createLogger({ logLevel: 'silent', logFormat: 'json' });
  const tb = { clock, emu, tracker, wol, wolSends: 0 } as Testbed;
  const build = async (extra: Partial<NasServiceOptions> = {}) => {
    const nas = await NasService.open({
      store: new NasStateStore(db),
      log,
      clock,
      nasUrl: emu.url,
      nasMac: MAC,
      wolAddress: wol.address,
      handshakeSecret: SECRET,
      probeTimeoutMs: 250,
      power: opts.withPlug === false ? null : tracker,
      sendWol: async (mac, address) => {
        tb.wolSends++;
        await sendMagicPacket(mac, address);
      },
      ...opts,
      ...extra,
    });
    nas.start();
    await nas.idle();
    return nas;
  };
  tb.nas = await build();
  tb.plug = (watts, relayOn = true) => {
    tracker.update({ deviceId: 1, at: clock.now(), powerW: watts, deviceOn: relayOn, voltageV: null, currentA: null, todayWh: null, monthWh: null });
  };
  tb.run = async (steps, watts) => {
    for (let i = 0; i < steps; i++) {
      await clock.advance(30_000);
      tb.plug(watts);
      await tb.nas.idle();
    }
  };
  tb.restart = async (extra) => {
    await tb.nas.stop();
    tb.nas = await build(extra);
  };
  tb.close = async () => {
    await tb.nas.stop();
    await emu.close();
    await wol.close();
    await db.close();
    await dir.remove();
  };
  return tb;
}

/** Resolves when the NAS is in `state` (at once if it already is). */
export function until(nas: NasService, state: string): Promise<void> {
  if (nas.state === state) return Promise.resolve();
  return new Promise((resolve) => {
    const on = (t: { to: string }) => {
      if (t.to !== state) return;
      nas.off('transition', on);
      resolve();
    };
    nas.on('transition', on);
  });
}

/** The states the NAS went through, oldest first, since history entry `from` (an index into the full history). */
export function path(nas: NasService, from = 0): string[] {
  return nas.history().reverse().slice(from).map((t) => t.to);
}
