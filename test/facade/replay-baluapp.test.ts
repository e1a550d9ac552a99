// BaluApp's typical session (../shared/reference/clients.md §C.1) replayed on the wire against a real Pi: the bodies
// as Gson writes them, multiparts as OkHttp builds them (file part first, `path` after it), the four download URL
// styles it uses, its headers (Bearer, X-Device-ID, X-Sync-Trigger), and the fields it actually reads in each answer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { appHeaders, gson, javaUrlEncode, okHttpMultipart, okQuery, send } from '../helpers/wire-clients.ts';
import { ISO_Z, ok, startReplay } from './replay-setup.ts';

const DEV = '7d0c3c56-9a3c-4c5e-8e39-1f3e6a2b9d10';

test('BaluApp session: QR pairing → dashboard → browse → upload → download → move → delete → refresh → folder sync', async () => {
  const r = await startReplay();
  const { base, emu } = r;
  try {
    // 1. QR registration, on its own OkHttp client (no auth, no X-Device-ID).
    const reg = gson({ token: emu.accounts.registrationToken('sven'), device_info: { device_name: 'Google Pixel 7', device_type: 'android', device_model: 'Pixel 7', os_version: 'Android 14', app_version: '1.0.0' } });
    const registered = ok(await send(base, 'POST', '/api/mobile/register', [['Content-Type', reg.contentType], ['User-Agent', 'okhttp/4.12.0']], reg.body), 'register').json();
    for (const k of ['access_token', 'refresh_token']) assert.equal(typeof registered[k], 'string', k);
    assert.match(registered.user.created_at, ISO_Z, 'Instant.parse needs …Z');
    assert.deepEqual([typeof registered.user.id, registered.user.username, registered.user.role, registered.user.is_active], ['number', 'sven', 'admin', true]);
    for (const k of ['id', 'device_name', 'device_type', 'last_seen']) assert.ok(registered.device[k] !== undefined && registered.device[k] !== null, `device.${k}`);
    let at: string = registered.access_token;
    const rt: string = registered.refresh_token;
    const h = (trigger?: 'auto' | 'manual') => appHeaders(at, DEV, trigger);

    // 2–3. Push token (bodyless POST), health.
    assert.equal(typeof ok(await send(base, 'POST', `/api/mobile/devices/${DEV}/push-token?push_token=FCM123`, h()), 'push-token').json(), 'object');
    ok(await send(base, 'GET', '/api/health', h()), 'health');

    // 4. System info gates the dashboard.
    const info = ok(await send(base, 'GET', '/api/system/info', h()), 'system/info').json();
    for (const k of ['usage', 'cores']) assert.equal(typeof info.cpu[k], 'number', `cpu.${k}`);
    for (const k of ['total', 'used', 'free']) {
      assert.equal(typeof info.memory[k], 'number', `memory.${k}`);
      assert.equal(typeof info.disk[k], 'number', `disk.${k}`);
    }
    assert.equal(typeof info.uptime, 'number');

    // 5–8. RAID/SMART (tolerated), plugin config, smart devices, the first power-monitoring plug's dashboard.
    assert.ok(Array.isArray(ok(await send(base, 'GET', '/api/system/raid/status', h()), 'raid').json().arrays));
    const smart = ok(await send(base, 'GET', '/api/system/smart/status', h()), 'smart').json();
    assert.ok(Array.isArray(smart.devices) && typeof smart.checked_at === 'string');
    assert.ok(Array.isArray(ok(await send(base, 'GET', '/api/plugins/tapo_smart_plug/config', h()), 'plugin config').json().config.panel_devices));
    const devices = ok(await send(base, 'GET', '/api/smart-devices/', h()), 'smart-devices').json().devices as any[];
    const plug = devices.find((d) => d.is_active && d.capabilities.includes('power_monitor'));
    assert.ok(plug && typeof plug.id === 'number' && typeof plug.name === 'string', JSON.stringify(devices));
    const dash = ok(await send(base, 'GET', `/api/energy/dashboard/${plug.id}`, h()), 'energy dashboard').json();
    assert.equal(typeof dash.device_name, 'string');
    assert.equal(typeof dash.current_watts, 'number');
    assert.equal(typeof dash.is_online, 'boolean');
    assert.ok(Array.isArray(dash.hourly_samples));

    // 9. The rest of the dashboard: permissions, shares, uptime, activity report then recent files.
    assert.equal(typeof ok(await send(base, 'GET', '/api/system/sleep/my-permissions', h()), 'my-permissions').json().can_wol, 'boolean');
    ok(await send(base, 'GET', '/api/shares/statistics', h()), 'shares/statistics');
    ok(await send(base, 'GET', '/api/monitoring/uptime/current', h()), 'uptime');
    const report = gson({ activities: [{ action_type: 'file.open', file_path: 'Docs/readme.txt', file_name: 'readme.txt', is_directory: false, file_size: 12, device_id: DEV, occurred_at: '2026-03-01T12:00:00.123Z' }] });
    assert.equal(ok(await send(base, 'POST', '/api/activity/report', [...h(), ['Content-Type', report.contentType]], report.body), 'activity/report').json().accepted, 1);
    const recent = ok(await send(base, 'GET', '/api/activity/recent-files?limit=5', h()), 'recent-files').json().files as any[];
    assert.equal(recent[0].file_path, 'Docs/readme.txt');
    assert.match(recent[0].last_action_at, ISO_Z);

    // 10–11. Sync folders (none yet), the Files root.
    assert.deepEqual(ok(await send(base, 'GET', `/api/mobile/sync/folders/${DEV}`, h()), 'folders').json(), []);
    const root = ok(await send(base, 'GET', '/api/files/list?path=', h()), 'list root').json();
    assert.ok(Array.isArray(root.files));

    // 12. Files-screen upload: part `files` first, then `path` = the target directory; then the app re-lists.
    const photo = randomBytes(150_000);
    const up = okHttpMultipart([
      { name: 'files', filename: 'photo.jpg', contentType: 'application/octet-stream', data: photo },
      { name: 'path', contentType: 'text/plain; charset=utf-8', data: 'Docs' },
    ]);
    ok(await send(base, 'POST', '/api/files/upload', [...h(), ['Content-Type', up.contentType]], up.body), 'upload');
    const docs = ok(await send(base, 'GET', `/api/files/list?path=${okQuery('Docs')}`, h()), 'list Docs').json().files as any[];
    const item = docs.find((f) => f.name === 'photo.jpg');
    assert.ok(item, JSON.stringify(docs));
    assert.deepEqual([item.path, item.size, item.type], ['Docs/photo.jpg', photo.length, 'file']);
    assert.match(item.modified_at, ISO_Z);
    assert.equal(item.checksum, createHash('sha256').update(photo).digest('hex'), 'the SHA-256 the sync compares');

    // 13, 13b. Download by ?path= and through URLEncoder (%2F, '+'); video/audio go without Bearer.
    assert.deepEqual(ok(await send(base, 'GET', `/api/files/download?path=${okQuery('Docs/photo.jpg')}`, h()), 'download ?path').body, photo);
    assert.deepEqual(ok(await send(base, 'GET', `/api/files/download/${javaUrlEncode('Docs/photo.jpg')}`, h()), 'download %2F').body, photo);

    // 14–15. Move (destination_path), delete (raw path).
    const move = gson({ source_path: 'Docs/photo.jpg', destination_path: 'Archive/photo.jpg' });
    ok(await send(base, 'PUT', '/api/files/move', [...h(), ['Content-Type', move.contentType]], move.body), 'move');
    assert.deepEqual(ok(await send(base, 'GET', '/api/files/download/Archive/photo.jpg', h()), 'moved').body, photo);
    ok(await send(base, 'DELETE', '/api/files/Archive/photo.jpg', h()), 'delete');
    assert.equal((await send(base, 'GET', '/api/files/download/Archive/photo.jpg', h())).status, 404);

    // 16. An expired access token: 401 → refresh (no auth headers) → the retry (new Bearer, no X-Device-ID) works.
    const sven = emu.accounts.users.get('sven')!;
    at = emu.accounts.accessToken(sven, Date.now() - 3_600_000);
    assert.equal((await send(base, 'GET', '/api/files/list?path=', h())).status, 401);
    const rb = gson({ refresh_token: rt });
    at = ok(await send(base, 'POST', '/api/auth/refresh', [['Content-Type', rb.contentType]], rb.body), 'refresh').json().access_token;
    ok(await send(base, 'GET', '/api/files/list?path=', [['Authorization', `Bearer ${at}`]]), 'retry after refresh');

    // 17–20. Folder sync: create the folder, list it, upload (`file` then `path` = full file path), download, idle.
    const create = gson({ local_path: 'content://com.android.externalstorage.documents/tree/primary%3ADCIM', remote_path: 'sven/Photos', sync_type: 'bidirectional', auto_sync: true, conflict_resolution: 'keep_newest', adapter_type: 'filesystem', save_credentials: false, exclude_patterns: [] });
    const folder = ok(await send(base, 'POST', `/api/mobile/sync/folders/${DEV}`, [...h(), ['Content-Type', create.contentType]], create.body), 'create folder').json();
    assert.equal(typeof folder.id, 'string');
    const listed = ok(await send(base, 'GET', `/api/mobile/sync/folders/${DEV}`, h()), 'folders').json() as any[];
    assert.deepEqual(listed.map((f) => [f.id, f.remote_path, f.status]), [[folder.id, 'sven/Photos', folder.status]]);
    const a = randomBytes(40_000);
    const syncUp = okHttpMultipart([
      { name: 'file', filename: 'a.jpg', contentType: 'image/jpeg', data: a },
      { name: 'path', contentType: 'text/plain; charset=utf-8', data: 'sven/Photos/sub/a.jpg' },
    ]);
    ok(await send(base, 'POST', '/api/files/upload', [...h('manual'), ['Content-Type', syncUp.contentType]], syncUp.body), 'sync upload');
    const sub = ok(await send(base, 'GET', `/api/files/list?path=${okQuery('sven/Photos/sub')}`, h('manual')), 'list sub').json().files as any[];
    assert.deepEqual(sub.map((f) => [f.path, f.size]), [['sven/Photos/sub/a.jpg', a.length]], '`path` ending in the file name is the file path');
    const photos = ok(await send(base, 'GET', `/api/files/list?path=${okQuery('sven/Photos')}`, h('manual')), 'list Photos').json().files as any[];
    assert.ok(photos.every((f) => f.path.startsWith('sven/Photos')), 'item paths are prefixed by the folder');
    assert.equal(photos.find((f) => f.name === 'sub')?.type, 'directory');
    assert.deepEqual(ok(await send(base, 'GET', '/api/files/download/sven/Photos/sub/a.jpg', h('manual')), 'sync download').body, a);
    const before = folder.last_sync ? Date.parse(folder.last_sync) : 0;
    const idle = gson({ status: 'idle' });
    const updated = ok(await send(base, 'PUT', `/api/mobile/sync/folders/${folder.id}`, [...h(), ['Content-Type', idle.contentType]], idle.body), 'folder idle').json();
    assert.equal(updated.status, 'idle');
    assert.ok(Date.parse(updated.last_sync) > before, 'last_sync advances');

    // 21. A scheduled run: schedules (the NAS's, relayed), then preflight.
    assert.ok(Array.isArray(ok(await send(base, 'GET', '/api/sync/schedule/list', h()), 'schedules').json().schedules));
    assert.equal(ok(await send(base, 'GET', '/api/sync/preflight', h()), 'preflight').json().sync_allowed, true);
  } finally {
    await r.close();
  }
});
