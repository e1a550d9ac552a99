import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EnergySeries } from '../../src/energy/series.ts';
import { energyCsv } from '../../src/energy/export-csv.ts';
import { tempDb, reading } from './series-testbed.ts';

async function collect(it: AsyncIterable<string>): Promise<string> {
  let out = '';
  for await (const chunk of it) out += chunk;
  return out;
}

test('CSV export streams raw rows and rollups with UTC and unambiguous local times (October repeated hour)', async () => {
  const t = await tempDb();
  try {
    const s = new EnergySeries(t.db.sublevel('energy'), { timeZone: 'Europe/Berlin', maintainEveryMs: 0, sync: false });
    await s.open();
    const from = Date.UTC(2026, 9, 25, 0, 30); // 02:30 CEST, then 02:30 CET an hour later
    for (let i = 0; i < 2500; i++) {
      await s.append(reading(4, from + i * 60_000, 12.5, { todayWh: i, voltageV: i === 0 ? 229.9 : null }));
    }
    const text = await collect(energyCsv(s, { deviceIds: [4], from, to: from + 2500 * 60_000, resolution: 'raw' }));
    const rows = text.trimEnd().split('\n');
    assert.equal(rows.length, 2501);
    assert.equal(rows[0], 'device_id,time_utc,time_local,power_w,voltage_v,current_a,today_wh,month_wh,device_on');
    assert.equal(rows[1], '4,2026-10-25T00:30:00.000Z,2026-10-25T02:30:00+02:00,12.5,229.9,,0,,1');
    assert.equal(rows[61], '4,2026-10-25T01:30:00.000Z,2026-10-25T02:30:00+01:00,12.5,,,60,,1');
    // Hours starting in [bucketStart(from), to): 02:00 CEST, 02:00 CET, 03:00, 04:00.
    const hours = (await collect(energyCsv(s, { deviceIds: [4], from, to: from + 3 * 3_600_000, resolution: 'hour' })))
      .trimEnd().split('\n');
    assert.deepEqual(hours.slice(1).map((r) => r.split(',').slice(2, 4).join(' ')), [
      '2026-10-25T02:00:00+02:00 2026-10-25T02:00:00+01:00',
      '2026-10-25T02:00:00+01:00 2026-10-25T03:00:00+01:00',
      '2026-10-25T03:00:00+01:00 2026-10-25T04:00:00+01:00',
      '2026-10-25T04:00:00+01:00 2026-10-25T05:00:00+01:00',
    ]);
    assert.equal(hours[1]!.split(',')[4], '30', 'the first hour holds the 30 samples from 02:30 CEST');
    await s.close();
  } finally {
    await t.cleanup();
  }
});
