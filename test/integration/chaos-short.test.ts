import { faultSuite } from "../chaos/fault-suite.js";

// The fault suite inside `npm test`: every case, with a storm of 100 submissions.
faultSuite("short", { storm: 100, stormConcurrency: 4, streamMs: 3000 });
