import { test } from 'node:test';
import assert from 'node:assert/strict';
import { create } from '@bufbuild/protobuf';
import { GetStatusRequestSchema } from '../src/gen/balupi/node/v1/node_pb.js';

test('runs under Node 24 with generated code importable', () => {
  assert.equal(Number(process.versions.node.split('.')[0]), 24);
  assert.equal(create(GetStatusRequestSchema).$typeName, 'balupi.node.v1.GetStatusRequest');
});
