// NodeService.GetStatus against a real daemon process, through two client stacks: @grpc/grpc-js with the .proto
// loaded at run time (an implementation independent of ours), and Connect over HTTP/1.1 and HTTP/2.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { createClient, ConnectError, Code, createRouterTransport } from '@connectrpc/connect';
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from '@connectrpc/connect-node';
import { NodeService } from '../../src/gen/balupi/node/v1/node_pb.js';
import { peerAuthInterceptor } from '../../src/rpc/peer-auth.ts';
import { startDaemonProcess, type DaemonProcess } from '../helpers/daemon-process.ts';

let daemon: DaemonProcess;
before(async () => {
  daemon = await startDaemonProcess({ env: { BALUPI_PEER_SECRET: 'pairing-secret' } });
});
after(() => daemon.stop());

test('@grpc/grpc-js client calls GetStatus over h2c', async () => {
  const def = protoLoader.loadSync('balupi/node/v1/node.proto', { includeDirs: [new URL('../../proto', import.meta.url).pathname], longs: String, keepCase: true });
  const pkg = grpc.loadPackageDefinition(def) as unknown as {
    balupi: { node: { v1: { NodeService: new (addr: string, creds: grpc.ChannelCredentials) => grpc.Client & { GetStatus: Function } } } };
  };
  const client = new pkg.balupi.node.v1.NodeService(`127.0.0.1:${daemon.ports.grpc}`, grpc.credentials.createInsecure());
  try {
    const res = await new Promise<Record<string, any>>((resolve, reject) =>
      client.GetStatus({}, (err: Error | null, r: Record<string, any>) => (err ? reject(err) : resolve(r))),
    );
    assert.equal(res.service, 'balupi');
    assert.equal(res.role, 'pi');
    assert.ok(Number(res.memory.total) > 0);
    assert.equal(res.disk.path, daemon.dataDir);
    assert.equal(res.load_avg.length, 3);
    assert.ok(Number(res.process_rss_bytes) > 0);
  } finally {
    client.close();
  }
});

test('Connect protocol over HTTP/1.1 (REST port), gRPC-Web and Connect over h2c answer the same service', async () => {
  const transports = [
    createConnectTransport({ baseUrl: `http://127.0.0.1:${daemon.ports.http}`, httpVersion: '1.1' }),
    createGrpcWebTransport({ baseUrl: `http://127.0.0.1:${daemon.ports.http}`, httpVersion: '1.1' }),
    createConnectTransport({ baseUrl: `http://127.0.0.1:${daemon.ports.grpc}`, httpVersion: '2' }),
    createGrpcTransport({ baseUrl: `http://127.0.0.1:${daemon.ports.grpc}` }),
  ];
  for (const transport of transports) {
    const res = await createClient(NodeService, transport).getStatus({});
    assert.equal(res.service, 'balupi');
    assert.ok(res.memory!.total > 0n);
    assert.ok(res.uptimeSeconds > 0n);
  }
});

test('the peer-secret interceptor refuses a missing or wrong secret and lets the right one through', async () => {
  // The daemon leaves GetStatus open, so exercise the interceptor with no open methods on an in-memory router.
  const { nodeService } = await import('../../src/rpc/node-service.ts');
  const status = { status: () => ({ service: 'balupi', version: '0', role: 'pi', hostname: 'h', cpu_percent: 0, cpu_temp_celsius: null, temperature_c: null, memory: { total: 1, used: 0, free: 1, available: 1, percent: 0 }, disk: { path: '/', total: 1, used: 0, free: 1, percent: 0 }, uptime_seconds: 1, load_avg: [0, 0, 0], sampled_at: '', process: { uptime_seconds: 1, rss_bytes: 1 } }) };
  const transport = createRouterTransport(({ service }) => service(NodeService, nodeService(status as never)), {
    router: { interceptors: [peerAuthInterceptor('right-secret', new Set())] },
  });
  const client = createClient(NodeService, transport);
  for (const [what, headers, message] of [
    ['no secret', {}, /peer secret required/],
    ['wrong secret', { authorization: 'Bearer wrong-secret' }, /wrong peer secret/],
  ] as const) {
    await assert.rejects(client.getStatus({}, { headers }), (err: ConnectError) => err.code === Code.Unauthenticated && message.test(err.rawMessage), what);
  }
  const ok = await client.getStatus({}, { headers: { authorization: 'Bearer right-secret' } });
  assert.equal(ok.service, 'balupi');
});
