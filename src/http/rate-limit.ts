// Per-route rate limits with BaluHost's answer (slowapi through backend/app/core/rate_limiter.py):
//   429 {"error":"Too Many Requests","detail":"Rate limit exceeded. Please try again later.","retry_after":N}
//   + Retry-After: N, X-RateLimit-Limit, X-RateLimit-Reset (Unix seconds)
// Fixed windows like slowapi's default, keyed by client address, or by user for routes BaluHost limits per user.
// Memory is bounded: at most maxKeys windows; expired ones go first, then the oldest.
//
// Use in a route plugin:  useRateLimits(app, limiter);  app.post(path, { config: { rateLimit: BALUHOST_LIMITS.auth_login } }, ...)
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

export interface RateLimit {
  /** BaluHost's name for the limit (backend/app/core/rate_limiter.py RATE_LIMITS); windows are per name and key. */
  name: string;
  max: number;
  windowS: number;
  /** 'ip' (slowapi's `limiter`) or 'user' (`user_limiter`: the token's user, else the address). Default 'ip'. */
  by?: 'ip' | 'user';
}

declare module 'fastify' {
  interface FastifyContextConfig {
    rateLimit?: RateLimit;
  }
}

const perMinute = (name: string, max: number, by: 'ip' | 'user' = 'ip'): RateLimit => ({ name, max, windowS: 60, by });

/** BaluHost's production limits (../shared/reference/baluhost-api.md §0.4). */
export const BALUHOST_LIMITS = {
  auth_login: perMinute('auth_login', 5),
  auth_register: perMinute('auth_register', 3),
  auth_refresh: perMinute('auth_refresh', 10),
  auth_2fa_verify: perMinute('auth_2fa_verify', 5),
  mobile_register: perMinute('mobile_register', 3),
  desktop_pairing_request: perMinute('desktop_pairing_request', 3),
  desktop_pairing_poll: perMinute('desktop_pairing_poll', 12),
  sync_operations: perMinute('sync_operations', 300),
  system_monitor: perMinute('system_monitor', 120),
  user_operations: perMinute('user_operations', 30, 'user'),
  admin_operations: perMinute('admin_operations', 30),
  file_list: perMinute('file_list', 200),
  file_download: perMinute('file_download', 500),
  file_upload: perMinute('file_upload', 300),
  file_delete: perMinute('file_delete', 30),
  file_write: perMinute('file_write', 30),
  file_chunked: perMinute('file_chunked', 50_000),
} as const satisfies Record<string, RateLimit>;

export interface RateDecision {
  allowed: boolean;
  limit: number;
  remaining: number;
  /** When the window ends (ms since the epoch). */
  resetAt: number;
  /** Whole seconds until then (at least 1). */
  retryAfterS: number;
}

interface Window {
  start: number;
  count: number;
  endsAt: number;
}

export class RateLimiter {
  readonly #windows = new Map<string, Window>();
  readonly #maxKeys: number;
  readonly #now: () => number;

  constructor(opts: { maxKeys?: number; now?: () => number } = {}) {
    this.#maxKeys = opts.maxKeys ?? 10_000;
    this.#now = opts.now ?? Date.now;
  }

  get size(): number {
    return this.#windows.size;
  }

  /** Counts one request against `limit` for `key`. */
  hit(limit: RateLimit, key: string): RateDecision {
    const now = this.#now();
    const id = `${limit.name}\0${key}`;
    let w = this.#windows.get(id);
    if (!w || w.endsAt <= now) {
      if (w) this.#windows.delete(id);
      w = { start: now, count: 0, endsAt: now + limit.windowS * 1000 };
      this.#windows.set(id, w);
      if (this.#windows.size > this.#maxKeys) this.#shrink(now);
    }
    w.count++;
    const allowed = w.count <= limit.max;
    return {
      allowed,
      limit: limit.max,
      remaining: Math.max(0, limit.max - w.count),
      resetAt: w.endsAt,
      retryAfterS: Math.max(1, Math.ceil((w.endsAt - now) / 1000)),
    };
  }

  #shrink(now: number): void {
    for (const [id, w] of this.#windows) if (w.endsAt <= now) this.#windows.delete(id);
    // Still full of live windows (a flood of addresses): drop the oldest; Map order is insertion order.
    for (const id of this.#windows.keys()) {
      if (this.#windows.size <= this.#maxKeys) break;
      this.#windows.delete(id);
    }
  }
}

/** BaluHost's 429, for the limiter here and for anything else that must refuse for rate reasons. */
export function sendTooManyRequests(reply: FastifyReply, d: Pick<RateDecision, 'limit' | 'resetAt' | 'retryAfterS'>): FastifyReply {
  return reply
    .code(429)
    .headers({ 'Retry-After': String(d.retryAfterS), 'X-RateLimit-Limit': String(d.limit), 'X-RateLimit-Reset': String(Math.ceil(d.resetAt / 1000)) })
    .type('application/json')
    .send({ error: 'Too Many Requests', detail: 'Rate limit exceeded. Please try again later.', retry_after: d.retryAfterS });
}

function keyOf(req: FastifyRequest, limit: RateLimit): string {
  if (limit.by === 'user' && req.user) return `user:${req.user.id}`;
  return req.ip;
}

/**
 * Applies `config.rateLimit` of the routes in this plugin. It runs once the body is validated, as slowapi's decorator
 * does inside FastAPI (a 422 does not count against the limit), and after the auth hook, so per-user keys work.
 */
export function useRateLimits(app: FastifyInstance, limiter: RateLimiter): void {
  app.addHook('preHandler', async (req, reply) => {
    const limit = req.routeOptions.config.rateLimit;
    if (!limit) return;
    const d = limiter.hit(limit, keyOf(req, limit));
    if (!d.allowed) {
      req.log.info({ limit: limit.name, key: keyOf(req, limit) }, 'rate limit exceeded');
      return sendTooManyRequests(reply, d);
    }
  });
}
