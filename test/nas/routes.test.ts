// /api/nas/* and /api/handshake/* through the real Fastify app (inject), with a BaluHost-shaped token where one is
// needed and BaluHost-signed handshake calls where it signs: shapes, 401s for every HMAC failure, the error envelope.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { SignJWT } from 'jose';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/http/app.ts';
import { TokenVerifier } from '../../src/auth/tokens.ts';
import { createLogger } from '../../src/log.ts';
import { nasRoutes } from '../../src/routes/nas.ts';
import { handshakeRoutes } from '../../src/routes/handshake.ts';
import { baluhostCall, baluhostSnapshot, COMING_ONLINE, GOING_OFFLINE, type SignedCall } from '../emulators/baluhost.ts';
import { testbed, until, SECRET, type Testbed } from './testbed.ts';

const JWT_SECRET = 'a-baluhost-secret-key-of-32-chars!!';
let tb: Testbed;
let app: FastifyInstance;
let auth: { authorization: string };

before(async () => {
  tb = await testbed();
  app = await buildApp({
    logger: createLogger({ logLevel: 'silent', logFormat: 'json' }),
    verifier: new TokenVerifier(JWT_SECRET),
    plugins: [(a) => a.register(nasRoutes, { nas: tb.nas }), (a) => a.register(handshakeRoutes, { nas: tb.nas })],
  });
  const now = Math.floor(Date.now() / 1000);
  const token = await new SignJWT({ sub: '5', username: 'alice', role: 'user', type: 'access', iat: now, exp: now + 900 })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).sign(new TextEncoder().encode(JWT_SECRET));
  auth = { authorization: `Bearer ${token}` };
});

after(async () => {
  await app.close();
  await tb.close();
});

const nowS = () => Math.floor(tb.clock.now() / 1000);
const send = (c: SignedCall) => app.inject({ method: c.method, url: c.path, headers: c.headers, payload: c.body });

test('without a token: /api/nas/* and the dashboard reads answer 401; the handshake POSTs are not token-checked', async () => {
  for (const [method, url] of [['GET', '/api/nas/status'], ['POST', '/api/nas/wol'], ['GET', '/api/nas/history'], ['GET', '/api/handshake/status'], ['GET', '/api/handshake/snapshot']] as const) {
    const res = await app.inject({ method, url });
    assert.equal(res.statusCode, 401, url);
    assert.deepEqual(res.json(), { detail: 'No authentication token provided' }, url);
  }
  const unsigned = await app.inject({ method: 'POST', url: COMING_ONLINE });
  assert.deepEqual([unsigned.statusCode, unsigned.json()], [401, { detail: 'Missing HMAC headers' }], 'refused by HMAC, not by the token layer');
});

test('GET /api/nas/status has the fields the issue names, filled from the state machine and the plug', async () => {
  await tb.run(1, 45);
  const res = await app.inject({ url: '/api/nas/status', headers: auth });
  assert.equal(res.statusCode, 200);
  const s = res.json();
  for (const k of ['online', 'nas_state', 'since', 'reason', 'power_w', 'power_state', 'url', 'version', 'last_wake']) assert.ok(k in s, k);
  assert.equal(s.online, true);
  assert.equal(s.nas_state, 'online');
  assert.equal(s.power_w, 45);
  assert.equal(s.power_state, 'idle');
  assert.equal(s.url, tb.emu.url);
  assert.equal(s.version, '1.38.0');
  assert.equal(s.last_wake, null);
  assert.ok(!Number.isNaN(Date.parse(s.since)));
});

test('going-offline signed like today\'s BaluHost is accepted over HTTP (both httpx forms); replay, stale and wrong signature get 401', async () => {
  const old = baluhostCall(SECRET, GOING_OFFLINE, baluhostSnapshot(), { timestamp: nowS() });
  const res = await send(old);
  assert.equal(res.statusCode, 200, res.body);
  assert.deepEqual(res.json(), { acknowledged: true, dns_switched: false, snapshot_stored: true, nas_state: 'offline' });
  assert.equal(tb.nas.state, 'offline');

  const replay = await send(old);
  assert.deepEqual([replay.statusCode, replay.json()], [401, { detail: 'Replayed request (signature already used)' }]);
  const stale = await send(baluhostCall(SECRET, GOING_OFFLINE, baluhostSnapshot(), { timestamp: nowS() - 120 }));
  assert.deepEqual([stale.statusCode, stale.json()], [401, { detail: 'Timestamp too old (120s)' }]);
  const wrong = await send(baluhostCall('not-the-shared-secret-but-just-as-long!!', GOING_OFFLINE, baluhostSnapshot(), { timestamp: nowS() }));
  assert.deepEqual([wrong.statusCode, wrong.json()], [401, { detail: 'Invalid HMAC signature' }]);

  const modern = await send(baluhostCall(SECRET, GOING_OFFLINE, baluhostSnapshot(), { timestamp: nowS() - 1, httpx: '0.28' }));
  assert.equal(modern.statusCode, 200, modern.body);

  const snap = await app.inject({ url: '/api/handshake/snapshot', headers: auth });
  assert.equal(snap.statusCode, 200);
  assert.equal(snap.json().system.hostname, 'baluhöst');
  assert.equal(snap.json().system.ram_total_gb, 16);
  assert.deepEqual(Object.keys(snap.json()).slice(0, 3), ['version', 'generated_at', 'baluhost_version'], 'BaluHost\'s key order kept');

  const status = await app.inject({ url: '/api/handshake/status', headers: auth });
  assert.deepEqual(Object.keys(status.json()).sort(), ['inbox_files', 'inbox_size_mb', 'last_snapshot', 'nas_state', 'since']);
  assert.equal(status.json().nas_state, 'offline');
  assert.equal(status.json().last_snapshot, new Date(tb.clock.now()).toISOString());
});

test('coming-online (no body, JSON content type, as BaluHost sends it) → online, "online" fires, the reply is what BaluHost reads', async () => {
  const fired: string[] = [];
  const on = (e: { via: string }) => fired.push(e.via);
  tb.nas.on('online', on);
  try {
    await tb.clock.advance(1000);
    const res = await send(baluhostCall(SECRET, COMING_ONLINE, null, { timestamp: nowS() }));
    assert.equal(res.statusCode, 200, res.body);
    const body = res.json();
    assert.equal(body.acknowledged, true);
    assert.equal(body.files_transferred, 0);
    assert.equal(body.upload_flush, 'triggered');
    assert.equal(tb.nas.state, 'online');
    assert.deepEqual(fired, ['handshake']);
  } finally {
    tb.nas.off('online', on);
  }
});

test('POST /api/nas/wol (no body, or an empty JSON one): BaluHost-shaped answer, then 400 with the reason', async () => {
  await tb.emu.goDown();
  await tb.clock.advance(70_000); // past the quiet window of the going-offline calls
  await tb.run(5, 8);
  assert.equal(tb.nas.state, 'standby');
  const res = await app.inject({ method: 'POST', url: '/api/nas/wol', headers: { ...auth, 'content-type': 'application/json' } });
  assert.equal(res.statusCode, 200, res.body);
  assert.deepEqual(res.json(), { wol_sent: true, nas_previous_state: 'standby', estimated_boot_time_s: 60 });
  await tb.wol.next();
  await until(tb.nas, 'booting');
  const again = await app.inject({ method: 'POST', url: '/api/nas/wol', headers: auth });
  assert.deepEqual([again.statusCode, again.json()], [400, { detail: 'NAS is already booting' }]);
  const status = (await app.inject({ url: '/api/nas/status', headers: auth })).json();
  assert.equal(status.last_wake.requested_by, 'alice');
  assert.equal(status.last_wake.outcome, 'pending');
});

test('GET /api/nas/history: newest first in BaluHost\'s history vocabulary; the limit is validated', async () => {
  const res = await app.inject({ url: '/api/nas/history?limit=2', headers: auth });
  assert.equal(res.statusCode, 200);
  const h = res.json();
  assert.equal(h.entries.length, 2);
  assert.ok(h.total > 2);
  assert.deepEqual(Object.keys(h.entries[0]).sort(), ['new_state', 'previous_state', 'reason', 'timestamp', 'triggered_by']);
  assert.equal(h.entries[0].new_state, 'booting');
  assert.equal(h.entries[0].triggered_by, 'wake');
  assert.ok(Date.parse(h.entries[0].timestamp) >= Date.parse(h.entries[1].timestamp));
  for (const bad of ['0', '201', 'x']) {
    const r = await app.inject({ url: `/api/nas/history?limit=${bad}`, headers: auth });
    assert.equal(r.statusCode, 422, bad);
  }
});

test('without a handshake secret the handshake endpoints answer 503 and change nothing; a non-JSON body keeps the old snapshot', async () => {
  const other = await testbed({ handshakeSecret: null });
  const bare = await buildApp({
    logger: createLogger({ logLevel: 'silent', logFormat: 'json' }),
    verifier: new TokenVerifier(JWT_SECRET),
    plugins: [(a) => a.register(handshakeRoutes, { nas: other.nas })],
  });
  try {
    const c = baluhostCall(SECRET, GOING_OFFLINE, baluhostSnapshot(), { timestamp: Math.floor(other.clock.now() / 1000) });
    const res = await bare.inject({ method: 'POST', url: c.path, headers: c.headers, payload: c.body });
    assert.deepEqual([res.statusCode, res.json()], [503, { detail: 'Handshake secret not configured' }]);
    assert.equal(other.nas.state, 'online');
  } finally {
    await bare.close();
    await other.close();
  }
  // Signed, but not JSON: the shutdown counts, the stored snapshot stays.
  const before = (await app.inject({ url: '/api/handshake/snapshot', headers: auth })).json();
  const ts = String(nowS());
  const { handshakeSignature } = await import('../../src/nas/handshake.ts');
  const body = Buffer.from('not json');
  const res = await app.inject({ method: 'POST', url: GOING_OFFLINE, payload: body, headers: { 'content-type': 'text/plain', 'x-balupi-timestamp': ts, 'x-balupi-signature': handshakeSignature(SECRET, 'POST', GOING_OFFLINE, ts, body) } });
  assert.equal(res.statusCode, 200);
  assert.equal(res.json().snapshot_stored, false);
  assert.deepEqual((await app.inject({ url: '/api/handshake/snapshot', headers: auth })).json(), before);
});
