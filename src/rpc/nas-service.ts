// balupi.nas.v1.NasService: the NAS presence state over Connect, gRPC and gRPC-Web (same figures as /api/nas/*).
import { create } from '@bufbuild/protobuf';
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import type { ServiceImpl } from '@connectrpc/connect';
import { GetHistoryResponseSchema, GetStatusResponseSchema, NasService } from '../gen/balupi/nas/v1/nas_pb.js';
import type { NasService as Nas } from '../nas/service.ts';

const ts = (iso: string | null) => (iso === null ? undefined : timestampFromMs(Date.parse(iso)));

export function nasService(nas: Nas): ServiceImpl<typeof NasService> {
  return {
    async getStatus() {
      const s = nas.status();
      const w = s.last_wake;
      return create(GetStatusResponseSchema, {
        online: s.online,
        nasState: s.nas_state,
        since: ts(s.since),
        reason: s.reason,
        powerW: s.power_w ?? undefined,
        powerState: s.power_state,
        url: s.url ?? undefined,
        version: s.version ?? undefined,
        lastWake: w
          ? { at: ts(w.at), reason: w.reason, requestedBy: w.requested_by, outcome: w.outcome, finishedAt: ts(w.finished_at), detail: w.detail ?? '' }
          : undefined,
      });
    },
    async getHistory(req) {
      const limit = Math.min(200, req.limit || 50);
      return create(GetHistoryResponseSchema, {
        transitions: nas.history(limit).map((t) => ({ fromState: t.from, toState: t.to, at: timestampFromMs(t.at), reason: t.reason, cause: t.cause })),
      });
    },
  };
}

export { NasService };
