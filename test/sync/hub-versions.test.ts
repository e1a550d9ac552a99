// Files of the hub's root that a pi's change deletes or replaces are kept in .balupi-versions/ (BALUPI_HUB_KEEP_DAYS,
// 30 by default) and go after that many days; changes made on the NAS itself are not kept; the folder is never synced.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { KeptVersions, VERSIONS_DIR } from '../../src/sync/versions.ts';
import { cli, hubFiles, local, piFiles, piIngest, piStat, startHub, startPi, tempDir, waitFor } from './peers.ts';

/** Every file under the root's versions folder, root-relative, with its content. */
async function kept(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const top = path.join(root, VERSIONS_DIR);
  for (const rel of (await fs.readdir(top, { recursive: true }).catch(() => [])) as string[]) {
    const abs = path.join(top, rel);
    if ((await fs.stat(abs)).isFile()) out[rel] = await fs.readFile(abs, 'utf8');
  }
  return out;
}

test('a pi deleting or replacing a file of the root: the hub keeps the old one in .balupi-versions; a NAS edit is not kept; nothing of it syncs', async () => {
  const dir = await tempDir('balupi-versions-');
  const root = path.join(dir.path, 'root');
  await fs.mkdir(path.join(root, 'docs'), { recursive: true });
  await fs.writeFile(path.join(root, 'docs', 'a.txt'), 'a, on the NAS first');
  await fs.writeFile(path.join(root, 'docs', 'b.txt'), 'b, first version');
  await fs.writeFile(path.join(root, 'c.txt'), 'c, removed on the NAS');
  const hub = await startHub({ root, dataDir: path.join(dir.path, 'hub') });
  const pi = await startPi({ hubGrpcPort: hub.ports.grpc, dataDir: path.join(dir.path, 'pi') });
  try {
    await waitFor('the index on the pi', async () => (await piFiles(pi.dataDir)).length === 3);
    assert.equal((await local(pi.dataDir, 'POST', '/local/store/rm?name=docs/a.txt')).status, 200);
    const b = await piStat(pi.dataDir, 'docs/b.txt');
    await piIngest(pi.dataDir, 'docs/b.txt', Buffer.from('b, saved over from the pi'), b.mtimeMs + 60_000);
    await waitFor('the pi\'s changes in the root', async () =>
      (await hubFiles(root)).join() === ['c.txt', 'docs/b.txt'].join() && (await fs.readFile(path.join(root, 'docs', 'b.txt'), 'utf8')) === 'b, saved over from the pi');
    const versions = await kept(root);
    const names = Object.keys(versions).sort();
    assert.equal(names.length, 2, names.join());
    assert.match(names[0]!, /^docs\/a~\d{8}-\d{6}\.txt$/);
    assert.match(names[1]!, /^docs\/b~\d{8}-\d{6}\.txt$/);
    assert.equal(versions[names[0]!], 'a, on the NAS first');
    assert.equal(versions[names[1]!], 'b, first version');
    const summary = JSON.parse((await cli(hub.dataDir, ['status', '--json'])).stdout).root.kept;
    assert.equal(summary.days, 30);
    assert.equal(summary.bytes, 'a, on the NAS first'.length + 'b, first version'.length, 'status counts what is kept');
    assert.ok(summary.maxBytes > 0, 'bounded by default (a tenth of the file system)');
    assert.match((await cli(hub.dataDir, ['status'])).stdout, /kept versions of replaced files: 35 B for 30 days, at most /);

    await fs.rm(path.join(root, 'c.txt'));
    await waitFor('c.txt gone from the pi', async () => !(await piFiles(pi.dataDir)).includes('c.txt'));
    assert.deepEqual(Object.keys(await kept(root)).sort(), names, 'a removal on the NAS itself is not kept');
    assert.deepEqual(await piFiles(pi.dataDir), ['docs/b.txt'], 'the versions folder is not synced');
    assert.equal(await piStat(hub.dataDir, `${VERSIONS_DIR}/${names[0]}`), null, 'nor in the hub\'s index');
  } finally {
    await pi.stop();
    await hub.stop();
    await dir.remove();
  }
});

test('kept versions go after their days, with the folders they leave empty; a version of a change that failed is taken back', async () => {
  const dir = await tempDir('balupi-versions-');
  const root = dir.path;
  let now = new Date(2026, 10, 1, 12, 0, 0);
  const versions = new KeptVersions(root, { days: 30, maxBytes: 0, now: () => now });
  const file = (rel: string, text: string) => fs.mkdir(path.dirname(path.join(root, rel)), { recursive: true }).then(() => fs.writeFile(path.join(root, rel), text));
  const remove = (rel: string) => versions.around(path.join(root, rel), rel, 1, () => fs.rm(path.join(root, rel)));
  try {
    await file('x/old.txt', 'old');
    await remove('x/old.txt');
    now = new Date(2026, 10, 20, 12, 0, 0);
    await file('y/new.txt', 'new');
    await remove('y/new.txt');
    await file('y/new.txt', 'newer');
    await remove('y/new.txt'); // the same second: a second name
    assert.deepEqual(Object.values(await kept(root)).sort(), ['new', 'newer', 'old']);
    await file('z.txt', 'stays in place');
    await assert.rejects(versions.around(path.join(root, 'z.txt'), 'z.txt', 14, () => Promise.reject(new Error('the write failed'))), /the write failed/);
    assert.equal(Object.keys(await kept(root)).length, 3, 'the failed change\'s version was taken back');

    now = new Date(2026, 11, 5, 12, 0, 0); // 34 days after the first, 15 after the others
    assert.deepEqual(await versions.expire(), { files: 1, bytes: 8 });
    assert.deepEqual(Object.values(await kept(root)).sort(), ['new', 'newer']);
    await assert.rejects(fs.stat(path.join(root, VERSIONS_DIR, 'x')), { code: 'ENOENT' }, 'its emptied folder went too');
    now = new Date(2027, 0, 1);
    assert.deepEqual(await versions.expire(), { files: 2, bytes: 0 });
    await assert.rejects(fs.stat(path.join(root, VERSIONS_DIR)), { code: 'ENOENT' });

    const off = new KeptVersions(root, { days: 0, now: () => now });
    await off.around(path.join(root, 'z.txt'), 'z.txt', 14, () => fs.rm(path.join(root, 'z.txt')));
    assert.deepEqual(await kept(root), {}, 'BALUPI_HUB_KEEP_DAYS=0 keeps nothing');
  } finally {
    await dir.remove();
  }
});

test('kept versions past the bound in bytes: the oldest go first, at the upkeep and soon after a version crosses it', async () => {
  const dir = await tempDir('balupi-versions-');
  const root = dir.path;
  let now = new Date(2026, 10, 1, 12, 0, 0);
  const versions = new KeptVersions(root, { days: 30, maxBytes: 2500, now: () => now });
  const replace = async (rel: string, bytes: number) => {
    await fs.writeFile(path.join(root, rel), Buffer.alloc(bytes, rel));
    await versions.around(path.join(root, rel), rel, bytes, () => fs.rm(path.join(root, rel)));
    now = new Date(now.getTime() + 60_000);
  };
  try {
    await replace('a.bin', 1000);
    await replace('b.bin', 1000);
    // The first upkeep counts what is kept; nothing is past its days nor the bound.
    assert.deepEqual(await versions.expire(), { files: 0, bytes: 2000 });
    await replace('c.bin', 1000); // 3000 > 2500: the oldest go until 2250 (90 % of the bound) is left
    await versions.idle();
    const left = Object.keys(await kept(root)).map((n) => n.slice(0, 1)).sort();
    assert.deepEqual(left, ['b', 'c'], 'a.bin, the oldest, went');
    // A bound set lower between starts: the upkeep trims to it.
    const lower = new KeptVersions(root, { days: 30, maxBytes: 1500, now: () => now });
    assert.deepEqual(await lower.expire(), { files: 1, bytes: 1000 });
    assert.deepEqual(Object.keys(await kept(root)).map((n) => n.slice(0, 1)), ['c']);
  } finally {
    await dir.remove();
  }
});

test('a file that cannot be kept does not hold up the change: it goes ahead, and the hub says so', async () => {
  const dir = await tempDir('balupi-versions-');
  const root = dir.path;
  const warned: string[] = [];
  const log = { warn: (_o: unknown, msg: string) => void warned.push(msg) } as unknown as ConstructorParameters<typeof KeptVersions>[1]['log'];
  try {
    await fs.writeFile(path.join(root, VERSIONS_DIR), 'a file where the versions folder goes');
    await fs.writeFile(path.join(root, 'a.txt'), 'removed by a peer');
    const versions = new KeptVersions(root, { days: 30, log });
    await versions.around(path.join(root, 'a.txt'), 'a.txt', 17, () => fs.rm(path.join(root, 'a.txt')));
    await assert.rejects(fs.stat(path.join(root, 'a.txt')), { code: 'ENOENT' }, 'the removal went ahead');
    assert.deepEqual(warned, ["hub root: could not keep the file a peer's change replaces; going on without"]);
  } finally {
    await dir.remove();
  }
});
