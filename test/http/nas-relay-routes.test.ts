// The calls that are about the NAS itself — BaluApp's power buttons (/api/system/sleep/*), push tokens, sync
// schedules, the server-side upload queue — over the real NasService testbed (BaluHost stand-in on 127.0.0.1,
// Wake-on-LAN to a loopback UDP listener): relayed to BaluHost while it is online (reads with X-Sync-Trigger: auto,
// so they never end its soft sleep), answered by the Pi in BaluHost's shapes while it is away, and "wake" becomes a
// magic packet from the Pi then.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/http/app.ts';
import { TokenVerifier } from '../../src/auth/tokens.ts';
import { createLogger } from '../../src/log.ts';
import { nasLinkFor } from '../../src/auth/sign-in.ts';
import { BaluHostClient } from '../../src/nas/baluhost-client.ts';
import { NasRelay } from '../../src/nas/nas-relay.ts';
import { sleepRoutes } from '../../src/routes/sleep.ts';
import { mobileExtrasRoutes } from '../../src/routes/mobile-extras.ts';
import { testbed, until, type Testbed } from '../nas/testbed.ts';

const SECRET = 'a-baluhost-secret-key-of-32-chars!!';
let tb: Testbed;
let app: FastifyInstance;
let sven: Record<string, string>;
let admin: Record<string, string>;

before(async () => {
  tb = await testbed();
  const verifier = new TokenVerifier(SECRET);
  const link = nasLinkFor(tb.nas);
  const relay = new NasRelay({ nas: link, client: new BaluHostClient({ url: link.url }) });
  app = await buildApp({
    logger: createLogger({ logLevel: 'silent', logFormat: 'json' }),
    verifier,
    plugins: [(a) => a.register(sleepRoutes, { nas: tb.nas, relay }), (a) => a.register(mobileExtrasRoutes, { relay })],
  });
  sven = { authorization: `Bearer ${await verifier.issueAccess({ id: 3, username: 'sven', role: 'user' })}`, 'x-device-id': 'dev-1' };
  admin = { authorization: `Bearer ${await verifier.issueAccess({ id: 1, username: 'admin', role: 'admin' })}` };
});

after(async () => {
  await app?.close();
  await tb?.close();
});

test('NAS online: power buttons and NAS bookkeeping go to BaluHost; reads carry X-Sync-Trigger: auto', async () => {
  await tb.run(1, 45);
  await until(tb.nas, 'online');
  const before = tb.emu.received.length;

  // BaluApp's bodyless POST: Content-Length 0, no Content-Type.
  const soft = await app.inject({ method: 'POST', url: '/api/system/sleep/soft', headers: { ...sven, 'content-length': '0' } });
  assert.deepEqual([soft.statusCode, soft.json()], [200, { success: true, message: 'Entered soft sleep mode' }]);
  assert.equal(tb.emu.sleepState, 'soft_sleep', 'BaluHost itself went to soft sleep');

  // Reads while it soft-sleeps must not wake it.
  const perms = await app.inject({ url: '/api/system/sleep/my-permissions', headers: sven });
  assert.deepEqual(perms.json(), { can_soft_sleep: true, can_wake: true, can_suspend: false, can_wol: true }, 'BaluHost\'s answer, not the Pi\'s guess');
  const schedules = await app.inject({ url: '/api/sync/schedule/list', headers: sven });
  assert.equal(schedules.json().schedules[0].schedule_type, 'daily');
  const token = await app.inject({ method: 'POST', url: '/api/mobile/devices/dev-1/push-token?push_token=FCM123', headers: { ...sven, 'content-length': '0' } });
  assert.deepEqual([token.statusCode, token.json()], [200, { message: 'Push token updated' }]);
  assert.equal(tb.emu.sleepState, 'soft_sleep', 'relayed reads did not end the soft sleep');
  const relayed = tb.emu.received.slice(before);
  assert.deepEqual(relayed.map((r) => [r.method, r.path, r.headers['x-sync-trigger'] ?? null]), [
    ['POST', '/api/system/sleep/soft', null],
    ['GET', '/api/system/sleep/my-permissions', 'auto'],
    ['GET', '/api/sync/schedule/list', 'auto'],
    ['POST', '/api/mobile/devices/dev-1/push-token', 'auto'],
  ]);
  assert.equal(relayed[0]!.headers.authorization, sven.authorization, 'the user\'s own token reaches BaluHost');

  // The wake button while it is online (soft sleep): BaluHost's own wake, which ends the soft sleep.
  const wake = await app.inject({ method: 'POST', url: '/api/system/sleep/wake', headers: { ...sven, 'content-length': '0' } });
  assert.deepEqual(wake.json(), { success: true, message: 'Exited soft sleep mode' });
  assert.equal(tb.emu.sleepState, 'awake');
});

test('NAS away: the Pi answers in BaluHost\'s shapes, refuses to sleep what is not running, and wakes by Wake-on-LAN', async () => {
  await tb.emu.goDown();
  await tb.run(6, 8); // down for good, the plug at standby power: offline or standby, wakeable
  assert.ok(['standby', 'offline'].includes(tb.nas.state), tb.nas.state);

  const soft = await app.inject({ method: 'POST', url: '/api/system/sleep/soft', headers: { ...sven, 'content-length': '0' } });
  assert.equal(soft.statusCode, 409);
  assert.match(soft.json().detail, /^Cannot enter soft sleep from current state \(the NAS is (standby|offline)\)$/);
  assert.deepEqual((await app.inject({ url: '/api/system/sleep/my-permissions', headers: sven })).json(),
    { can_soft_sleep: false, can_wake: false, can_suspend: false, can_wol: false }, 'a plain user, judged by the Pi');
  assert.equal((await app.inject({ url: '/api/system/sleep/my-permissions', headers: admin })).json().can_wol, true);
  assert.deepEqual((await app.inject({ url: '/api/sync/schedule/list', headers: sven })).json(), { schedules: [] });
  assert.deepEqual((await app.inject({ url: '/api/mobile/upload/queue/dev-1', headers: sven })).json(), { items: [], total: 0 });
  const token = await app.inject({ method: 'POST', url: '/api/mobile/devices/dev-1/push-token?push_token=FCM123', headers: { ...sven, 'content-length': '0' } });
  assert.equal(token.statusCode, 200, 'BaluApp accepts any JSON object');
  assert.equal(token.json().forwarded, false);

  const sent = tb.wolSends;
  const wake = await app.inject({ method: 'POST', url: '/api/system/sleep/wake', headers: { ...sven, 'content-length': '0' } });
  assert.deepEqual([wake.statusCode, wake.json()], [200, { success: true, message: 'WoL packet sent' }]);
  const packet = await tb.wol.next();
  assert.equal(packet.length, 102, 'a magic packet reached the loopback listener');
  assert.equal(tb.wolSends, sent + 1);
  assert.equal(tb.nas.state, 'booting');
  const again = await app.inject({ method: 'POST', url: '/api/system/sleep/wol', headers: { ...sven, 'content-length': '0' } });
  assert.equal(again.statusCode, 400, 'the NAS module refuses a second wake while it boots');
  assert.match(again.json().detail, /already booting/);
});

test('bad input: missing push token, oversized or non-JSON bodies, no token', async () => {
  const noToken = await app.inject({ method: 'POST', url: '/api/mobile/devices/dev-1/push-token', headers: { ...sven, 'content-length': '0' } });
  assert.equal(noToken.statusCode, 422);
  const big = await app.inject({ method: 'POST', url: '/api/system/sleep/suspend', headers: { ...sven, 'content-type': 'application/json' }, payload: JSON.stringify({ reason: 'x'.repeat(64 * 1024) }) });
  assert.equal(big.statusCode, 413);
  const form = await app.inject({ method: 'POST', url: '/api/system/sleep/soft', headers: { ...sven, 'content-type': 'application/x-www-form-urlencoded' }, payload: 'reason=x' });
  assert.equal(form.statusCode, 422);
  assert.equal((await app.inject({ method: 'POST', url: '/api/system/sleep/wake' })).statusCode, 401);
});
