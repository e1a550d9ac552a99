// Requests built the way BaluApp (OkHttp 4 + Gson) and BaluDesk (libcurl + nlohmann::json) put them on the wire
// (../shared/reference/clients.md §A.1, §A.3, §B.1, §B.3, §C.3): header names and order, JSON key order, multipart
// part order and part headers, and the URL exactly as each client builds it (no re-encoding by a URL class).
import http from 'node:http';
import { randomUUID } from 'node:crypto';

export interface WireResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  json(): any;
  text(): string;
}

/** Sends `path` verbatim (raw `//`, `%2F` and `+` survive) with the headers in the given order. */
export function send(base: string, method: string, path: string, headers: [string, string][] = [], body?: Buffer): Promise<WireResponse> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: url.hostname, port: url.port, method, path, setHost: true });
    for (const [k, v] of headers) req.setHeader(k, v);
    if (body) req.setHeader('Content-Length', String(body.length));
    else if (method === 'POST' || method === 'PUT') req.setHeader('Content-Length', '0');
    req.on('response', async (res) => {
      const parts: Buffer[] = [];
      for await (const p of res) parts.push(p as Buffer);
      const buf = Buffer.concat(parts);
      resolve({
        status: res.statusCode ?? 0,
        headers: res.headers,
        body: buf,
        text: () => buf.toString('utf8'),
        json: () => JSON.parse(buf.toString('utf8')),
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

export interface Part {
  name: string;
  filename?: string;
  contentType?: string;
  data: Buffer | string;
}

/** OkHttp's MultipartBody: a UUID boundary, and every part carries Content-Type (when set) and Content-Length. */
export function okHttpMultipart(parts: Part[]): { contentType: string; body: Buffer } {
  const boundary = randomUUID();
  const chunks: Buffer[] = [];
  for (const p of parts) {
    const data = Buffer.isBuffer(p.data) ? p.data : Buffer.from(p.data, 'utf8');
    let head = `--${boundary}\r\nContent-Disposition: form-data; name="${p.name}"${p.filename !== undefined ? `; filename="${p.filename}"` : ''}\r\n`;
    if (p.contentType) head += `Content-Type: ${p.contentType}\r\n`;
    head += `Content-Length: ${data.length}\r\n\r\n`;
    chunks.push(Buffer.from(head, 'utf8'), data, Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { contentType: `multipart/form-data; boundary=${boundary}`, body: Buffer.concat(chunks) };
}

/** libcurl's curl_mime: a dashed hex boundary; file parts get Content-Type, text parts none, no part lengths. */
export function curlMultipart(parts: Part[]): { contentType: string; body: Buffer } {
  const boundary = '------------------------' + randomUUID().replaceAll('-', '').slice(0, 22);
  const chunks: Buffer[] = [];
  for (const p of parts) {
    const data = Buffer.isBuffer(p.data) ? p.data : Buffer.from(p.data, 'utf8');
    let head = `--${boundary}\r\nContent-Disposition: form-data; name="${p.name}"${p.filename !== undefined ? `; filename="${p.filename}"` : ''}\r\n`;
    if (p.filename !== undefined) head += `Content-Type: ${p.contentType ?? 'application/octet-stream'}\r\n`;
    head += '\r\n';
    chunks.push(Buffer.from(head, 'utf8'), data, Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { contentType: `multipart/form-data; boundary=${boundary}`, body: Buffer.concat(chunks) };
}

/** BaluApp's headers on its main client (AuthInterceptor adds both; the SyncTrigger tag adds the third). */
export function appHeaders(token: string, deviceId: string, syncTrigger?: 'auto' | 'manual'): [string, string][] {
  const h: [string, string][] = [['Authorization', `Bearer ${token}`], ['X-Device-ID', deviceId]];
  if (syncTrigger) h.push(['X-Sync-Trigger', syncTrigger]);
  h.push(['Accept-Encoding', 'gzip'], ['User-Agent', 'okhttp/4.12.0']);
  return h;
}

/** BaluDesk's JSON client: Content-Type on every request, GET and DELETE included. */
export function deskHeaders(token: string | null): [string, string][] {
  const h: [string, string][] = [['Accept', '*/*']];
  if (token) h.push(['Authorization', `Bearer ${token}`]);
  h.push(['Content-Type', 'application/json']);
  return h;
}

/** Gson: keys in declaration order, nulls omitted; `application/json; charset=UTF-8`. */
export function gson(value: Record<string, unknown>): { contentType: string; body: Buffer } {
  const drop = (v: unknown): unknown =>
    Array.isArray(v) ? v.map(drop) : v && typeof v === 'object' ? Object.fromEntries(Object.entries(v).filter(([, x]) => x !== null && x !== undefined).map(([k, x]) => [k, drop(x)])) : v;
  return { contentType: 'application/json; charset=UTF-8', body: Buffer.from(JSON.stringify(drop(value)), 'utf8') };
}

/** nlohmann::json dump(): keys sorted (std::map), compact. */
export function nlohmann(value: unknown): Buffer {
  const sort = (v: unknown): unknown =>
    Array.isArray(v) ? v.map(sort) : v && typeof v === 'object' ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, sort((v as Record<string, unknown>)[k])])) : v;
  return Buffer.from(JSON.stringify(sort(value)), 'utf8');
}

/** Java's URLEncoder.encode(s, UTF-8): space → '+', '/' → %2F, keeps A-Za-z0-9 and . - * _ */
export function javaUrlEncode(s: string): string {
  return encodeURIComponent(s).replace(/%20/g, '+').replace(/[!'()~]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** OkHttp's addQueryParameter: like encodeURIComponent for our purposes (`/` → %2F, space → %20). */
export const okQuery = (s: string) => encodeURIComponent(s);
