import { faultSuite } from "../chaos/fault-suite.js";

// The fault suite's short run inside `npm test`: the same cases, a storm of 100 submissions.
faultSuite("short", { storm: 100, stormConcurrency: 4, streamMs: 3000 });
