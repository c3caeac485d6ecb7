import type { Scorer } from "../chain.js";

export const SCORER_JOB_ANTI_AFFINITY = "job-anti-affinity";

/**
 * -(instances of the job already on the node / job instances), clamped to
 * [-1, 0], so a job does not pile onto one machine.
 */
export const jobAntiAffinity: Scorer = {
  name: SCORER_JOB_ANTI_AFFINITY,
  forClass(cls) {
    const counts = cls.jobCounts;
    const instances = cls.instances;
    return (node) => {
      const colocated = counts.get(node);
      if (colocated === undefined || colocated === 0) return 0;
      return -Math.min(1, colocated / instances);
    };
  },
};
