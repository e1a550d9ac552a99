// Demo mode (BALUPI_DEMO_PLUGS=N): N emulated Tapo plugs on 127.0.0.1 — real KLAP servers (the test emulator), so
// the whole path from poller to API runs as with hardware. The first plug is the NAS, moving through standby, idle
// and active; the others are a fridge, a desk, a TV, a router and small loads. They are registered like real plugs,
// found again by name at the next start (their port is updated), and stopped with the daemon.
// The emulator module is loaded only when demo plugs are asked for, so a normal start never loads test code.

import type { DeviceRegistry } from './device-registry.ts';
import type { PlugCredentials } from './plug-client.ts';
import type { DeviceRole, PlugDevice } from './types.ts';
import type { TapoPlugEmulator } from '../../test/emulators/tapo-plug.ts';

/** Used by the poller and accepted by the demo plugs when no real Tapo account is configured. */
export const DEMO_CREDENTIALS: PlugCredentials = Object.freeze({ username: 'demo@balupi.local', password: 'balupi-demo' });

export const DEMO_HOST = '127.0.0.1';

export interface DemoPlugs {
  devices: PlugDevice[];
  emulators: TapoPlugEmulator[];
  stop(): Promise<void>;
}

interface Profile {
  name: string;
  role: DeviceRole;
  model: 'P110' | 'P115';
  /** Newer P110 firmware reports voltage and current; the P115s here do not, so the API shows null for them. */
  emeter: boolean;
  maxPowerW: number | null;
  curve: (t: number) => number;
}

const MIN = 60_000;

/** Smooth deterministic variation of ±amp around 0 (no randomness: the same instant always gives the same watts). */
function wobble(t: number, amp: number, seed = 0): number {
  return amp * (0.6 * Math.sin(t / 7_000 + seed) + 0.4 * Math.sin(t / 3_100 + 2 * seed));
}

/** A 24-minute cycle through the NAS's states (thresholds 3 / 15 / 40 W by default): standby, idle, active, idle. */
function nasCurve(t: number): number {
  const m = (t / MIN) % 24;
  if (m < 6) return 9 + wobble(t, 0.8, 1);
  if (m < 10 || m >= 18) return 28 + wobble(t, 3, 2);
  return 68 + 12 * Math.sin(((m - 10) / 8) * Math.PI) + wobble(t, 6, 3);
}

/** Compressor on 7 of every 20 minutes, with the start-up surge; electronics only otherwise. */
function fridgeCurve(t: number): number {
  const s = ((t / 1000) % 1200 + 1200) % 1200;
  if (s < 15) return 180;
  if (s < 420) return 85 + wobble(t, 4, 4);
  return 1.2;
}

function localHour(t: number): number {
  return new Date(t).getHours();
}

/** Monitor and laptop from 8 to 23 h, a short burst every 10 minutes (a build, a video call); standby at night. */
function deskCurve(t: number): number {
  const h = localHour(t);
  if (h < 8 || h >= 23) return 0.8;
  return (t / MIN) % 10 < 2 ? 65 + wobble(t, 5, 5) : 42 + wobble(t, 6, 6);
}

function tvCurve(t: number): number {
  const h = localHour(t);
  return h >= 18 && h < 23 ? 95 + wobble(t, 8, 7) : 0.5;
}

const PROFILES: Profile[] = [
  { name: 'Demo NAS', role: 'nas', model: 'P110', emeter: true, maxPowerW: 150, curve: nasCurve },
  { name: 'Demo fridge', role: 'generic', model: 'P115', emeter: false, maxPowerW: 250, curve: fridgeCurve },
  { name: 'Demo desk', role: 'generic', model: 'P110', emeter: true, maxPowerW: null, curve: deskCurve },
  { name: 'Demo TV', role: 'generic', model: 'P110', emeter: true, maxPowerW: null, curve: tvCurve },
  { name: 'Demo router', role: 'generic', model: 'P115', emeter: false, maxPowerW: null, curve: (t) => 9.5 + wobble(t, 0.4, 8) },
];

function profile(i: number): Profile {
  return PROFILES[i] ?? { name: `Demo plug ${i + 1}`, role: 'generic', model: 'P115', emeter: false, maxPowerW: null, curve: (t) => 5 + wobble(t, 1.5, i) };
}

export interface DemoOptions {
  count: number;
  registry: DeviceRegistry;
  credentials: PlugCredentials;
  logger: { info(obj: object, msg?: string): void; warn(obj: object, msg?: string): void };
}

export async function startDemoPlugs(o: DemoOptions): Promise<DemoPlugs> {
  const { TapoPlugEmulator } = await import('../../test/emulators/tapo-plug.ts');
  const emulators: TapoPlugEmulator[] = [];
  const devices: PlugDevice[] = [];
  const stop = async () => {
    await Promise.all(emulators.map((e) => e.stop()));
  };
  try {
    for (let i = 0; i < o.count; i++) {
      const p = profile(i);
      const known = o.registry.list().find((d) => d.name === p.name && d.host === DEMO_HOST);
      const make = (port: number) => new TapoPlugEmulator({
        ...o.credentials,
        model: p.model,
        hasEmeterData: p.emeter,
        powerCurve: p.curve,
        nickname: p.name,
        // Stable MAC: the registry then recognises the plug by MAC too, like real hardware.
        mac: `9C-53-22-DE-00-${(i + 1).toString(16).padStart(2, '0').toUpperCase()}`,
        host: DEMO_HOST,
        port,
      });
      let emu = make(known?.port ?? 0);
      try {
        await emu.start();
      } catch {
        // Last run's port is taken now: take any.
        emu = make(0);
        await emu.start();
      }
      emulators.push(emu);
      devices.push(await register(o, p, known, emu.port));
    }
  } catch (err) {
    await stop();
    throw err;
  }
  o.logger.info({ plugs: devices.map((d) => `${d.id} ${d.name} ${d.host}:${d.port} (${d.role})`) }, 'demo plugs started');
  return { devices, emulators, stop };
}

async function register(o: DemoOptions, p: Profile, known: PlugDevice | undefined, port: number): Promise<PlugDevice> {
  if (known) {
    if (known.port === port) return known;
    try {
      return await o.registry.update(known.id, { host: DEMO_HOST, port });
    } catch (err) {
      o.logger.warn({ err, device: known.id }, 'demo plug could not be moved to its new port');
      return known;
    }
  }
  // Another plug may already be the NAS (a real one, configured next to the demo): then this one is generic.
  const role = p.role === 'nas' && o.registry.nasDevice() ? 'generic' : p.role;
  return o.registry.add({ host: DEMO_HOST, port, name: p.name, role, maxPowerW: p.maxPowerW });
}
