// The Python-canonical re-serialization that BaluHost's handshake signature covers, against outputs of CPython 3.11's
// json module captured verbatim (the strings below were printed by python3, not written by hand), and the test
// emulator's independent pyDumps against the same outputs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pythonCanonicalJson, parsePythonJson, toPlainValue } from '../../src/nas/python-json.ts';
import { baluhostSnapshot, pyDumps } from '../emulators/baluhost.ts';

// json.dumps(snapshot)  — what BaluHost sends with httpx < 0.28
const SENT_OLD_HTTPX: string = "{\"version\": 1, \"generated_at\": \"2026-08-03T21:00:00.123456+00:00\", \"baluhost_version\": \"1.38.0\", \"system\": {\"hostname\": \"baluh\\u00f6st\", \"uptime_seconds\": 86400, \"cpu_model\": \"AMD Ryzen\\u2122 5 \\u00b7 \\ud83d\\ude00\", \"ram_total_gb\": 16.0}, \"storage\": {\"arrays\": [{\"name\": \"md0\", \"level\": \"raid1\", \"state\": \"active\", \"size_bytes\": 4000787030016, \"devices\": [\"sda1\", \"sdb1\"]}], \"total_bytes\": 4000787030016, \"used_bytes\": 1234567890}, \"smart_health\": {\"sdb\": {\"status\": \"PASSED\", \"temperature_c\": 34.5, \"power_on_hours\": 12000}, \"sda\": {\"status\": \"PASSED\", \"temperature_c\": 33, \"power_on_hours\": 11999}}, \"services\": {\"vpn\": {\"active_clients\": 2}, \"shares\": {\"active_shares\": 5}, \"backups\": {\"last_backup\": null, \"status\": \"none\"}}, \"users\": {\"total\": 3, \"list\": [{\"username\": \"admin\", \"role\": \"admin\"}, {\"username\": \"zo\\u00eb\\t\\\"q\\\"\", \"role\": \"user\"}]}, \"files_summary\": {\"total_files\": 12345, \"total_size_bytes\": 987654321, \"ratio\": 1e-07, \"10\": true, \"9\": false}}";
// json.dumps(snapshot, separators=(",", ":"), ensure_ascii=False)  — what httpx 0.28 sends
const SENT_HTTPX_028: string = "{\"version\":1,\"generated_at\":\"2026-08-03T21:00:00.123456+00:00\",\"baluhost_version\":\"1.38.0\",\"system\":{\"hostname\":\"baluh\u00f6st\",\"uptime_seconds\":86400,\"cpu_model\":\"AMD Ryzen\u2122 5 \u00b7 \ud83d\ude00\",\"ram_total_gb\":16.0},\"storage\":{\"arrays\":[{\"name\":\"md0\",\"level\":\"raid1\",\"state\":\"active\",\"size_bytes\":4000787030016,\"devices\":[\"sda1\",\"sdb1\"]}],\"total_bytes\":4000787030016,\"used_bytes\":1234567890},\"smart_health\":{\"sdb\":{\"status\":\"PASSED\",\"temperature_c\":34.5,\"power_on_hours\":12000},\"sda\":{\"status\":\"PASSED\",\"temperature_c\":33,\"power_on_hours\":11999}},\"services\":{\"vpn\":{\"active_clients\":2},\"shares\":{\"active_shares\":5},\"backups\":{\"last_backup\":null,\"status\":\"none\"}},\"users\":{\"total\":3,\"list\":[{\"username\":\"admin\",\"role\":\"admin\"},{\"username\":\"zo\u00eb\\t\\\"q\\\"\",\"role\":\"user\"}]},\"files_summary\":{\"total_files\":12345,\"total_size_bytes\":987654321,\"ratio\":1e-07,\"10\":true,\"9\":false}}";
// json.dumps(snapshot, sort_keys=True, separators=(",", ":"))  — what BaluHost signs
const SIGNED: string = "{\"baluhost_version\":\"1.38.0\",\"files_summary\":{\"10\":true,\"9\":false,\"ratio\":1e-07,\"total_files\":12345,\"total_size_bytes\":987654321},\"generated_at\":\"2026-08-03T21:00:00.123456+00:00\",\"services\":{\"backups\":{\"last_backup\":null,\"status\":\"none\"},\"shares\":{\"active_shares\":5},\"vpn\":{\"active_clients\":2}},\"smart_health\":{\"sda\":{\"power_on_hours\":11999,\"status\":\"PASSED\",\"temperature_c\":33},\"sdb\":{\"power_on_hours\":12000,\"status\":\"PASSED\",\"temperature_c\":34.5}},\"storage\":{\"arrays\":[{\"devices\":[\"sda1\",\"sdb1\"],\"level\":\"raid1\",\"name\":\"md0\",\"size_bytes\":4000787030016,\"state\":\"active\"}],\"total_bytes\":4000787030016,\"used_bytes\":1234567890},\"system\":{\"cpu_model\":\"AMD Ryzen\\u2122 5 \\u00b7 \\ud83d\\ude00\",\"hostname\":\"baluh\\u00f6st\",\"ram_total_gb\":16.0,\"uptime_seconds\":86400},\"users\":{\"list\":[{\"role\":\"admin\",\"username\":\"admin\"},{\"role\":\"user\",\"username\":\"zo\\u00eb\\t\\\"q\\\"\"}],\"total\":3},\"version\":1}";
// A body with the awkward cases: float reprs, NaN/Infinity, DEL/NUL/private-use/astral keys, a lone surrogate.
const ODD_SENT: string = "{\"b\": [1e+16, 1.5e-05, 0.0001, 123456789012345.6, -0.0, 1e+22, 2.5e-300, NaN, Infinity, -Infinity, 100.0, 0.1], \"a\\u007f\\u0000\\ue000\": \"x\\ud800y\", \"\\ud83d\\ude00\": 1, \"\\uffff\": 2, \"dup\": 1}";
const ODD_SIGNED: string = "{\"a\\u007f\\u0000\\ue000\":\"x\\ud800y\",\"b\":[1e+16,1.5e-05,0.0001,123456789012345.6,-0.0,1e+22,2.5e-300,NaN,Infinity,-Infinity,100.0,0.1],\"dup\":1,\"\\uffff\":2,\"\\ud83d\\ude00\":1}";

test('the snapshot as sent by either httpx version re-serializes to exactly the bytes BaluHost signed', () => {
  assert.notEqual(SENT_OLD_HTTPX, SIGNED, 'the sent form differs from the signed form (the interop defect)');
  assert.equal(pythonCanonicalJson(SENT_OLD_HTTPX), SIGNED);
  assert.equal(pythonCanonicalJson(SENT_HTTPX_028), SIGNED);
  assert.equal(pythonCanonicalJson(SIGNED), SIGNED, 'the canonical form is a fixed point');
});

test('floats keep Python\'s repr (16.0, 1e-07, 1e+16, -0.0), NaN/Infinity pass, keys sort by code point not UTF-16 unit', () => {
  assert.equal(pythonCanonicalJson(ODD_SENT), ODD_SIGNED);
  assert.match(ODD_SIGNED, /"\\uffff":2,"\\ud83d\\ude00":1/, 'U+FFFF sorts before U+1F600 (Python), although its UTF-16 unit is larger');
  assert.match(pythonCanonicalJson(SENT_OLD_HTTPX)!, /"ram_total_gb":16\.0/);
});

test('the emulator\'s pyDumps prints what CPython prints (so the BaluHost stand-in signs like the real one)', () => {
  const snap = baluhostSnapshot();
  assert.equal(pyDumps(snap), SENT_OLD_HTTPX);
  assert.equal(pyDumps(snap, { compact: true, ensureAscii: false }), SENT_HTTPX_028);
  assert.equal(pyDumps(snap, { sortKeys: true, compact: true }), SIGNED);
});

test('whitespace, duplicate keys (last value wins), escapes and scalars as CPython re-serializes them', () => {
  const cases: [string, string][] = [["{\"dup\": 1, \"dup\": 2, \"a\": [ ]}", "{\"a\":[],\"dup\":2}"], ["  {\"x\" :\n{\"y\":[1 ,2]}}  ", "{\"x\":{\"y\":[1,2]}}"], ["[]", "[]"], ["\"str\"", "\"str\""], ["null", "null"], ["{\"\\u00e9\": \"\\/\", \"\\u00C9\": \"\\b\\f\"}", "{\"\\u00c9\":\"\\b\\f\",\"\\u00e9\":\"/\"}"], ["{\"k\":\"\\ud800\", \"n\": -0.0005}", "{\"k\":\"\\ud800\",\"n\":-0.0005}"], ["true", "true"], ["-12", "-12"]];
  for (const [raw, expected] of cases) assert.equal(pythonCanonicalJson(raw), expected, raw);
});

test('number literals are kept as written (the documented rule), not re-printed', () => {
  assert.equal(pythonCanonicalJson('{"n": -0.5e-3, "m": 1E5}'), '{"m":1E5,"n":-0.5e-3}');
});

test('text json.loads refuses gives null: truncated, trailing data, raw control characters, bad escapes, too deep', () => {
  for (const bad of ['{"a": 1', '{"a": 1} x', '{"a": "x\ny"}', '{"a": "\\x"}', '{a: 1}', "{'a': 1}", '[1,]', '01', '+1', '.5', '', '   ', '"\\u12"', '['.repeat(600) + ']'.repeat(600)]) {
    assert.equal(pythonCanonicalJson(bad), null, JSON.stringify(bad.slice(0, 40)));
  }
});

test('the stored snapshot is served as plain JSON: NaN and Infinity become null, everything else survives', () => {
  const v = toPlainValue(parsePythonJson(ODD_SENT)) as { b: unknown[] };
  assert.deepEqual(v.b, [1e16, 1.5e-5, 0.0001, 123456789012345.6, -0, 1e22, 2.5e-300, null, null, null, 100, 0.1]);
  const snap = toPlainValue(parsePythonJson(SENT_OLD_HTTPX)) as any;
  assert.equal(snap.system.hostname, 'baluhöst');
  assert.equal(snap.system.cpu_model, 'AMD Ryzen™ 5 · 😀');
  assert.equal(snap.users.list[1].username, 'zoë\t"q"');
});
