// Wake-on-LAN packets, sent to a UDP listener on 127.0.0.1 (never to a broadcast address), and MAC/address parsing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { udpListener } from '../helpers/udp-listener.ts';
import { magicPacket, parseMac, parseWolAddress, sendMagicPacket, WolError } from '../../src/nas/wol.ts';

test('the magic packet reaches a UDP listener on 127.0.0.1: 6 × 0xFF then the MAC 16 times, 102 bytes', async () => {
  const l = await udpListener();
  try {
    const got = l.next();
    await sendMagicPacket('AA-BB-CC-0D-0E-0F', l.address);
    const p = await got;
    assert.equal(p.length, 102);
    assert.deepEqual([...p.subarray(0, 6)], [0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    for (let i = 0; i < 16; i++) assert.deepEqual([...p.subarray(6 + i * 6, 12 + i * 6)], [0xaa, 0xbb, 0xcc, 0x0d, 0x0e, 0x0f], `repetition ${i}`);
    assert.deepEqual(p, magicPacket('aa:bb:cc:0d:0e:0f'));
  } finally {
    await l.close();
  }
});

test('MAC formats: colon, dash, Cisco dots, bare hex (any case) are accepted; malformed and multicast ones are refused', () => {
  for (const ok of ['aa:bb:cc:dd:ee:f0', 'AA-BB-CC-DD-EE-F0', 'aabb.ccdd.eef0', 'AABBCCDDEEF0', ' aa:bb:cc:dd:ee:f0 ']) {
    assert.equal(parseMac(ok), 'aa:bb:cc:dd:ee:f0', ok);
  }
  for (const bad of ['', 'aa:bb:cc:dd:ee', 'aa:bb:cc:dd:ee:f0:11', 'aa:bb-cc:dd:ee:f0', 'gg:bb:cc:dd:ee:f0', 'aabb.ccddeef0', 'aa.bb.cc.dd.ee.f0', 'a:b:c:d:e:f', 'aabbccddeef', '01:00:5e:00:00:fb']) {
    assert.throws(() => parseMac(bad), (e: unknown) => e instanceof WolError && e.code === 'invalid_argument', JSON.stringify(bad));
  }
});

test('targets: ip:port, [v6]:port, port defaults to 9; host names and bad ports are refused', () => {
  assert.deepEqual(parseWolAddress('255.255.255.255:9'), { host: '255.255.255.255', port: 9 });
  assert.deepEqual(parseWolAddress('192.168.1.255'), { host: '192.168.1.255', port: 9 });
  assert.deepEqual(parseWolAddress('[ff02::1]:7'), { host: 'ff02::1', port: 7 });
  for (const bad of ['nas.local:9', '1.2.3.4:0', '1.2.3.4:70000', ':9', '1.2.3:9', '[zz]:9']) {
    assert.throws(() => parseWolAddress(bad), WolError, bad);
  }
});
