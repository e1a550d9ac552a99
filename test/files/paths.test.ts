import { test } from 'node:test';
import assert from 'node:assert/strict';
import { authorize, normalizePath, PathError, resolvePath } from '../../src/files/paths.ts';
import type { User } from '../../src/auth/tokens.ts';

const alice: User = { id: 2, username: 'alice', role: 'user' };
const admin: User = { id: 1, username: 'admin', role: 'admin' };

const code = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof PathError, String(err));
    return err.code;
  }
  return 'ok';
};

test('client path variants become one store name', () => {
  assert.equal(normalizePath('alice/docs/a.txt'), 'alice/docs/a.txt');
  assert.equal(normalizePath('/alice/docs/a.txt'), 'alice/docs/a.txt');
  assert.equal(normalizePath('//alice//docs/./a.txt/'), 'alice/docs/a.txt');
  assert.equal(normalizePath(''), '');
  assert.equal(normalizePath('/'), '');
  assert.equal(normalizePath('Shared/a b+c.txt'), 'Shared/a b+c.txt');
});

test('traversal, NUL, control characters and backslashes are refused, not cleaned up', () => {
  for (const bad of ['..', 'alice/../bob', 'alice/..', '../etc/passwd', 'alice/a\0.txt', 'alice/a\n', 'alice\\..\\bob', 'alice/\ud800'])
    assert.equal(code(() => normalizePath(bad)), 'invalid_path', JSON.stringify(bad));
});

test('jail: non-admins reach Shared and their home only, admins everything', () => {
  assert.equal(code(() => resolvePath(alice, 'alice/x', 'write')), 'ok');
  assert.equal(code(() => resolvePath(alice, 'Shared/x', 'write')), 'ok');
  assert.equal(code(() => resolvePath(alice, '', 'read')), 'ok');
  assert.equal(code(() => resolvePath(alice, 'bob/x', 'read')), 'access_denied');
  assert.equal(code(() => resolvePath(alice, 'alicex/y', 'read')), 'access_denied');
  assert.equal(code(() => resolvePath(alice, 'alice/.system/y', 'read')), 'access_denied');
  assert.equal(code(() => resolvePath(alice, 'alice', 'write')), 'access_denied', 'a home folder itself is not deletable');
  assert.equal(code(() => resolvePath(alice, '', 'write')), 'access_denied');
  assert.equal(code(() => authorize(admin, 'bob/x', 'write')), 'ok');
  assert.equal(code(() => authorize(admin, '.system/x', 'read')), 'ok');
});
