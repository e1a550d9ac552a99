// balupi.node.v1.NodeService: the node's status over Connect, gRPC and gRPC-Web.
import { create } from '@bufbuild/protobuf';
import type { ServiceImpl } from '@connectrpc/connect';
import { GetStatusResponseSchema, NodeService } from '../gen/balupi/node/v1/node_pb.js';
import type { NodeStatusService } from '../system/node-status.ts';

export function nodeService(status: NodeStatusService): ServiceImpl<typeof NodeService> {
  return {
    async getStatus() {
      const s = status.status();
      return create(GetStatusResponseSchema, {
        service: s.service,
        version: s.version,
        role: s.role,
        hostname: s.hostname,
        cpuPercent: s.cpu_percent,
        cpuTempCelsius: s.cpu_temp_celsius ?? undefined,
        memory: { ...s.memory, total: BigInt(s.memory.total), used: BigInt(s.memory.used), free: BigInt(s.memory.free), available: BigInt(s.memory.available) },
        disk: { path: s.disk.path, total: BigInt(s.disk.total), used: BigInt(s.disk.used), free: BigInt(s.disk.free), percent: s.disk.percent },
        uptimeSeconds: BigInt(s.uptime_seconds),
        loadAvg: s.load_avg,
        processUptimeSeconds: BigInt(s.process.uptime_seconds),
        processRssBytes: BigInt(s.process.rss_bytes),
      });
    },
  };
}

export { NodeService };
