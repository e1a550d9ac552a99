// Sign-in, refresh and /auth/me through the Pi against the BaluHost stand-in: forwarded while the NAS is up, answered
// by the Pi from what it learnt while the NAS sleeps, with tokens of BaluHost's exact shape.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { harness, sleepNas, jwtParts } from './harness.ts';
import { magicPacket } from '../../src/nas/wol.ts';
import { MAC } from '../nas/testbed.ts';

const post = (url: string, body: unknown, headers: Record<string, string> = {}) => ({
  method: 'POST' as const, url, headers: { 'content-type': 'application/json', ...headers }, payload: JSON.stringify(body),
});

test('login: forwarded while the NAS is up, then the same password works while it sleeps and a wrong one does not', async () => {
  const h = await harness();
  const tb = h.tb!;
  try {
    const alice = tb.emu.accounts.addUser({ username: 'alice', password: 'Secret-pass1', email: 'alice@example.org' });
    const up = await h.app.inject(post('/api/auth/login', { username: 'alice', password: 'Secret-pass1' }));
    assert.equal(up.statusCode, 200);
    const fromNas = tb.emu.received.at(-1)!;
    assert.equal(fromNas.path, '/api/auth/login');
    assert.deepEqual(up.rawPayload, fromNas.response!.body, 'BaluHost\'s answer passed on byte for byte');
    assert.deepEqual(up.json().user, tb.emu.accounts.userPublic(alice));

    // BaluHost's own 401 for a wrong password is passed on while it is up.
    const wrongUp = await h.app.inject(post('/api/auth/login', { username: 'alice', password: 'nope' }));
    assert.deepEqual([wrongUp.statusCode, wrongUp.json()], [401, { detail: 'Invalid credentials' }]);

    await sleepNas(tb);
    const before = tb.emu.received.length;
    const offline = await h.app.inject(post('/api/auth/login', { username: 'alice', password: 'Secret-pass1' }));
    assert.equal(offline.statusCode, 200, offline.body);
    const body = offline.json();
    assert.deepEqual(Object.keys(body), ['access_token', 'token_type', 'user']);
    assert.equal(body.token_type, 'bearer');
    assert.deepEqual(body.user, tb.emu.accounts.userPublic(alice), 'the user as BaluHost described it');
    // The Pi's token has the header and claims (in order) of BaluHost's own.
    const pi = jwtParts(body.access_token);
    const nas = jwtParts(JSON.parse(fromNas.response!.body.toString()).access_token);
    assert.equal(pi.header, nas.header);
    assert.deepEqual(Object.keys(pi.claims), Object.keys(nas.claims));
    assert.deepEqual({ ...pi.claims, exp: 0, iat: 0 }, { ...nas.claims, exp: 0, iat: 0 });
    assert.equal((pi.claims.exp as number) - (pi.claims.iat as number), 900);
    assert.deepEqual(await h.verifier.verifyAccess(body.access_token), { id: alice.id, username: 'alice', role: 'user' });

    const wrong = await h.app.inject(post('/api/auth/login', { username: 'alice', password: 'Secret-pass2' }));
    assert.deepEqual([wrong.statusCode, wrong.json()], [401, { detail: 'Invalid credentials' }]);
    assert.equal(tb.emu.received.length, before, 'nothing reached BaluHost while it slept');
    assert.equal(tb.wolSends, 0, 'a known user signing in does not wake the NAS');
  } finally {
    await h.close();
  }
});

test('a password BaluHost stops accepting is forgotten by the Pi too', async () => {
  const h = await harness();
  const tb = h.tb!;
  try {
    const bob = tb.emu.accounts.addUser({ username: 'bob', password: 'Old-pass-1' });
    assert.equal((await h.app.inject(post('/api/auth/login', { username: 'bob', password: 'Old-pass-1' }))).statusCode, 200);
    bob.password = 'New-pass-2';
    assert.equal((await h.app.inject(post('/api/auth/login', { username: 'bob', password: 'Old-pass-1' }))).statusCode, 401);
    await sleepNas(tb);
    // The Pi no longer holds a password for bob: only BaluHost can answer, so the Pi wakes it and asks.
    const pending = h.app.inject(post('/api/auth/login', { username: 'bob', password: 'Old-pass-1' }));
    assert.deepEqual(await tb.wol.next(), magicPacket(MAC));
    await tb.emu.comeBack();
    await tb.clock.advance(5_000);
    const res = await pending;
    assert.deepEqual([res.statusCode, res.json()], [401, { detail: 'Invalid credentials' }], 'BaluHost\'s answer, after the wake');
    assert.equal(tb.emu.received.at(-1)!.path, '/api/auth/login');
  } finally {
    await h.close();
  }
});

test('two-factor user while the NAS sleeps: a clear 503 with Retry-After, and the NAS is being woken', async () => {
  const h = await harness();
  const tb = h.tb!;
  try {
    tb.emu.accounts.addUser({ username: 'carol', password: 'Carol-pass1', totp: true });
    const up = await h.app.inject(post('/api/auth/login', { username: 'carol', password: 'Carol-pass1' }));
    assert.equal(up.statusCode, 200);
    assert.equal(up.json().requires_2fa, true, 'BaluHost\'s second-step answer is passed on');
    await sleepNas(tb);
    const res = await h.app.inject(post('/api/auth/login', { username: 'carol', password: 'Carol-pass1' }));
    assert.equal(res.statusCode, 503);
    assert.match(res.json().detail, /second factor.*only the NAS can check.*asleep/);
    assert.equal(res.headers['retry-after'], '60');
    assert.deepEqual(await tb.wol.next(), magicPacket(MAC), 'a Wake-on-LAN packet went to the (loopback) target');
  } finally {
    await h.close();
  }
});

test('refresh: forwarded while up; while the stand-in is down the Pi issues an access token of BaluHost\'s exact shape', async () => {
  const h = await harness();
  const tb = h.tb!;
  try {
    const dave = tb.emu.accounts.addUser({ username: 'dave', password: 'Dave-pass1', role: 'admin' });
    // BaluApp's registration, through the Pi: the user is learnt from the answer.
    const reg = await h.app.inject(post('/api/mobile/register', { token: tb.emu.accounts.registrationToken('dave'), device_info: { device_name: 'Google Pixel 7', device_type: 'android', device_model: 'Pixel 7', os_version: 'Android 14', app_version: '1.0.0' } }));
    assert.equal(reg.statusCode, 200, reg.body);
    const refreshToken = reg.json().refresh_token;

    const up = await h.app.inject(post('/api/auth/refresh', { refresh_token: refreshToken }));
    assert.equal(up.statusCode, 200);
    const nasAnswer = tb.emu.received.at(-1)!;
    assert.equal(nasAnswer.path, '/api/auth/refresh');
    assert.deepEqual(up.rawPayload, nasAnswer.response!.body);

    await tb.emu.goDown(); // down, though the Pi has not noticed yet: the failed forward falls back
    const down = await h.app.inject(post('/api/auth/refresh', { refresh_token: refreshToken }, { authorization: 'Bearer expired.old.token' }));
    assert.equal(down.statusCode, 200, down.body);
    const body = down.json();
    const nasBody = JSON.parse(nasAnswer.response!.body.toString());
    assert.deepEqual(Object.keys(body), Object.keys(nasBody));
    assert.deepEqual(body.user, nasBody.user, 'the user BaluHost sent last time');
    const pi = jwtParts(body.access_token);
    const nas = jwtParts(nasBody.access_token);
    assert.equal(pi.header, nas.header);
    assert.equal(pi.header, '{"alg":"HS256","typ":"JWT"}');
    assert.deepEqual(Object.keys(pi.claims), ['sub', 'username', 'role', 'type', 'exp', 'iat']);
    assert.deepEqual(Object.keys(pi.claims), Object.keys(nas.claims));
    assert.deepEqual([pi.claims.sub, pi.claims.username, pi.claims.role, pi.claims.type], [String(dave.id), 'dave', 'admin', 'access']);
    assert.ok(Number.isInteger(pi.claims.exp) && (pi.claims.exp as number) - (pi.claims.iat as number) === 900);

    // Asleep for good: still answered.
    await tb.run(4, 8);
    assert.equal(tb.nas.state, 'standby');
    assert.equal((await h.app.inject(post('/api/auth/refresh', { refresh_token: refreshToken }))).statusCode, 200);
  } finally {
    await h.close();
  }
});

test('refresh: expired, forged, wrong-type and unknown-user tokens get 401; a token BaluHost revoked stays revoked offline', async () => {
  const h = await harness();
  const tb = h.tb!;
  const acc = tb.emu.accounts;
  try {
    const erin = acc.addUser({ username: 'erin', password: 'Erin-pass1' });
    await h.app.inject(post('/api/auth/login', { username: 'erin', password: 'Erin-pass1' }));
    const revoked = acc.refreshToken(erin);
    const jti = jwtParts(revoked).claims.jti as string;
    acc.refreshTokens.get(jti)!.revoked = true;
    const r1 = await h.app.inject(post('/api/auth/refresh', { refresh_token: revoked }));
    assert.deepEqual([r1.statusCode, r1.json()], [401, { detail: 'Refresh token has been revoked' }]);
    await sleepNas(tb);

    const forger = new (await import('../../src/auth/tokens.ts')).TokenVerifier('not-the-secret-not-the-secret-000');
    const cases: [string, string, string][] = [
      ['revoked by BaluHost earlier', revoked, 'Refresh token has been revoked'],
      ['expired', acc.refreshToken(erin, { now: Date.now() - 8 * 86400_000 }), 'Invalid refresh token'],
      ['forged (another key)', await forger.issueRefresh(erin.id), 'Invalid refresh token'],
      ['an access token', acc.accessToken(erin), 'Invalid refresh token'],
      ['a user the Pi never saw', await h.verifier.issueRefresh(4242), 'Invalid refresh token'],
      ['not a JWT', 'garbage', 'Invalid refresh token'],
    ];
    for (const [what, token, detail] of cases) {
      const res = await h.app.inject(post('/api/auth/refresh', { refresh_token: token }));
      assert.deepEqual([res.statusCode, res.json()], [401, { detail }], what);
    }
    // The good token of the same user still works: nothing above harmed what is stored.
    assert.equal((await h.app.inject(post('/api/auth/refresh', { refresh_token: acc.refreshToken(erin) }))).statusCode, 200);
  } finally {
    await h.close();
  }
});

test('/auth/me: from BaluHost while up; from the cache while down; from the token claims for a user never seen; never 5xx', async () => {
  const h = await harness();
  const tb = h.tb!;
  try {
    const fay = tb.emu.accounts.addUser({ username: 'fay', password: 'Fay-pass-1', email: 'fay@example.org', smb_enabled: true });
    const token = tb.emu.accounts.accessToken(fay);
    const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    const up = await h.app.inject({ url: '/api/auth/me', headers: auth });
    assert.equal(up.statusCode, 200);
    assert.deepEqual(up.json(), tb.emu.accounts.userPublic(fay));
    assert.equal(tb.emu.received.at(-1)!.headers['x-sync-trigger'], 'auto', '/auth/me never wakes a soft-sleeping NAS');

    tb.emu.mode = 'error'; // BaluHost answers 503: the Pi answers instead
    const broken = await h.app.inject({ url: '/api/auth/me', headers: auth });
    assert.deepEqual([broken.statusCode, broken.json()], [200, tb.emu.accounts.userPublic(fay)]);
    tb.emu.mode = 'up';

    await sleepNas(tb);
    const down = await h.app.inject({ url: '/api/auth/me', headers: auth });
    assert.deepEqual([down.statusCode, down.json()], [200, tb.emu.accounts.userPublic(fay)]);

    const stranger = await h.verifier.issueAccess({ id: 77, username: 'gus', role: 'user' });
    const unseen = await h.app.inject({ url: '/api/auth/me', headers: { authorization: `Bearer ${stranger}` } });
    assert.equal(unseen.statusCode, 200);
    assert.deepEqual(unseen.json(), { username: 'gus', email: null, id: 77, role: 'user', is_active: true, smb_enabled: false, created_at: '', updated_at: null });

    const bad = await h.app.inject({ url: '/api/auth/me', headers: { authorization: 'Bearer forged.token.here' } });
    assert.deepEqual([bad.statusCode, bad.json()], [401, { detail: 'Could not validate credentials' }]);
    const none = await h.app.inject({ url: '/api/auth/me' });
    assert.deepEqual([none.statusCode, none.json()], [401, { detail: 'No authentication token provided' }]);
  } finally {
    await h.close();
  }
});

test('a user BaluHost says no longer exists is forgotten: no offline refresh for it', async () => {
  const h = await harness();
  const tb = h.tb!;
  try {
    const hal = tb.emu.accounts.addUser({ username: 'hal', password: 'Hal-pass-1' });
    await h.app.inject(post('/api/auth/login', { username: 'hal', password: 'Hal-pass-1' }));
    const refresh = tb.emu.accounts.refreshToken(hal);
    tb.emu.accounts.users.delete('hal');
    const me = await h.app.inject({ url: '/api/auth/me', headers: { authorization: `Bearer ${tb.emu.accounts.accessToken(hal)}` } });
    assert.deepEqual([me.statusCode, me.json()], [401, { detail: 'User no longer exists' }]);
    await sleepNas(tb);
    const res = await h.app.inject(post('/api/auth/refresh', { refresh_token: refresh }));
    assert.deepEqual([res.statusCode, res.json()], [401, { detail: 'Invalid refresh token' }]);
  } finally {
    await h.close();
  }
});
