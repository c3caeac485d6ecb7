import type { NodeInfo } from "../../../common/types.js";
import type { Scorer } from "../chain.js";

export const SCORER_PACKAGE_CACHED = "package-cached";

/**
 * 1 when the node already caches the task's package, else 0 (only for tasks
 * with a package): saves a download and a start delay. The answer is
 * memoized per node and digest, shared by every class with that package.
 */
export const packageCached: Scorer = {
  name: SCORER_PACKAGE_CACHED,
  forClass(cls, { state }) {
    const digest = cls.packageDigest;
    const memo = cls.packageCached;
    if (digest === undefined || memo === undefined) return undefined;
    return (node) => {
      let known = memo[node] as number;
      if (known === 0) {
        known = (state.nodes[node] as NodeInfo).cachedPackages.includes(digest) ? 1 : 2;
        memo[node] = known;
      }
      return known === 1 ? 1 : 0;
    };
  },
};
