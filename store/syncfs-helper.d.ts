// Types of store/syncfs-helper.js (plain JavaScript: the root-file worker thread loads it too).
export declare class SyncFsUnavailable extends Error {}
export declare function syncFileSystem(dir: string): Promise<void>;
