// BaluDesk's HTTP client sends `Content-Type: application/json` on every request, DELETEs without a body included;
// Fastify would then try to parse an empty JSON body and answer 422. A request that declares JSON but carries no
// body is treated as what it is: a request without a body. Use as an onRequest hook.
import type { FastifyRequest } from 'fastify';

export async function ignoreEmptyJsonBody(req: FastifyRequest): Promise<void> {
  const h = req.headers;
  const empty = h['transfer-encoding'] === undefined && (h['content-length'] === undefined || h['content-length'] === '0');
  if (empty && typeof h['content-type'] === 'string' && /^application\/json\b/i.test(h['content-type'])) delete h['content-type'];
}
