import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DeviceListError, parseDeviceAddress, parseDeviceList } from '../../src/energy/device-list.ts';

test('host[:port] list: IPv4, names, bracketed and bare IPv6, default port 80, whitespace tolerated', () => {
  assert.deepEqual(parseDeviceList(' 192.168.1.50 , plug-nas.lan:8080,[::1]:9999,[fe80::1], 2001:db8::7 '), [
    { host: '192.168.1.50', port: 80 },
    { host: 'plug-nas.lan', port: 8080 },
    { host: '::1', port: 9999 },
    { host: 'fe80::1', port: 80 },
    { host: '2001:db8::7', port: 80 },
  ]);
});

test('blank text is an empty list', () => {
  assert.deepEqual(parseDeviceList(''), []);
  assert.deepEqual(parseDeviceList('   '), []);
});

function rejects(text: string, position: number, pattern: RegExp): void {
  assert.throws(
    () => parseDeviceList(text),
    (err: unknown) => {
      assert.ok(err instanceof DeviceListError, `expected DeviceListError for ${JSON.stringify(text)}`);
      assert.equal(err.code, 'DEVICE_LIST_INVALID');
      assert.equal(err.position, position);
      assert.match(err.message, pattern);
      assert.match(err.message, new RegExp(`entry ${position}`));
      return true;
    },
  );
}

test('bad entries are rejected with their position and the reason', () => {
  rejects('10.0.0.1,,10.0.0.2', 2, /empty entry/);
  rejects('10.0.0.1,', 2, /trailing comma/);
  rejects('10.0.0.1:0', 1, /outside 1-65535/);
  rejects('10.0.0.1:65536', 1, /outside 1-65535/);
  rejects('10.0.0.1:http', 1, /not a number/);
  rejects('10.0.0.1:', 1, /not a number/);
  rejects('a.lan,300.1.1.1', 2, /not a valid IPv4/);
  rejects('http://10.0.0.1', 1, /without a scheme/);
  rejects('10.0.0.1/24', 1, /host\[:port\]/);
  rejects('[::1', 1, /missing "\]"/);
  rejects('[::1]8080', 1, /expected ":port"/);
  rejects('[not-v6]:80', 1, /not an IPv6/);
  rejects('::1::2', 1, /IPv6.*brackets/);
  rejects('-bad-.lan', 1, /not a valid host name/);
  rejects(':8080', 1, /missing host/);
  rejects('10.0.0.1, 10.0.0.1:80', 2, /same plug as entry 1/);
});

test('a single address (API input) reports without a list position', () => {
  assert.deepEqual(parseDeviceAddress('Plug.LAN:81'), { host: 'plug.lan', port: 81 });
  assert.throws(() => parseDeviceAddress(''), (e: unknown) => e instanceof DeviceListError && e.position === 0 && /^Plug address/.test(e.message));
});
