// The baselines of bench/files.ts, in a process of their own like the daemon they are compared with: a bare Fastify
// app with a GET route returning a fixed JSON body (the daemon's own listing, passed in), a GET route streaming a
// plain file from disk, and a multipart sink that reads every file part to the end and stores nothing.
// Run by bench/files.ts: node bench/_files-baseline.ts <json-file> <data-file> <jwt-secret>; prints {"port":N} when listening.

import { readFileSync, createReadStream, statSync } from 'node:fs';
import Fastify from 'fastify';
import multipart from '@fastify/multipart';
import { TokenVerifier } from '../src/auth/tokens.ts';

const [jsonFile, dataFile, jwtSecret] = process.argv.slice(2) as [string, string, string];
const verifier = new TokenVerifier(jwtSecret);
const body = JSON.parse(readFileSync(jsonFile, 'utf8'));
const size = statSync(dataFile).size;

const app = Fastify({ logger: false });
await app.register(multipart, { limits: { fileSize: 10 * 1024 ** 3 } });
app.get('/list', async () => body);
// The same, plus the one thing every daemon route does first: verify BaluHost's token (jose, HS256).
app.get('/list-auth', async (req) => {
  await verifier.verifyAccess(req.headers.authorization!.slice(7));
  return body;
});
app.get('/file', (_req, reply) => reply.header('content-type', 'application/octet-stream').header('content-length', String(size)).send(createReadStream(dataFile, { highWaterMark: 1024 * 1024 })));
app.post('/upload', async (req) => {
  let bytes = 0;
  for await (const part of req.parts()) {
    if (part.type === 'file') for await (const c of part.file) bytes += (c as Buffer).length;
  }
  return { uploaded: 1, bytes };
});
await app.listen({ host: '127.0.0.1', port: 0 });
console.log(JSON.stringify({ port: (app.server.address() as { port: number }).port }));
