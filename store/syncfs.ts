// syncfs(2): one flush of a whole file system, the group commit for many small chunk files written at once. A
// per-file flush is a journal commit each, which for a small file costs more than writing it.

/**
 * Chunks up to this size written by a batch are made durable together, by one syncfs, instead of one by one. On the
 * dev VM 3,000 files of 32 KiB took 1.8 s with O_DSYNC and 0.7 s written plainly and then flushed by one syncfs
 * (1.15 s with an fdatasync each). Larger chunks keep O_DSYNC, which costs them little.
 *
 * The hub's small root files are flushed the same way (src/sync/root-file-worker.js). A syncfs waits for every dirty
 * page of the file system: when first tried there, the root writer's large files, then written through the page cache,
 * made each shared flush wait for them (a push took 16.1-17.3 s instead of 13.7-13.9 s). They are written around the
 * page cache now (store/direct-io.ts).
 */
export const GROUP_SYNC_BYTES = 256 * 1024;

export { SyncFsUnavailable, syncFileSystem } from './syncfs-helper.js';
