// The hub's ignore rules (BALUPI_HUB_IGNORE): which root-relative paths they leave out, which patterns they refuse,
// and how the setting reads from the environment and from a YAML list.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DEFAULT_HUB_IGNORE, IgnoreRules, parseIgnoreList } from '../../src/sync/ignore.ts';
import { ConfigError, loadConfig } from '../../src/config.ts';
import { tempDir } from '../helpers/daemon-process.ts';

test('the defaults leave out BaluHost\'s own folders at any depth, and everything below them', () => {
  const r = new IgnoreRules(DEFAULT_HUB_IGNORE);
  for (const p of ['.tmp', '.tmp/upload-1/part-0', '.system/avatars/1.png', 'lost+found/#123', '.Trash-1000/files/x', 'alice/.Trash-1000', 'Shared/.tmp/x']) {
    assert.ok(r.ignores(p), p);
  }
  for (const p of ['', 'Shared/a.txt', '.tmpfile', 'x.tmp', 'Trash-1000/x', 'my.system/x', '.Trash', 'alice/.trash-1000/x']) {
    assert.ok(!r.ignores(p), p);
  }
});

test('globs match within one name; a pattern with a slash is anchored at the root', () => {
  const r = new IgnoreRules(['*.part', 'backup-????', 'admin/Downloads', '/scratch', 'photos/*/raw/']);
  const yes = ['a.part', 'Shared/dl/movie.mkv.part', 'backup-2026', 'x/backup-2026/y', 'admin/Downloads', 'admin/Downloads/a/b.iso', 'scratch/x', 'photos/2026/raw', 'photos/2026/raw/a.cr2'];
  const no = ['a.part.txt', 'backup-26', 'backup-20266', 'Shared/admin/Downloads/x', 'admin/Downloads2', 'x/scratch', 'photos/raw', 'photos/a/b/raw', 'admin'];
  for (const p of yes) assert.ok(r.ignores(p), `${p} ignored`);
  for (const p of no) assert.ok(!r.ignores(p), `${p} synced`);
  assert.ok(r.ignoresName('x.part') && !r.ignoresName('Downloads'), 'only patterns without a slash match a bare name');
});

test('characters that mean something in regular expressions are taken literally', () => {
  const r = new IgnoreRules(['a+b (1).[x]', '$^|{}']);
  assert.ok(r.ignores('dir/a+b (1).[x]') && r.ignores('$^|{}'));
  assert.ok(!r.ignores('aab (1).[x]') && !r.ignores('a+b (1)x[x]'));
});

test('empty rules ignore nothing; unusable patterns are refused by name', () => {
  assert.ok(new IgnoreRules([]).empty);
  assert.ok(!new IgnoreRules([]).ignores('.tmp/x'));
  assert.deepEqual(parseIgnoreList(''), []);
  assert.deepEqual(parseIgnoreList(' .tmp , *.part ,, '), ['.tmp', '*.part']);
  for (const bad of ['a//b', '../x', 'a/./b', '/']) assert.throws(() => parseIgnoreList(bad), new RegExp(`ignore pattern "${bad.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}"`), bad);
});

test('BALUPI_HUB_IGNORE: the default, the environment (empty: nothing), a YAML list, and a clear error', async () => {
  assert.deepEqual(loadConfig({}).hubIgnore, [...DEFAULT_HUB_IGNORE]);
  assert.deepEqual(loadConfig({ BALUPI_HUB_IGNORE: '' }).hubIgnore, []);
  assert.deepEqual(loadConfig({ BALUPI_HUB_IGNORE: '.tmp,*.part' }).hubIgnore, ['.tmp', '*.part']);
  const dir = await tempDir();
  try {
    const file = join(dir.path, 'balupi.yaml');
    await writeFile(file, 'hub_ignore:\n  - .tmp\n  - "*.part"\n  - admin/Downloads\n');
    assert.deepEqual(loadConfig({}, file).hubIgnore, ['.tmp', '*.part', 'admin/Downloads']);
  } finally {
    await dir.remove();
  }
  assert.throws(() => loadConfig({ BALUPI_HUB_IGNORE: '.tmp,../up' }), (err: unknown) => err instanceof ConfigError && /BALUPI_HUB_IGNORE.*"\.\.\/up"/.test(err.message));
});
