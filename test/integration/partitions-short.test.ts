import { partitionSuite } from "../partitions/partition-suite.js";

// The partition suite inside `npm test`: two fast cases (the rest run in `npm run test:partitions`).
partitionSuite("short", { cases: ["primary-agents", "client-primary"] });
