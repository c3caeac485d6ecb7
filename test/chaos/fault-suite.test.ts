import { faultSuite } from "./fault-suite.js";

// `npm run test:chaos`: the full fault suite, with a storm of 1,000 submissions.
faultSuite("full", { storm: 1000, stormConcurrency: 8, streamMs: 5000 });
