// Route schemas are compiled on a route's first use (src/http/lazy-schemas.ts), with Fastify's own compilers. These
// tests hold that nothing changes for clients: the same requests get the same answers from an app compiling lazily
// as from one compiling Fastify's way; that a broken schema is still found (compileAllPending, which the last test
// runs over every route of a real daemon process); and that a broken route fails alone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Fastify, { type FastifyInstance } from 'fastify';
import { compileAllPending, lazySchemaCompilers, pendingCompiles } from '../../src/http/lazy-schemas.ts';
import { startDaemonProcess } from '../helpers/daemon-process.ts';

const lazyApp = () => Fastify({ schemaController: { compilersFactory: lazySchemaCompilers() } });

/** A route with a body, a querystring with defaults and coercion, params, and a response schema that drops a field. */
function withRoutes(app: FastifyInstance): FastifyInstance {
  app.post<{ Body: { name: string; size: number }; Querystring: { n: number; tags: string[]; mode: string }; Params: { id: number } }>(
    '/items/:id',
    {
      schema: {
        params: { type: 'object', properties: { id: { type: 'integer', minimum: 1 } }, required: ['id'] },
        querystring: { type: 'object', properties: { n: { type: 'integer' }, tags: { type: 'array', items: { type: 'string' } }, mode: { type: 'string', default: 'fast' } } },
        body: { type: 'object', properties: { name: { type: 'string', minLength: 1 }, size: { type: 'integer', minimum: 0 } }, required: ['name', 'size'], additionalProperties: false },
        response: { 200: { type: 'object', properties: { id: { type: 'integer' }, echo: { type: 'object', additionalProperties: true }, n: { type: 'integer' } } } },
      },
    },
    async (req) => ({ id: req.params.id, echo: { body: req.body, query: req.query }, n: req.query.n, secret: 'never serialized' }),
  );
  return app;
}

const requests = [
  { what: 'valid, with coercion and a default', method: 'POST', url: '/items/7?n=5&tags=a', payload: { name: 'x', size: 3 } },
  { what: 'a field the body may not have', method: 'POST', url: '/items/7', payload: { name: 'x', size: 3, extra: 1 } },
  { what: 'missing body field', method: 'POST', url: '/items/7', payload: { name: 'x' } },
  { what: 'wrong body type', method: 'POST', url: '/items/7', payload: { name: 'x', size: 'big' } },
  { what: 'empty name', method: 'POST', url: '/items/7', payload: { name: '', size: 1 } },
  { what: 'param below minimum', method: 'POST', url: '/items/0', payload: { name: 'x', size: 1 } },
  { what: 'param not a number', method: 'POST', url: '/items/abc', payload: { name: 'x', size: 1 } },
  { what: 'querystring not an integer', method: 'POST', url: '/items/7?n=1.5', payload: { name: 'x', size: 1 } },
  { what: 'body not JSON', method: 'POST', url: '/items/7', payload: '{"name":', headers: { 'content-type': 'application/json' } },
] as const;

test('an app compiling schemas lazily answers every request exactly as one compiling them at start', async () => {
  const eager = withRoutes(Fastify());
  const lazy = withRoutes(lazyApp());
  await Promise.all([eager.ready(), lazy.ready()]);
  try {
    // Ready, and nothing compiled yet: the compilers and the route's params, querystring, body and response schemas.
    assert.ok(pendingCompiles() >= 6, `only ${pendingCompiles()} compiles deferred`);
    for (const r of requests) {
      const [a, b] = await Promise.all([eager.inject(r), lazy.inject(r)]);
      assert.equal(b.statusCode, a.statusCode, r.what);
      assert.deepEqual(b.json(), a.json(), r.what);
    }
    const ok = await lazy.inject(requests[0]);
    assert.equal(ok.statusCode, 200);
    assert.deepEqual(ok.json(), { id: 7, echo: { body: { name: 'x', size: 3 }, query: { n: 5, tags: ['a'], mode: 'fast' } }, n: 5 });
    assert.equal(pendingCompiles(), 0, 'every schema of the route was used, so compiled');
  } finally {
    await Promise.all([eager.close(), lazy.close()]);
  }
});

test('a schema that does not compile: compileAllPending names it; its route answers 500, the others still work', async () => {
  const app = lazyApp();
  app.get('/good', { schema: { response: { 200: { type: 'object', properties: { ok: { type: 'boolean' } } } } } }, async () => ({ ok: true }));
  app.post('/broken', { schema: { body: { type: 'object', properties: { a: { type: 'no-such-type' } } } } }, async () => ({ ok: true }));
  await app.ready(); // a start does not compile, so it does not fail
  try {
    assert.throws(() => compileAllPending(), /POST \/broken \(body\) does not compile/);
    const broken = await app.inject({ method: 'POST', url: '/broken', payload: { a: 1 } });
    assert.equal(broken.statusCode, 500);
    const good = await app.inject({ method: 'GET', url: '/good' });
    assert.equal(good.statusCode, 200);
    assert.deepEqual(good.json(), { ok: true });
  } finally {
    await app.close();
  }
});

test('every route schema of a running daemon compiles', async () => {
  const daemon = await startDaemonProcess({ execArgv: ['--import', new URL('../helpers/compile-schemas-on-signal.ts', import.meta.url).pathname] });
  try {
    await daemon.waitForLog((l) => l.msg === 'balupi listening');
    const reported = daemon.waitForLog((l) => l.msg === 'route schemas compiled' || l.msg === 'route schema does not compile');
    daemon.proc.kill('SIGUSR2');
    const line = await reported;
    assert.equal(line.msg, 'route schemas compiled', String(line.error));
    // The REST facade, the local API and their compilers: well over a hundred schemas.
    assert.ok(Number(line.count) > 100, `only ${line.count} schemas compiled`);
  } finally {
    await daemon.stop();
  }
});
