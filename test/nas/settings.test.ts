// The NAS module's settings: defaults, accepted spellings, and refusals that name the setting and the value.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig, ConfigError } from '../../src/config.ts';

test('NAS settings default to production values that need no NAS: no URL, no MAC, broadcast WoL, mDNS on', () => {
  const c = loadConfig({});
  assert.deepEqual(
    [c.nasUrl, c.nasMac, c.wolAddress, c.nasBootTimeoutS, c.nasPollIntervalS, c.nasFastPollIntervalS, c.handshakeSecret, c.mdns, c.mdnsInterface, c.mdnsAddresses, c.mdnsGroup],
    [null, null, '255.255.255.255:9', 180, 30, 5, null, true, null, [], '224.0.0.251:5353'],
  );
});

test('accepted spellings: any MAC format (normalised), [v6]:port targets, on/off words, address lists', () => {
  const c = loadConfig({
    BALUPI_NAS_URL: 'http://192.168.1.10:8000', BALUPI_NAS_MAC: 'AABB.CCDD.EEF0', BALUPI_WOL_ADDRESS: '[ff02::1]:9',
    BALUPI_MDNS: 'off', BALUPI_MDNS_INTERFACE: '192.168.1.20', BALUPI_MDNS_ADDRESSES: '192.168.1.20, fd00::20', BALUPI_MDNS_GROUP: '127.0.0.2:5353',
  });
  assert.deepEqual([c.nasUrl, c.nasMac, c.wolAddress, c.mdns, c.mdnsInterface, c.mdnsAddresses, c.mdnsGroup],
    ['http://192.168.1.10:8000', 'aa:bb:cc:dd:ee:f0', '[ff02::1]:9', false, '192.168.1.20', ['192.168.1.20', 'fd00::20'], '127.0.0.2:5353']);
});

test('bad values stop start-up with the setting and the value named', () => {
  const cases: [Record<string, string>, RegExp][] = [
    [{ BALUPI_NAS_MAC: 'aa:bb:cc' }, /BALUPI_NAS_MAC="aa:bb:cc": not a MAC address/],
    [{ BALUPI_WOL_ADDRESS: 'nas.local:9' }, /BALUPI_WOL_ADDRESS="nas.local:9": not an IP address and port/],
    [{ BALUPI_NAS_URL: 'ftp://nas' }, /BALUPI_NAS_URL="ftp:\/\/nas"/],
    [{ BALUPI_NAS_BOOT_TIMEOUT_S: '0' }, /BALUPI_NAS_BOOT_TIMEOUT_S="0"/],
    [{ BALUPI_MDNS: 'maybe' }, /BALUPI_MDNS="maybe": must be on or off/],
    [{ BALUPI_MDNS_INTERFACE: 'eth0' }, /BALUPI_MDNS_INTERFACE="eth0": must be an IPv4 address/],
    [{ BALUPI_MDNS_ADDRESSES: '1.2.3.4, pi.local' }, /BALUPI_MDNS_ADDRESSES=.*"pi.local" is not an IP address/],
    [{ BALUPI_MDNS_GROUP: 'mdns:5353' }, /BALUPI_MDNS_GROUP="mdns:5353"/],
  ];
  for (const [env, expected] of cases) {
    assert.throws(() => loadConfig(env), (e: Error) => e instanceof ConfigError && expected.test(e.message), JSON.stringify(env));
  }
});
