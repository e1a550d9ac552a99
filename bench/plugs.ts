// Cost of one plug poll over loopback, client and emulator in this process (so CPU figures include the plug side;
// on the Pi the plug side runs on the plug). Three ways to read one P110:
//   batched   — TapoPlugClient: one KLAP request (multipleRequest of 4 methods) per poll
//   singles   — TapoPlugClient against firmware without batching: 4 KLAP requests per poll
//   baseline  — tp-link-tapo-connect's KLAP device: getDeviceInfo + getEnergyUsage (2 requests, no voltage/W method)
// Run: npx node bench/plugs.ts [polls]

import { cpuUsage } from 'node:process';
import { TapoPlugEmulator } from '../test/emulators/tapo-plug.ts';
import { createTapoClient } from '../src/energy/tapo-client.ts';
import { loginDeviceByIp } from 'tp-link-tapo-connect/dist/klap-transport.js';

const POLLS = Number(process.argv[2] ?? 300);
const CREDS = { username: 'bench@example.org', password: 'bench' };

async function measure(name: string, poll: () => Promise<unknown>): Promise<{ name: string; wallUs: number; cpuUs: number }> {
  for (let i = 0; i < 20; i++) await poll();
  const c0 = cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < POLLS; i++) await poll();
  const wallUs = ((performance.now() - t0) * 1000) / POLLS;
  const c = cpuUsage(c0);
  return { name, wallUs, cpuUs: (c.user + c.system) / POLLS };
}

const batchedPlug = new TapoPlugEmulator({ ...CREDS, model: 'P110', hasEmeterData: true, powerCurve: () => 50 });
const singlesPlug = new TapoPlugEmulator({ ...CREDS, model: 'P110', hasEmeterData: true, multipleRequest: false, powerCurve: () => 50 });
const libPlug = new TapoPlugEmulator({ ...CREDS, model: 'P110', hasEmeterData: true, powerCurve: () => 50 });
for (const p of [batchedPlug, singlesPlug, libPlug]) await p.start();

const batched = createTapoClient({ host: '127.0.0.1', port: batchedPlug.port }, CREDS);
const singles = createTapoClient({ host: '127.0.0.1', port: singlesPlug.port }, CREDS);
const lib = await loginDeviceByIp(CREDS.username, CREDS.password, libPlug.address);

// Interleaved rounds, median per variant: the first variant measured would otherwise pay for JIT warm-up.
const variants: Array<[string, () => Promise<unknown>]> = [
  [
    'baseline: tp-link-tapo-connect (2 requests, no V/A)',
    async () => {
      await lib.getDeviceInfo();
      await lib.getEnergyUsage();
    },
  ],
  ['TapoPlugClient singles (4 requests)', () => singles.getReading()],
  ['TapoPlugClient batched (1 request)', () => batched.getReading()],
];
const rounds: Array<Awaited<ReturnType<typeof measure>>[]> = variants.map(() => []);
for (let round = 0; round < 5; round++) {
  for (const [i, [name, poll]] of variants.entries()) rounds[i]!.push(await measure(name, poll));
}
const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const results = rounds.map((rs) => ({ name: rs[0]!.name, wallUs: median(rs.map((r) => r.wallUs)), cpuUs: median(rs.map((r) => r.cpuUs)) }));
const base = results[0]!;
console.log(`median of 5 interleaved rounds of ${POLLS} polls each, loopback, Node ${process.versions.node}`);
for (const r of results) {
  console.log(
    `${r.name.padEnd(52)} wall ${r.wallUs.toFixed(0).padStart(6)} µs/poll  cpu ${r.cpuUs.toFixed(0).padStart(6)} µs/poll` +
      `  ratio vs baseline: wall ${(r.wallUs / base.wallUs).toFixed(2)}  cpu ${(r.cpuUs / base.cpuUs).toFixed(2)}`,
  );
}
console.log(`handshakes: batched ${batchedPlug.counters.handshake1}, singles ${singlesPlug.counters.handshake1}, baseline ${libPlug.counters.handshake1}`);
await batched.close();
await singles.close();
for (const p of [batchedPlug, singlesPlug, libPlug]) await p.stop();
