// BaluDesk's typical session (../shared/reference/clients.md §C.2) replayed on the wire against a real Pi: JSON bodies
// as nlohmann writes them (sorted keys), Content-Type: application/json on every JSON request (GET and DELETE too),
// multiparts as libcurl builds them (`path` before the file parts, or the path in the query), the raw `//` download
// URLs and id-addressed rename/delete, and the fields it dereferences (no nulls where nlohmann would throw).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { curlMultipart, deskHeaders, nlohmann, send } from '../helpers/wire-clients.ts';
import { ISO_Z, ok, startReplay } from './replay-setup.ts';

const DEV = '3f2c6a1e-1111-4222-8333-944445555666';

test('BaluDesk session: device-code pairing → register → dashboard → explorer → delta sync → refresh', async () => {
  const r = await startReplay();
  const { base, emu } = r;
  try {
    // 1–3. Device code, polling until the user approves in BaluHost's web UI.
    const code = ok(await send(base, 'POST', '/api/desktop-pairing/device-code', deskHeaders(null), nlohmann({ device_id: DEV, device_name: 'DESKTOP-ABC', platform: 'windows' })), 'device-code').json();
    for (const k of ['device_code', 'user_code', 'verification_url', 'expires_in', 'interval']) assert.ok(code[k] !== undefined && code[k] !== null, k);
    const poll = () => send(base, 'POST', '/api/desktop-pairing/poll', deskHeaders(null), nlohmann({ device_code: code.device_code }));
    assert.equal(ok(await poll(), 'poll').json().status, 'authorization_pending');
    emu.accounts.approveDesktop(code.user_code, 'sven');
    const approved = ok(await poll(), 'poll approved').json();
    assert.equal(approved.status, 'approved');
    assert.deepEqual([approved.user.username, typeof approved.user.id], ['sven', 'number']);
    let at: string = approved.access_token;
    const rt: string = approved.refresh_token;
    const h = () => deskHeaders(at);

    // 4–5. Register the device for sync; the next start validates the token with /auth/me.
    assert.equal(ok(await send(base, 'POST', '/api/sync/register-desktop', h(), nlohmann({ device_id: DEV, device_name: 'DESKTOP-ABC' })), 'register-desktop').json().device_id, DEV);
    assert.equal(ok(await send(base, 'GET', '/api/auth/me', h()), 'auth/me').json().username, 'sven');

    // 6–8. Dashboard: system info (BaluhostClient's User-Agent), RAID, power card, network widget, services panel.
    const info = ok(await send(base, 'GET', '/api/system/info', [...h(), ['User-Agent', 'BaluDesk/1.0']]), 'system/info').json();
    assert.ok(typeof info.cpu.usage === 'number' && typeof info.cpu.cores === 'number' && 'frequency_mhz' in info.cpu);
    for (const k of ['total', 'used', 'available']) {
      assert.equal(typeof info.memory[k], 'number', `memory.${k}`);
      assert.equal(typeof info.disk[k], 'number', `disk.${k}`);
    }
    assert.ok(Array.isArray(ok(await send(base, 'GET', '/api/system/raid/status', h()), 'raid').json().arrays));
    const power = ok(await send(base, 'GET', '/api/smart-devices/power/summary', h()), 'power summary').json();
    assert.ok(typeof power.total_watts === 'number' && typeof power.device_count === 'number' && Array.isArray(power.devices));
    for (const d of power.devices) assert.ok(typeof d.device_id === 'number' && typeof d.name === 'string' && typeof d.watts === 'number');
    const net = ok(await send(base, 'GET', '/api/monitoring/network/current', h()), 'network').json();
    assert.ok(typeof net.upload_mbps === 'number' && typeof net.download_mbps === 'number');
    const services = ok(await send(base, 'GET', '/api/admin/services', h()), 'services').json();
    assert.ok(Array.isArray(services) && services.every((s: any) => typeof (s.display_name ?? s.name) === 'string' && typeof s.state === 'string'));

    // 9–10. Explorer: mountpoints, then the root listing with the keys it reads (no nulls in strings/ints).
    const mounts = ok(await send(base, 'GET', '/api/files/mountpoints', h()), 'mountpoints').json().mountpoints as any[];
    for (const k of ['id', 'name', 'path', 'size_bytes', 'used_bytes', 'available_bytes']) assert.ok(mounts[0][k] !== undefined && mounts[0][k] !== null, `mountpoints[0].${k}`);
    assert.ok('raid_level' in mounts[0]);

    // 11. Explorer upload: the full path (with the name) in the query, a single `file` part.
    const report = randomBytes(70_000);
    const up1 = curlMultipart([{ name: 'file', filename: 'report.pdf', data: report }]);
    ok(await send(base, 'POST', '/api/files/upload?path=/Docs/report.pdf&mount=1', [...h().filter(([k]) => k !== 'Content-Type'), ['Content-Type', up1.contentType]], up1.body), 'explorer upload');
    const rootList = ok(await send(base, 'GET', '/api/files/list?path=/&mount=1', h()), 'list /').json().files as any[];
    assert.equal(rootList[0].type, 'directory', 'directories first');
    const docsList = ok(await send(base, 'GET', '/api/files/list?path=/Docs&mount=1', h()), 'list /Docs').json().files as any[];
    const file = docsList.find((f) => f.name === 'report.pdf');
    assert.ok(file, JSON.stringify(docsList));
    for (const k of ['name', 'path', 'type', 'owner', 'created_at', 'updated_at']) assert.equal(typeof file[k], 'string', `${k} is a string, never null`);
    for (const k of ['file_id', 'size']) assert.equal(typeof file[k], 'number', k);
    assert.ok(file.mount_id !== null && file.mount_id !== undefined, 'mount_id');
    assert.match(file.updated_at, ISO_Z);

    // 12. Download with the raw path appended: the `//` is literal.
    assert.deepEqual(ok(await send(base, 'GET', '/api/files/download//Docs/report.pdf', h()), 'download //').body, report);

    // 13. Rename by file_id, then delete by id.
    ok(await send(base, 'PUT', '/api/files/rename', h(), nlohmann({ file_id: file.file_id, new_name: 'r2.pdf' })), 'rename by id');
    assert.deepEqual(ok(await send(base, 'GET', '/api/files/download//Docs/r2.pdf', h()), 'renamed').body, report);
    ok(await send(base, 'DELETE', `/api/files/${file.file_id}`, h()), 'delete by id');
    assert.equal((await send(base, 'GET', '/api/files/download//Docs/r2.pdf', h())).status, 404);
    ok(await send(base, 'DELETE', `/api/files/${file.file_id}`, h()), 'delete again is fine (idempotent)');

    // 14. Adding a sync folder: the root as HttpClient escapes it.
    assert.ok(Array.isArray(ok(await send(base, 'GET', '/api/files/list?path=%2F', h()), 'list %2F').json().files));

    // 15. First delta (empty hashes, as the first scan sends them).
    const first = ok(await send(base, 'POST', '/api/sync/changes', h(), nlohmann({ device_id: DEV, file_list: [
      { hash: '', modified_at: '2026-03-01T12:00:00Z', path: 'a.txt', size: 4 },
      { hash: '', modified_at: '2026-03-01T12:00:00Z', path: 'big.iso', size: 5_242_880 },
    ] })), 'changes').json();
    for (const k of ['to_download', 'to_delete', 'conflicts']) assert.ok(Array.isArray(first[k]), k);
    assert.equal(typeof first.change_token, 'string');

    // 16. Uploads: `path` first, then `files` (batch) and `file` (big one).
    const aTxt = Buffer.from('abcd');
    const big = randomBytes(5_242_880);
    const batch = curlMultipart([{ name: 'path', data: '/Sync' }, { name: 'files', filename: 'a.txt', data: aTxt }]);
    const single = curlMultipart([{ name: 'path', data: '/Sync' }, { name: 'file', filename: 'big.iso', data: big }]);
    for (const [what, m] of [['batch upload', batch], ['big upload', single]] as const) {
      ok(await send(base, 'POST', '/api/files/upload', [...h().filter(([k]) => k !== 'Content-Type'), ['Content-Type', m.contentType]], m.body), what);
    }
    const sync = ok(await send(base, 'GET', '/api/files/list?path=/Sync', h()), 'list /Sync').json().files as any[];
    assert.deepEqual(sync.map((f) => [f.name, f.size]).sort(), [['a.txt', 4], ['big.iso', big.length]]);

    // 17. 401 anywhere → refresh, carrying the old Bearer.
    const sven = emu.accounts.users.get('sven')!;
    const stale = emu.accounts.accessToken(sven, Date.now() - 3_600_000);
    at = stale;
    assert.equal((await send(base, 'GET', '/api/files/list?path=/Sync', h())).status, 401);
    const refreshed = await send(base, 'POST', '/api/auth/refresh', h(), nlohmann({ refresh_token: rt }));
    // BaluHost refuses desktop-pairing refresh tokens (it never stored their jti) while it is up; the Pi passes that on.
    assert.ok(refreshed.status === 200 || refreshed.status === 401, refreshed.text());
    at = refreshed.status === 200 ? refreshed.json().access_token : emu.accounts.accessToken(sven);

    // 18. A file created on the server side is offered for download, then fetched with the raw `//` URL.
    const bTxt = Buffer.from('bee');
    const b = curlMultipart([{ name: 'path', data: '/Sync' }, { name: 'file', filename: 'b.txt', data: bTxt }]);
    ok(await send(base, 'POST', '/api/files/upload', [...h().filter(([k]) => k !== 'Content-Type'), ['Content-Type', b.contentType]], b.body), 'server-side file');
    const next = ok(await send(base, 'POST', '/api/sync/changes', h(), nlohmann({ change_token: first.change_token, device_id: DEV, file_list: [] })), 'changes 2').json();
    const offered = (next.to_download as any[]).find((d) => d.path.endsWith('b.txt'));
    assert.ok(offered, JSON.stringify(next));
    assert.equal(offered.size, 3);
    assert.deepEqual(ok(await send(base, 'GET', '/api/files/download//Sync/b.txt', h()), 'download //Sync/b.txt').body, bTxt);

    // 19–20. A quiet cycle; the health check of the saved profile.
    const quiet = ok(await send(base, 'POST', '/api/sync/changes', h(), nlohmann({ change_token: next.change_token, device_id: DEV, file_list: [] })), 'changes 3').json();
    assert.deepEqual([quiet.to_download, quiet.to_delete, quiet.conflicts], [[], [], []]);
    ok(await send(base, 'GET', '/api/health', [['Accept', '*/*']]), 'health');
  } finally {
    await r.close();
  }
});
