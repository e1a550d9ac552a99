// Hub roots for in-process tests of HubRoot (hub-root*.test.ts): a root folder beside a store, on the test machine's disk.
import fs from 'node:fs/promises';
import path from 'node:path';
import { ClassicLevel } from 'classic-level';
import { HubRoot } from '../../src/sync/hub-root.ts';
import { DiskIndex } from '../../src/sync/disk-index.ts';
import { PathLocks } from '../../src/sync/locks.ts';
import { SyncState } from '../../src/sync/state.ts';
import type { Store } from '../../store/index.ts';
import { tempDir } from '../helpers/daemon-process.ts';
import { node, silent, type Node } from './in-process.ts';

/** A hub node (store, sync state) with a HubRoot over a fresh root folder; all removed afterwards. */
export async function setup(fn: (n: Node, hub: HubRoot, root: string) => Promise<void>) {
  const top = await tempDir('balupi-root-');
  const root = path.join(top.path, 'root');
  await fs.mkdir(root);
  const n = await node('hub', { root });
  try {
    await fn(n, new HubRoot({ store: n.store, state: n.state, disk: new DiskIndex(n.db), locks: new PathLocks(), root, log: silent }), root);
  } finally {
    await n.close();
    await top.remove();
  }
}

/**
 * A root folder and a sync database in a fresh temp dir, for tests that open their own store (options node() does not
 * take, or one store after another); `hubOf` makes a HubRoot over a store of theirs. Stores are the test's to close.
 */
export async function withRootAndDb(
  prefix: string,
  fn: (t: { dir: string; root: string; hubOf: (store: Store, log?: typeof silent) => Promise<HubRoot> }) => Promise<void>,
): Promise<void> {
  const dir = await tempDir(prefix);
  const root = path.join(dir.path, 'root');
  await fs.mkdir(root);
  const db = new ClassicLevel<string, string>(path.join(dir.path, 'db'), { valueEncoding: 'utf8' });
  await db.open();
  try {
    const hubOf = async (store: Store, log = silent) => new HubRoot({ store, state: await SyncState.open(db), disk: new DiskIndex(db), locks: new PathLocks(), root, log });
    await fn({ dir: dir.path, root, hubOf });
  } finally {
    await db.close();
    await dir.remove();
  }
}
