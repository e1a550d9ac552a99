// Route schemas compiled when a route first needs them, not when the app starts. Fastify compiles every route's
// validator (Ajv) and response serializer (fast-json-stringify) as the app gets ready: ~140 ms of a daemon's start on
// the dev VM, all of it before the pi's sync could begin. Deferred, a route's first request pays its own compile
// once (a few ms), and Ajv (~90 modules) loads with the first validated request.
//
// The compilers and their options are Fastify's defaults, created the way Fastify creates them, so validation,
// coercion and serialization are unchanged. One difference: with compilers of its own Fastify no longer lowercases
// the keys of `headers` schemas, which balupi's routes do not have. A broken schema now fails its route's first
// request instead of the start: test/http/lazy-schemas.test.ts compiles every route of a running daemon.
import { createRequire } from 'node:module';
import type { FastifyServerOptions } from 'fastify';

type Factories = NonNullable<NonNullable<FastifyServerOptions['schemaController']>['compilersFactory']>;
type Route = { schema: unknown; method: string; url: string; httpPart?: string; httpStatus?: string };
type Validate = ((data: unknown) => unknown) & { errors?: unknown };
type Serialize = (data: unknown) => string;
type Selector<F> = () => (externalSchemas: unknown, options: unknown) => (route: Route) => F;

const require = createRequire(import.meta.url);

/** Deferred work not run yet (compileAllPending runs it). */
const pending = new Set<() => unknown>();

/** `make`'s result, made on the first call (a failure is thrown again on the next call). */
function deferred<T>(make: () => T): () => T {
  let made: { value: T } | undefined;
  const get = () => {
    if (!made) {
      made = { value: make() };
      pending.delete(get);
    }
    return made.value;
  };
  pending.add(get);
  return get;
}

/** Fastify's default schema compilers, each route's compiled on its first use. */
export function lazySchemaCompilers(): Factories {
  // One selector per app, as Fastify makes them: it pools compilers by their external schemas and options.
  const validators = deferred(() => (require('@fastify/ajv-compiler') as Selector<Validate>)());
  const serializers = deferred(() => (require('@fastify/fast-json-stringify-compiler') as Selector<Serialize>)());
  const compileFor = <F>(selector: () => ReturnType<Selector<F>>, externalSchemas: unknown, options: unknown) => {
    const compiler = deferred(() => selector()(externalSchemas, options));
    return (route: Route) =>
      deferred(() => {
        try {
          return compiler()(route);
        } catch (err) {
          throw new Error(`schema of ${route.method} ${route.url} (${route.httpPart ?? `response ${route.httpStatus}`}) does not compile: ${(err as Error).message}`, { cause: err });
        }
      });
  };
  return {
    buildValidator: ((externalSchemas: unknown, options: unknown) => {
      const compile = compileFor(validators, externalSchemas, options);
      return (route: Route) => {
        const fn = compile(route);
        // Fastify reads a failed validation's errors from the function it was given.
        const validate: Validate = (data) => {
          const f = fn();
          const ok = f(data);
          validate.errors = f.errors;
          return ok;
        };
        return validate;
      };
    }) as Factories['buildValidator'],
    buildSerializer: ((externalSchemas: unknown, options: unknown) => {
      const compile = compileFor(serializers, externalSchemas, options);
      return (route: Route) => {
        const fn = compile(route);
        return (data: unknown) => fn()(data);
      };
    }) as Factories['buildSerializer'],
  };
}

/** Route schemas (and compilers) not compiled yet, in every app of this process. */
export function pendingCompiles(): number {
  return pending.size;
}

/** Compiles everything pending; returns how many. Throws naming every schema that does not compile. */
export function compileAllPending(): number {
  const failures: string[] = [];
  let n = 0;
  for (const get of [...pending]) {
    try {
      get();
      n++;
    } catch (err) {
      failures.push((err as Error).message);
    }
  }
  if (failures.length > 0) throw new Error(failures.join('; '));
  return n;
}
