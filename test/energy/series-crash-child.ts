// Child process for the kill -9 test: appends readings for three plugs as fast as it can (three appends in flight
// at a time, so group commits happen) and prints "<deviceId> <at>" for every append that resolved.
// argv: <db dir> <start ms>

import { ClassicLevel } from 'classic-level';
import { EnergySeries } from '../../src/energy/series.ts';

const [dir, startArg] = process.argv.slice(2);
const start = Number(startArg);
const db = new ClassicLevel<string, string>(dir!);
await db.open();
const series = new EnergySeries(db.sublevel('energy'), { timeZone: 'Europe/Berlin', maintainEveryMs: 0, now: () => start });
await series.open();
process.stdout.write('ready\n');
for (let i = 0; ; i++) {
  const at = start + i * 30_000;
  await Promise.all([1, 2, 3].map(async (id) => {
    await series.append({
      deviceId: id, at: at + id, powerW: 40 + id + (i % 7), voltageV: null, currentA: null,
      todayWh: Math.floor(i / 3), monthWh: null, deviceOn: true,
    });
    process.stdout.write(`${id} ${at + id}\n`);
  }));
}
