/**
 * ZooKeeper for Torca, one concern per module under zk/: the native binding
 * and its codes (native.ts), opening handles (handle.ts), path rules
 * (paths.ts), watches kept across handles (watches.ts), the session state
 * machine (session.ts) and the znode API on it (znodes.ts). Keeping a session
 * across expiries is session-keeper.ts.
 */
export { ZK, type CreateMode, type SessionCredentials, type WatchEvent, type Watcher, type ZkStat } from "./zk/native.js";
export { invalidPathReason } from "./zk/paths.js";
export { defaultConnectTimeoutMs, type ZkOperationObserver, type ZkOptions, type ZkSessionEvents } from "./zk/session.js";
export { isZkCode, ZkSession } from "./zk/znodes.js";
