// The auth hook and error envelope, through the real Fastify app with inject().
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { SignJWT } from 'jose';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/http/app.ts';
import { TokenVerifier } from '../../src/auth/tokens.ts';
import { createLogger } from '../../src/log.ts';
import { healthRoutes } from '../../src/routes/health.ts';
import { systemRoutes } from '../../src/routes/system.ts';
import { SystemMonitor } from '../../src/system/status.ts';
import { NodeStatusService } from '../../src/system/node-status.ts';
import { tempDir } from '../helpers/daemon-process.ts';

const SECRET = 'a-baluhost-secret-key-of-32-chars!!';
const key = new TextEncoder().encode(SECRET);
let app: FastifyInstance;
let monitor: SystemMonitor;
let dir: Awaited<ReturnType<typeof tempDir>>;

/** A token signed the way BaluHost's PyJWT code signs it; `claims` override the defaults. */
async function baluhostToken(claims: Record<string, unknown> = {}, signingKey = key): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ sub: '5', username: 'alice', role: 'user', type: 'access', iat: now, exp: now + 900, ...claims })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .sign(signingKey);
}

before(async () => {
  dir = await tempDir();
  monitor = new SystemMonitor({ dataDir: dir.path, intervalMs: 60_000 });
  await monitor.start();
  const status = new NodeStatusService(monitor, 'pi');
  app = await buildApp({
    logger: createLogger({ logLevel: 'silent', logFormat: 'json' }),
    verifier: new TokenVerifier(SECRET),
    plugins: [(a) => a.register(healthRoutes, { role: 'pi', capabilities: ['node.v1'] }), (a) => a.register(systemRoutes, { status })],
  });
});

after(async () => {
  await app.close();
  await monitor.stop();
  await dir.remove();
});

test('health and ping answer without a token, in BaluHost shape plus who we are', async () => {
  for (const url of ['/api/health', '/api/ping']) {
    const res = await app.inject({ url });
    assert.equal(res.statusCode, 200);
    const body = res.json();
    assert.equal(body.status, 'ok');
    assert.equal(body.api_version, '1');
    assert.equal(body.min_api_version, '1');
    assert.equal(body.service, 'balupi');
    assert.equal(body.role, 'pi');
    assert.match(body.version, /^\d+\.\d+\.\d+/);
    assert.equal(typeof body.hostname, 'string');
    assert.deepEqual(body.capabilities, ['node.v1']);
    assert.equal(res.headers['x-api-version'], '1');
    assert.equal(res.headers['x-api-min-version'], '1');
  }
});

test('system status with a BaluHost-shaped token', async () => {
  const res = await app.inject({ url: '/api/system/status', headers: { authorization: `Bearer ${await baluhostToken()}` } });
  assert.equal(res.statusCode, 200);
  const s = res.json();
  assert.equal(typeof s.hostname, 'string');
  assert.ok(s.cpu_percent >= 0 && s.cpu_percent <= 100);
  assert.ok('cpu_temp_celsius' in s && 'temperature_c' in s, 'temperature keys present even when null');
  assert.equal(s.temperature_c, s.cpu_temp_celsius);
  assert.ok(s.memory.total > 0 && s.memory.available <= s.memory.total && s.memory.used <= s.memory.total);
  assert.equal(s.disk.path, dir.path);
  assert.ok(s.disk.total > 0 && s.disk.free <= s.disk.total);
  assert.ok(Number.isInteger(s.uptime_seconds) && s.uptime_seconds > 0);
  assert.equal(s.load_avg.length, 3);
  assert.ok(s.process.rss_bytes > 0);
  assert.equal(res.headers['x-api-version'], '1');
});

test('missing, malformed, expired, wrongly signed and wrong-type tokens get 401 with BaluHost details', async () => {
  const noToken = await app.inject({ url: '/api/system/status' });
  assert.equal(noToken.statusCode, 401);
  assert.deepEqual(noToken.json(), { detail: 'No authentication token provided' });
  assert.equal(noToken.headers['www-authenticate'], 'Bearer');
  assert.equal(noToken.headers['x-api-version'], '1');

  const past = Math.floor(Date.now() / 1000) - 3600;
  const bad: [string, string][] = [
    ['expired', await baluhostToken({ iat: past - 900, exp: past })],
    ['wrongly signed', await baluhostToken({}, new TextEncoder().encode('another-secret-another-secret-1234'))],
    ['refresh token used as access token', await baluhostToken({ type: 'refresh', jti: 'x' })],
    ['sub is a username (the Python BaluPi shape)', await baluhostToken({ sub: 'alice' })],
    ['no username claim', await baluhostToken({ username: undefined })],
    ['no exp', await new SignJWT({ sub: '5', username: 'a', role: 'user', type: 'access' }).setProtectedHeader({ alg: 'HS256' }).sign(key)],
    ['not a JWT', 'garbage'],
  ];
  for (const [what, token] of bad) {
    const res = await app.inject({ url: '/api/system/status', headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.statusCode, 401, what);
    assert.deepEqual(res.json(), { detail: 'Could not validate credentials' }, what);
  }
  const basic = await app.inject({ url: '/api/system/status', headers: { authorization: 'Basic YTpi' } });
  assert.deepEqual([basic.statusCode, basic.json().detail], [401, 'No authentication token provided'], 'Basic auth is not a bearer token');
});

test('unknown routes answer 404 in the envelope', async () => {
  const res = await app.inject({ url: '/api/nothing-here' });
  assert.equal(res.statusCode, 404);
  assert.deepEqual(res.json(), { detail: 'Not Found' });
});

test('tokens issued by `balupi token` have BaluHost\'s exact claims', async () => {
  const verifier = new TokenVerifier(SECRET);
  const token = await verifier.issueAccess({ id: 7, username: 'bob', role: 'admin' }, 900);
  const [header, payload] = token.split('.').slice(0, 2).map((p) => JSON.parse(Buffer.from(p, 'base64url').toString()));
  assert.deepEqual(header, { alg: 'HS256', typ: 'JWT' });
  assert.deepEqual(Object.keys(payload).sort(), ['exp', 'iat', 'role', 'sub', 'type', 'username']);
  assert.equal(payload.sub, '7');
  assert.equal(payload.exp - payload.iat, 900);
  assert.deepEqual(await verifier.verifyAccess(token), { id: 7, username: 'bob', role: 'admin' });
});

test('a verified token is remembered only until it expires; forged and tampered tokens are never remembered', async () => {
  const verifier = new TokenVerifier(SECRET);
  const token = await verifier.issueAccess({ id: 7, username: 'bob', role: 'admin' }, 60);
  const exp = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()).exp * 1000;
  assert.equal((await verifier.verifyAccess(token)).username, 'bob');
  assert.equal((await verifier.verifyAccess(token, exp - 1)).username, 'bob', 'served from the cache just before exp');
  await assert.rejects(verifier.verifyAccess(token, exp), (err: Error & { reason?: string }) => err.reason === 'expired', 'refused at exp, cache or not');
  // A token signed with another key, and the cached token with one payload byte changed, are checked afresh.
  const other = await new TokenVerifier('another-secret-of-32-characters!!').issueAccess({ id: 7, username: 'bob', role: 'admin' });
  await assert.rejects(verifier.verifyAccess(other));
  const fresh = await verifier.issueAccess({ id: 8, username: 'eve', role: 'user' });
  await verifier.verifyAccess(fresh);
  const [h, p, s] = fresh.split('.') as [string, string, string];
  const tampered = [h, Buffer.from(Buffer.from(p, 'base64url').toString().replace('"user"', '"admin"')).toString('base64url'), s].join('.');
  await assert.rejects(verifier.verifyAccess(tampered), 'a role raised by hand is not in the cache and fails the signature');
});
