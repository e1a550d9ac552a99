// Pairing forwarded to the BaluHost stand-in byte for byte (bodies and headers as BaluApp and BaluDesk send them,
// ../shared/reference/clients.md §C), the NAS woken first when it sleeps; rate limits; bad bodies; a standalone Pi.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { harness, sleepNas } from './harness.ts';
import { hashPassword } from '../../src/auth/passwords.ts';
import { magicPacket } from '../../src/nas/wol.ts';
import { MAC } from '../nas/testbed.ts';

test('BaluApp\'s QR registration and BaluDesk\'s device-code flow pass through unchanged; the user is learnt', async () => {
  const h = await harness();
  const tb = h.tb!;
  try {
    tb.emu.accounts.addUser({ username: 'sven', password: 'Sven-pass1', role: 'admin', created_at: '2026-02-01T10:00:00+00:00' });
    // BaluApp: Gson order, OkHttp's content type, its own Retrofit instance (no X-Device-ID).
    const appBody = `{"token":"${tb.emu.accounts.registrationToken('sven')}","device_info":{"device_name":"Google Pixel 7","device_type":"android","device_model":"Pixel 7","os_version":"Android 14","app_version":"1.0.0"}}`;
    const appHeaders = { 'content-type': 'application/json; charset=UTF-8', 'user-agent': 'okhttp/4.12.0', 'accept-encoding': 'gzip' };
    const reg = await h.app.inject({ method: 'POST', url: '/api/mobile/register', headers: appHeaders, payload: appBody });
    assert.equal(reg.statusCode, 200, reg.body);
    const seen = tb.emu.received.at(-1)!;
    assert.equal(seen.path, '/api/mobile/register');
    assert.equal(seen.body.toString('utf8'), appBody, 'request body byte for byte');
    for (const [k, v] of Object.entries(appHeaders)) assert.equal(seen.headers[k], v, `header ${k}`);
    assert.equal(seen.headers['x-sync-trigger'], undefined, 'a person is pairing: a soft-sleeping NAS may wake');
    assert.deepEqual(reg.rawPayload, seen.response!.body, 'answer byte for byte');
    assert.equal(reg.headers['content-type'], 'application/json');
    assert.match(reg.json().user.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);

    // BaluDesk: nlohmann's sorted keys, Content-Type on every request.
    const deskHeaders = { 'content-type': 'application/json' };
    const codeBody = '{"device_id":"3f2c6a1e-1111-4222-8333-944445555666","device_name":"DESKTOP-ABC","platform":"windows"}';
    const code = await h.app.inject({ method: 'POST', url: '/api/desktop-pairing/device-code', headers: deskHeaders, payload: codeBody });
    assert.equal(code.statusCode, 200);
    assert.equal(tb.emu.received.at(-1)!.body.toString(), codeBody);
    assert.deepEqual(code.rawPayload, tb.emu.received.at(-1)!.response!.body);
    const { device_code, user_code, verification_url, expires_in, interval } = code.json();
    assert.match(user_code, /^\d{6}$/);
    assert.deepEqual([typeof verification_url, expires_in, interval], ['string', 600, 5]);

    const poll = () => h.app.inject({ method: 'POST', url: '/api/desktop-pairing/poll', headers: deskHeaders, payload: `{"device_code":"${device_code}"}` });
    assert.deepEqual((await poll()).json(), { status: 'authorization_pending' });
    tb.emu.accounts.approveDesktop(user_code, 'sven');
    const approved = await poll();
    assert.equal(approved.json().status, 'approved');
    assert.deepEqual(approved.rawPayload, tb.emu.received.at(-1)!.response!.body);
    const gone = await poll();
    assert.deepEqual([gone.statusCode, gone.json()], [404, { detail: 'Invalid device code' }], 'BaluDesk reads this 404 as expired');

    const access = approved.json().access_token;
    const regBody = '{"device_id":"3f2c6a1e-1111-4222-8333-944445555666","device_name":"DESKTOP-ABC"}';
    const rd = await h.app.inject({ method: 'POST', url: '/api/sync/register-desktop', headers: { ...deskHeaders, authorization: `Bearer ${access}` }, payload: regBody });
    assert.equal(rd.statusCode, 200);
    assert.equal(rd.json().device_id, '3f2c6a1e-1111-4222-8333-944445555666');
    assert.equal(tb.emu.received.at(-1)!.headers.authorization, `Bearer ${access}`);
    const svenId = tb.emu.accounts.users.get('sven')!.id;
    assert.equal((await h.devices.get(svenId, '3f2c6a1e-1111-4222-8333-944445555666'))?.deviceName, 'DESKTOP-ABC', 'BaluHost accepted it, so the Pi knows the device for /api/sync/changes');
    const noToken = await h.app.inject({ method: 'POST', url: '/api/sync/register-desktop', headers: deskHeaders, payload: regBody });
    assert.deepEqual([noToken.statusCode, noToken.json()], [401, { detail: 'No authentication token provided' }]);

    // The paired user is known now: /auth/me answers while the NAS sleeps.
    await sleepNas(tb);
    const me = await h.app.inject({ url: '/api/auth/me', headers: { authorization: `Bearer ${access}`, 'content-type': 'application/json' } });
    assert.equal(me.statusCode, 200);
    assert.deepEqual([me.json().username, me.json().role, me.json().id], ['sven', 'admin', tb.emu.accounts.users.get('sven')!.id]);
  } finally {
    await h.close();
  }
});

test('pairing while the NAS sleeps wakes it first (Wake-on-LAN to a loopback target), then forwards', async () => {
  const h = await harness();
  const tb = h.tb!;
  try {
    await sleepNas(tb);
    const before = tb.emu.received.length;
    const pending = h.app.inject({ method: 'POST', url: '/api/desktop-pairing/device-code', headers: { 'content-type': 'application/json' }, payload: '{"device_id":"d1","device_name":"PC","platform":"linux"}' });
    assert.deepEqual(await tb.wol.next(), magicPacket(MAC));
    assert.equal(tb.emu.received.length, before, 'nothing forwarded before the NAS is up');
    await tb.emu.comeBack();
    await tb.clock.advance(5_000);
    const res = await pending;
    assert.equal(res.statusCode, 200, res.body);
    assert.match(res.json().user_code, /^\d{6}$/);
    assert.equal(tb.nas.state, 'online');
  } finally {
    await h.close();
  }
});

test('a NAS that cannot be woken: 503 with the reason and Retry-After', async () => {
  const h = await harness({ nas: { nasMac: null } });
  const tb = h.tb!;
  try {
    await sleepNas(tb);
    const res = await h.app.inject({ method: 'POST', url: '/api/mobile/register', headers: { 'content-type': 'application/json' }, payload: '{"token":"reg_x"}' });
    assert.equal(res.statusCode, 503);
    assert.match(res.json().detail, /BALUPI_NAS_MAC/);
    assert.equal(res.headers['retry-after'], '60');
  } finally {
    await h.close();
  }
});

test('429 after BaluHost\'s limit, with its body and headers; other routes and addresses are not affected', async () => {
  const h = await harness();
  const tb = h.tb!;
  try {
    const ivy = tb.emu.accounts.addUser({ username: 'ivy', password: 'Ivy-pass-1' });
    const login = (ip = '127.0.0.1') => h.app.inject({ method: 'POST', url: '/api/auth/login', remoteAddress: ip, headers: { 'content-type': 'application/json' }, payload: '{"username":"ivy","password":"wrong"}' });
    for (let i = 0; i < 5; i++) assert.equal((await login()).statusCode, 401, `attempt ${i + 1}`);
    const forwardedBefore = tb.emu.received.length;
    const limited = await login();
    assert.equal(limited.statusCode, 429);
    const body = limited.json();
    assert.deepEqual(Object.keys(body), ['error', 'detail', 'retry_after']);
    assert.deepEqual([body.error, body.detail], ['Too Many Requests', 'Rate limit exceeded. Please try again later.']);
    assert.ok(Number.isInteger(body.retry_after) && body.retry_after >= 1 && body.retry_after <= 60);
    assert.equal(limited.headers['retry-after'], String(body.retry_after));
    assert.equal(limited.headers['x-ratelimit-limit'], '5');
    assert.ok(Number(limited.headers['x-ratelimit-reset']) > Date.now() / 1000);
    assert.equal(tb.emu.received.length, forwardedBefore, 'a refused request is not forwarded');
    assert.equal((await login('10.0.0.9')).statusCode, 401, 'another address has its own window');
    const refresh = await h.app.inject({ method: 'POST', url: '/api/auth/refresh', headers: { 'content-type': 'application/json' }, payload: '{"refresh_token":"x"}' });
    assert.equal(refresh.statusCode, 401, 'refresh has its own limit');
    // /auth/me is never limited: BaluDesk would drop its pairing on a 429 there.
    const token = tb.emu.accounts.accessToken(ivy);
    for (let i = 0; i < 40; i++) assert.equal((await h.app.inject({ url: '/api/auth/me', headers: { authorization: `Bearer ${token}` } })).statusCode, 200);
  } finally {
    await h.close();
  }
});

test('bad bodies: form-encoded, broken JSON, missing fields, oversized; FastAPI-style 422 / 413, nothing stored is harmed', async () => {
  const h = await harness();
  const tb = h.tb!;
  try {
    tb.emu.accounts.addUser({ username: 'jo', password: 'Jo-pass-12' });
    assert.equal((await h.app.inject({ method: 'POST', url: '/api/auth/login', headers: { 'content-type': 'application/json' }, payload: '{"username":"jo","password":"Jo-pass-12"}' })).statusCode, 200);
    const forwarded = tb.emu.received.length;
    const bad: [string, Record<string, string>, string | Buffer, number][] = [
      ['form body', { 'content-type': 'application/x-www-form-urlencoded' }, 'username=jo&password=x', 422],
      ['broken JSON', { 'content-type': 'application/json' }, '{"username":"jo",', 422],
      ['missing password', { 'content-type': 'application/json' }, '{"username":"jo"}', 422],
      ['a JSON array', { 'content-type': 'application/json' }, '["jo","x"]', 422],
      ['oversized (70 KiB)', { 'content-type': 'application/json' }, JSON.stringify({ username: 'jo', password: 'x'.repeat(70 * 1024) }), 413],
    ];
    for (const [what, headers, payload, status] of bad) {
      const res = await h.app.inject({ method: 'POST', url: '/api/auth/login', headers, payload });
      assert.equal(res.statusCode, status, `${what}: ${res.body}`);
      assert.ok('detail' in res.json(), what);
      if (status === 422) assert.ok(Array.isArray(res.json().detail) && res.json().detail[0].loc[0] === 'body', what);
    }
    const form = await h.app.inject({ method: 'POST', url: '/api/auth/login', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'username=a&password=b' });
    assert.deepEqual(form.json(), { detail: [{ type: 'model_attributes_type', loc: ['body'], msg: 'Input should be a valid dictionary or object to extract fields from', input: "b'username=a&password=b'" }] });
    const pairing = await h.app.inject({ method: 'POST', url: '/api/mobile/register', headers: { 'content-type': 'application/json' }, payload: '{"token":' });
    assert.equal(pairing.statusCode, 422);
    assert.equal(tb.emu.received.length, forwarded, 'no bad body was forwarded');
    // What was learnt survives: the password still signs in while the NAS sleeps.
    await sleepNas(tb);
    assert.equal((await h.app.inject({ method: 'POST', url: '/api/auth/login', headers: { 'content-type': 'application/json' }, payload: '{"username":"jo","password":"Jo-pass-12"}' })).statusCode, 200);
  } finally {
    await h.close();
  }
});

test('standalone Pi (no NAS): local users sign in, refresh and read /auth/me; pairing says why it cannot work', async () => {
  const h = await harness({ standalone: true });
  try {
    const kim = await h.users.addLocal('kim', 'admin', await hashPassword('Kim-pass-1'), null);
    assert.ok(kim.id >= 1_000_001, 'local ids never collide with BaluHost\'s');
    const login = (password: string) => h.app.inject({ method: 'POST', url: '/api/auth/login', headers: { 'content-type': 'application/json' }, payload: JSON.stringify({ username: 'kim', password }) });
    const ok = await login('Kim-pass-1');
    assert.equal(ok.statusCode, 200);
    assert.deepEqual(Object.keys(ok.json()), ['access_token', 'token_type', 'user']);
    assert.deepEqual(Object.keys(ok.json().user), ['username', 'email', 'id', 'role', 'is_active', 'smb_enabled', 'created_at', 'updated_at']);
    assert.deepEqual(await h.verifier.verifyAccess(ok.json().access_token), { id: kim.id, username: 'kim', role: 'admin' });
    assert.deepEqual([(await login('wrong')).statusCode, (await login('wrong')).json()], [401, { detail: 'Invalid credentials' }]);
    const unknown = await h.app.inject({ method: 'POST', url: '/api/auth/login', headers: { 'content-type': 'application/json' }, payload: '{"username":"nobody","password":"x"}' });
    assert.deepEqual([unknown.statusCode, unknown.json()], [401, { detail: 'Invalid credentials' }]);

    const me = await h.app.inject({ url: '/api/auth/me', headers: { authorization: `Bearer ${ok.json().access_token}` } });
    assert.deepEqual(me.json(), ok.json().user);
    const refreshed = await h.app.inject({ method: 'POST', url: '/api/auth/refresh', headers: { 'content-type': 'application/json' }, payload: JSON.stringify({ refresh_token: await h.verifier.issueRefresh(kim.id) }) });
    assert.equal(refreshed.statusCode, 200);
    assert.equal(refreshed.json().user.username, 'kim');

    const pair = await h.app.inject({ method: 'POST', url: '/api/desktop-pairing/device-code', headers: { 'content-type': 'application/json' }, payload: '{"device_id":"d","device_name":"n","platform":"linux"}' });
    assert.equal(pair.statusCode, 503);
    assert.match(pair.json().detail, /BALUPI_NAS_URL/);

    // register-desktop needs no NAS: a standalone Pi registers the device itself, in BaluHost's answer shape.
    const auth = { authorization: `Bearer ${ok.json().access_token}`, 'content-type': 'application/json' };
    const reg = () => h.app.inject({ method: 'POST', url: '/api/sync/register-desktop', headers: auth, payload: '{"device_id":"desk-1","device_name":"DESKTOP-ABC"}' });
    assert.deepEqual((await reg()).json(), { device_id: 'desk-1', device_name: 'DESKTOP-ABC', status: 'registered', change_token: null });
    assert.equal((await reg()).json().status, 'already_registered');
    assert.equal((await h.devices.get(kim.id, 'desk-1'))?.deviceName, 'DESKTOP-ABC');
    const bad = await h.app.inject({ method: 'POST', url: '/api/sync/register-desktop', headers: auth, payload: '{"device_name":"no id"}' });
    assert.equal(bad.statusCode, 422);
  } finally {
    await h.close();
  }
});
