// Syncthing's conflict rules and names (lib/model/folder_sendrecv.go): older mtime loses, equal mtimes -> larger
// peer id loses, modify beats delete; <name>.sync-conflict-YYYYMMDD-HHMMSS-<peer>.<ext>.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { conflictName, decide, isConflictCopy } from '../../src/sync/conflict.ts';

const at = new Date(2024, 0, 2, 3, 4, 5); // local time, as Syncthing uses the detecting device's clock

test('conflict names follow Syncthing: extension of the last segment kept, directories untouched', () => {
  assert.equal(conflictName('photos/img.jpg', at, 'ABCDEFG'), 'photos/img.sync-conflict-20240102-030405-ABCDEFG.jpg');
  assert.equal(conflictName('archive.tar.gz', at, 'ABCDEFG'), 'archive.tar.sync-conflict-20240102-030405-ABCDEFG.gz');
  assert.equal(conflictName('Makefile', at, 'ABCDEFG'), 'Makefile.sync-conflict-20240102-030405-ABCDEFG');
  assert.equal(conflictName('dir.v2/notes', at, 'ABCDEFG'), 'dir.v2/notes.sync-conflict-20240102-030405-ABCDEFG', 'a dot in a directory is not an extension');
  assert.equal(conflictName('.bashrc', at, 'ABCDEFG'), '.sync-conflict-20240102-030405-ABCDEFG.bashrc', "Go's filepath.Ext treats a dotfile's name as its extension");
  assert.equal(isConflictCopy(conflictName('a/b.txt', at, 'ABCDEFG')), true);
  assert.equal(isConflictCopy('a/b.txt'), false);
});

test('older modification loses; equal times: the larger peer id loses; a modification beats a deletion', () => {
  const v = (mtimeMs: number, peer: string, deleted = false) => ({ mtimeMs, peer, deleted });
  assert.equal(decide(v(100, 'AAAAAAA'), v(200, 'BBBBBBB')), 'incoming', 'incoming is newer');
  assert.equal(decide(v(300, 'AAAAAAA'), v(200, 'BBBBBBB')), 'current', 'current is newer');
  assert.equal(decide(v(100, 'BBBBBBB'), v(100, 'AAAAAAA')), 'incoming', 'tie: the current peer has the larger id and loses');
  assert.equal(decide(v(100, 'AAAAAAA'), v(100, 'BBBBBBB')), 'current', 'tie: the incoming peer has the larger id and loses');
  assert.equal(decide(v(999, 'AAAAAAA', true), v(1, 'BBBBBBB')), 'incoming', 'a newer deletion still loses to a modification');
  assert.equal(decide(v(1, 'AAAAAAA'), v(999, 'BBBBBBB', true)), 'current', 'an incoming deletion loses to a current modification');
});
