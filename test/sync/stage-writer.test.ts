// How a batch of chunks bound for one staging file is cut into runs (src/sync/stage-writer.ts): chunks that follow on
// from each other go out as one span (one direct write and at most two partial-block writes, instead of that per
// chunk), in offset order whatever order they came in; a gap, an overlap or the size bound starts a new run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DIRECT_ARENA_BYTES, runsOf } from '../../src/sync/stage-writer.ts';
import type { StagedWrite } from '../../src/sync/staging.ts';

const MiB = 1024 * 1024;
const w = (offset: number, length: number): StagedWrite => ({ stage: 'd/.balupi-tmp-stage-x', hash: `h${offset}`, data: new Uint8Array(length), offset, fileSize: 64 * MiB });
const shape = (writes: StagedWrite[]) => runsOf(writes).map((r) => ({ offset: r.offset, lengths: r.pieces.map((p) => p.length) }));

test('chunks that follow on from each other are one run, in offset order; gaps and overlaps start new runs', () => {
  // unaligned, content-defined sizes, arriving out of order
  assert.deepEqual(shape([w(1_300_001, 700_000), w(0, 300_001), w(300_001, 1_000_000)]), [{ offset: 0, lengths: [300_001, 1_000_000, 700_000] }]);
  // a chunk the hub held already leaves a gap; the same place sent twice overlaps
  assert.deepEqual(shape([w(0, 1000), w(5000, 1000), w(5000, 1000), w(6000, 10)]), [
    { offset: 0, lengths: [1000] },
    { offset: 5000, lengths: [1000] },
    { offset: 5000, lengths: [1000, 10] },
  ]);
  assert.deepEqual(shape([]), []);
});

test('a run stays within half the direct arena, so that two files pushed at once each get a slot', () => {
  const writes = Array.from({ length: 12 }, (_, i) => w(i * 2 * MiB, 2 * MiB));
  const runs = runsOf(writes);
  assert.ok(runs.every((r) => r.pieces.reduce((n, p) => n + p.length, 0) <= DIRECT_ARENA_BYTES / 2));
  assert.equal(runs.length, 3, '24 MiB in runs of 8 MiB');
  assert.deepEqual(
    runs.map((r) => r.offset),
    [0, 8 * MiB, 16 * MiB],
  );
});
