import type { Scorer } from "../chain.js";

export const SCORER_PACKAGE_CACHED = "package-cached";

/**
 * 1 when the node already caches the task's package, else 0 (only for tasks
 * with a package): saves a download and a start delay. The cluster index
 * knows per digest which nodes cache it.
 */
export const packageCached: Scorer = {
  name: SCORER_PACKAGE_CACHED,
  forClass(cls) {
    const holders = cls.packageCached;
    if (cls.packageDigest === undefined || holders === undefined) return undefined;
    return (node) => holders[node] as number;
  },
};
