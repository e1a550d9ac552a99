// HandshakeVerifier against calls built exactly as today's BaluHost builds them (test/emulators/baluhost.ts): both
// body forms it may send are accepted; replays, stale or future timestamps, wrong or tampered signatures, missing
// headers are refused with BaluHost-compatible details; replays stay refused across a restart.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HandshakeError, HandshakeVerifier, handshakeSignature, type HandshakeRequest } from '../../src/nas/handshake.ts';
import { baluhostCall, baluhostSnapshot, pyDumps, COMING_ONLINE, GOING_OFFLINE, type SignedCall } from '../emulators/baluhost.ts';

const SECRET = 'x'.repeat(16) + 'a-48-char-secret-like-token_urlsafe(36)';
const NOW = Date.UTC(2026, 0, 15, 12) + 123;
const nowS = Math.floor(NOW / 1000);

const req = (c: SignedCall, patch: Partial<HandshakeRequest> = {}): HandshakeRequest => ({
  method: c.method, path: c.path, timestamp: c.headers['x-balupi-timestamp'], signature: c.headers['x-balupi-signature'], body: c.body, ...patch,
});
const verifier = (opts: Partial<ConstructorParameters<typeof HandshakeVerifier>[0]> = {}) => new HandshakeVerifier({ secret: SECRET, now: () => NOW, ...opts });
const refused = (v: HandshakeVerifier, r: HandshakeRequest, detail: string | RegExp, what: string) =>
  assert.throws(() => v.verify(r), (e: unknown) => e instanceof HandshakeError && e.code === 'handshake_unauthorized' &&
    (typeof detail === 'string' ? e.message === detail : detail.test(e.message)), what);

test('going-offline signed the way today\'s BaluHost signs it is accepted, as sent by httpx < 0.28 and by httpx 0.28', () => {
  const v = verifier();
  const old = baluhostCall(SECRET, GOING_OFFLINE, baluhostSnapshot(), { timestamp: nowS });
  assert.notEqual(old.body.toString(), pyDumps(baluhostSnapshot(), { sortKeys: true, compact: true }), 'sent bytes ≠ signed bytes');
  assert.equal(v.verify(req(old)), 'python-canonical');
  const modern = baluhostCall(SECRET, GOING_OFFLINE, baluhostSnapshot(), { timestamp: nowS - 1, httpx: '0.28' });
  assert.equal(v.verify(req(modern)), 'python-canonical');
});

test('a sender that signs the bytes it sends (the Python BaluPi\'s own tests) and the empty coming-online body pass as raw', () => {
  const v = verifier();
  const body = Buffer.from('{"z": 1, "a": 2}');
  const ts = String(nowS);
  assert.equal(v.verify({ method: 'POST', path: GOING_OFFLINE, timestamp: ts, signature: handshakeSignature(SECRET, 'POST', GOING_OFFLINE, ts, body), body }), 'raw');
  const on = baluhostCall(SECRET, COMING_ONLINE, null, { timestamp: nowS });
  assert.equal(on.body.length, 0);
  assert.equal(v.verify(req(on)), 'raw');
});

test('a replay of an accepted call is refused with 401, also by a verifier started later with the remembered signatures', () => {
  const remembered: [string, number][] = [];
  const v = verifier({ onAccepted: (s, e) => remembered.push([s, e]) });
  const call = baluhostCall(SECRET, GOING_OFFLINE, baluhostSnapshot(), { timestamp: nowS });
  v.verify(req(call));
  refused(v, req(call), 'Replayed request (signature already used)', 'replay');
  refused(v, req(call, { signature: call.headers['x-balupi-signature']!.toUpperCase() }), /Replayed/, 'replay in upper-case hex');
  assert.equal(remembered.length, 1);
  assert.ok(remembered[0]![1] >= (nowS + 60) * 1000, 'remembered until its window closes');
  const afterRestart = verifier({ remembered });
  refused(afterRestart, req(call), /Replayed/, 'replay after a restart');
  const expired = verifier({ now: () => NOW + 62_000, remembered });
  refused(expired, req(call), /Timestamp too old/, 'an old call is refused by its age once forgotten');
});

test('stale and future timestamps are refused (60 s window, both ways); a 59-second-old call is accepted', () => {
  const v = verifier();
  const stale = baluhostCall(SECRET, GOING_OFFLINE, baluhostSnapshot(), { timestamp: nowS - 61 });
  refused(v, req(stale), 'Timestamp too old (61s)', 'stale');
  const future = baluhostCall(SECRET, COMING_ONLINE, null, { timestamp: nowS + 62 });
  refused(v, req(future), /Timestamp too old \(-6\ds\)/, 'future');
  const edge = baluhostCall(SECRET, COMING_ONLINE, null, { timestamp: nowS - 59 });
  assert.equal(v.verify(req(edge)), 'raw');
});

test('wrong secret, tampered body, another path or method, and malformed signatures are refused as invalid', () => {
  const v = verifier();
  const other = baluhostCall('another-secret-of-enough-length-0000000', GOING_OFFLINE, baluhostSnapshot(), { timestamp: nowS });
  refused(v, req(other), 'Invalid HMAC signature', 'wrong secret');
  const good = baluhostCall(SECRET, GOING_OFFLINE, baluhostSnapshot(), { timestamp: nowS });
  const tampered = Buffer.from(good.body.toString().replace('"total": 3', '"total": 4'));
  assert.notDeepEqual(tampered, good.body);
  refused(v, req(good, { body: tampered }), 'Invalid HMAC signature', 'tampered body');
  refused(v, req(good, { path: COMING_ONLINE }), 'Invalid HMAC signature', 'signature moved to another path');
  refused(v, req(good, { method: 'PUT' }), 'Invalid HMAC signature', 'another method');
  refused(v, req(good, { timestamp: String(nowS - 1) }), 'Invalid HMAC signature', 'timestamp changed after signing');
  for (const sig of ['', 'zz', 'g'.repeat(64), good.headers['x-balupi-signature']!.slice(2)]) refused(v, req(good, { signature: sig }), 'Invalid HMAC signature', `signature ${JSON.stringify(sig)}`);
  // None of the refused calls burned the real one.
  assert.equal(v.verify(req(good)), 'python-canonical');
});

test('missing headers and non-integer timestamps are refused; without a secret the endpoint is not configured', () => {
  const v = verifier();
  const call = baluhostCall(SECRET, COMING_ONLINE, null, { timestamp: nowS });
  refused(v, req(call, { timestamp: undefined }), 'Missing HMAC headers', 'no timestamp');
  refused(v, req(call, { signature: undefined }), 'Missing HMAC headers', 'no signature');
  for (const ts of ['abc', '1.5e9', '', '0x10']) refused(v, req(call, { timestamp: ts }), 'Invalid timestamp', `timestamp ${ts}`);
  for (const secret of [null, '']) {
    assert.throws(() => verifier({ secret }).verify(req(call)), (e: unknown) => e instanceof HandshakeError && e.code === 'handshake_not_configured');
  }
});

test('the replay memory is bounded: beyond maxRemembered the oldest signature is forgotten first', () => {
  const v = verifier({ maxRemembered: 3 });
  const calls = [0, 1, 2, 3].map((i) => baluhostCall(SECRET, COMING_ONLINE, null, { timestamp: nowS - i }));
  for (const c of calls) v.verify(req(c));
  for (const c of calls.slice(1)) refused(v, req(c), /Replayed/, 'recent ones still remembered');
  assert.equal(v.verify(req(calls[0]!)), 'raw', 'the oldest was forgotten (still inside its window: the bound is a trade-off)');
});
