// Reading a request's URL as the client wrote it. The file routes need the undecoded text: whether a path arrived
// as one %2F-encoded piece (then `+` means a space) or raw (then `+` is a `+`) decides which file is meant.

import type { FastifyReply } from 'fastify';

/** The raw text of the path after `prefix` (query string removed), still percent-encoded. */
export function rawPathAfter(url: string, prefix: string): string {
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  return path.startsWith(prefix) ? path.slice(prefix.length) : '';
}

/** The raw (still encoded) value of the first `name=` query parameter, or undefined. */
export function rawQueryParam(url: string, name: string): string | undefined {
  const q = url.indexOf('?');
  if (q < 0) return undefined;
  for (const pair of url.slice(q + 1).split('&')) {
    const eq = pair.indexOf('=');
    const key = eq < 0 ? pair : pair.slice(0, eq);
    if (key === name) return eq < 0 ? '' : pair.slice(eq + 1);
  }
  return undefined;
}

/** Aborts when the client goes away before the response is complete (uploads and downloads stop their work). */
export function requestSignal(reply: FastifyReply): AbortSignal {
  const ac = new AbortController();
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) ac.abort(new Error('the client went away'));
  });
  return ac.signal;
}
