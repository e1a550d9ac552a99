// mDNS browse and announce between two instances on loopback only: each binds its own 127.0.0.x address on one port
// and sends to the other's, plain UDP. Every datagram sent and every multicast socket option is recorded and checked:
// nothing goes to 224.0.0.251 or any non-loopback address.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once } from 'node:events';
import makeMdns from 'multicast-dns';
import { MdnsPresence, type MdnsPeer } from '../../src/nas/mdns.ts';
import { NasService } from '../../src/nas/service.ts';
import { ManualClock } from '../helpers/manual-clock.ts';
import { BaluHostEmulator } from '../emulators/baluhost.ts';
import { testbed } from './testbed.ts';
import { freeUdpPort } from '../helpers/free-port.ts';

const sent: string[] = [];
const multicastCalls: string[] = [];
const proto = dgram.Socket.prototype as unknown as Record<string, (...a: unknown[]) => unknown>;
const originals: Record<string, (...a: unknown[]) => unknown> = {};

before(() => {
  originals.send = proto.send!;
  proto.send = function (this: dgram.Socket, ...args: unknown[]) {
    // send(msg, port, address, cb) or send(msg, offset, length, port, address, cb)
    const [port, address] = typeof args[3] === 'number' ? [args[3], args[4]] : [args[1], args[2]];
    sent.push(`${address}:${port}`);
    return originals.send!.apply(this, args);
  };
  for (const name of ['addMembership', 'setMulticastInterface', 'setMulticastTTL', 'setMulticastLoopback', 'setBroadcast']) {
    originals[name] = proto[name]!;
    proto[name] = function (this: dgram.Socket, ...args: unknown[]) {
      multicastCalls.push(`${name}(${args.join(',')})`);
      return originals[name]!.apply(this, args);
    };
  }
});

after(() => {
  for (const [name, fn] of Object.entries(originals)) proto[name] = fn;
  assert.ok(sent.length > 0, 'the tests sent datagrams');
  for (const dest of sent) assert.match(dest, /^127\.0\.0\.\d+:\d+$/, `only loopback destinations (got ${dest})`);
  assert.deepEqual(multicastCalls, [], 'no multicast membership, interface, TTL, loopback or broadcast option was set');
});


function peersOf(m: MdnsPresence, type: string, pred: (p: MdnsPeer[]) => boolean): Promise<MdnsPeer[]> {
  const now = m.peers(type);
  if (pred(now)) return Promise.resolve(now);
  return new Promise((resolve) => {
    const on = (t: string, peers: MdnsPeer[]) => {
      if (t !== type || !pred(peers)) return;
      m.off('change', on);
      resolve(peers);
    };
    m.on('change', on);
  });
}

test('two instances on loopback: each announces its service and finds the other\'s, with port, address and TXT; goodbye removes it', async () => {
  const port = await freeUdpPort();
  const pi = new MdnsPresence({
    group: { address: '127.0.0.2', port }, interface: '127.0.0.1', browse: ['_baluhost._tcp'],
    announce: { type: '_balupi._tcp', instance: 'BaluPi raspberrypi', host: 'raspberrypi', port: 8000, txt: { role: 'pi', version: '0.1.0', grpc: '50051' }, addresses: ['127.0.0.1'] },
  });
  const nas = new MdnsPresence({
    group: { address: '127.0.0.1', port }, interface: '127.0.0.2', browse: ['_balupi._tcp'],
    announce: { type: '_baluhost._tcp', instance: 'BaluHost', host: 'baluhost', port: 8443, txt: { version: '1.38.0' }, addresses: ['127.0.0.2'] },
  });
  try {
    await pi.start();
    const foundNas = peersOf(pi, '_baluhost._tcp', (p) => p.length === 1);
    await nas.start();
    const [baluhost] = await foundNas;
    assert.deepEqual({ ...baluhost, expiresAt: 0 }, { type: '_baluhost._tcp', instance: 'baluhost', host: 'baluhost.local', port: 8443, addresses: ['127.0.0.2'], txt: { version: '1.38.0' }, expiresAt: 0 });
    const [balupi] = await peersOf(nas, '_balupi._tcp', (p) => p.length === 1);
    assert.equal(balupi!.port, 8000);
    assert.deepEqual(balupi!.addresses, ['127.0.0.1']);
    assert.deepEqual(balupi!.txt, { role: 'pi', version: '0.1.0', grpc: '50051' });
    assert.equal(balupi!.host, 'raspberrypi.local');

    const gone = peersOf(pi, '_baluhost._tcp', (p) => p.length === 0);
    await nas.stop();
    assert.deepEqual(await gone, [], 'the goodbye (TTL 0) removed it at once');
  } finally {
    await pi.stop();
    await nas.stop();
  }
});

test('a NAS that vanishes without a goodbye (power loss) is dropped when its records are not refreshed in time', async () => {
  const port = await freeUdpPort();
  const clock = new ManualClock();
  const pi = new MdnsPresence({ group: { address: '127.0.0.2', port }, interface: '127.0.0.1', browse: ['_baluhost._tcp'], clock, maxTtlS: 180 });
  await pi.start();
  // The NAS side as a bare multicast-dns responder that announces once and then just disappears.
  const raw = makeMdns({ ip: '127.0.0.1', port, interface: '127.0.0.2', bind: '127.0.0.2', multicast: false });
  try {
    await once(raw, 'ready');
    const found = peersOf(pi, '_baluhost._tcp', (p) => p.length === 1);
    raw.respond({ answers: [
      { name: '_baluhost._tcp.local', type: 'PTR', ttl: 4500, data: 'nas._baluhost._tcp.local' },
      { name: 'nas._baluhost._tcp.local', type: 'SRV', ttl: 120, data: { port: 8000, target: 'nas.local' } },
    ] });
    const [peer] = await found;
    assert.deepEqual(peer!.addresses, ['127.0.0.2'], 'no A record: the source address of the answer is used');
    await new Promise<void>((r) => raw.destroy(() => r()));
    await clock.advance(119_000);
    assert.equal(pi.peers('_baluhost._tcp').length, 1, 'still inside the SRV TTL');
    const gone = peersOf(pi, '_baluhost._tcp', (p) => p.length === 0);
    await clock.advance(1_000);
    assert.deepEqual(await gone, []);
  } finally {
    await pi.stop();
  }
});

test('with no NAS URL configured, the NAS found by mDNS is the one probed and watched', async () => {
  const port = await freeUdpPort();
  const emu = await BaluHostEmulator.start();
  const browser = new MdnsPresence({ group: { address: '127.0.0.2', port }, interface: '127.0.0.1', browse: ['_baluhost._tcp'] });
  const nasSide = new MdnsPresence({
    group: { address: '127.0.0.1', port }, interface: '127.0.0.2',
    announce: { type: '_baluhost._tcp', instance: 'BaluHost', host: 'baluhost', port: emu.port, txt: {}, addresses: ['127.0.0.1'] },
  });
  const tb = await testbed({ nasUrl: null, discovery: browser });
  try {
    assert.equal(tb.nas.url(), null);
    assert.equal(tb.nas.state, 'unknown');
    await browser.start();
    const online = new Promise<void>((r) => tb.nas.once('online', () => r()));
    await nasSide.start();
    await online;
    assert.equal(tb.nas.url(), `http://127.0.0.1:${emu.port}`);
    assert.equal(tb.nas.status().mdns?.port, emu.port);
    assert.ok(emu.requests.length >= 1 && emu.requests.every((r) => r.syncTrigger === 'auto'));
    assert.ok(tb.nas instanceof NasService);
  } finally {
    await tb.close();
    await nasSide.stop();
    await browser.stop();
    await emu.close();
  }
});
