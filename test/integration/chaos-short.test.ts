import { faultSuite } from "../chaos/fault-suite.js";

// The fault suite inside `npm test`: cases 1-4 with a storm of 100 submissions (the ZooKeeper
// server cases run in `npm run test:chaos`, see FaultScale.zookeeperFaults).
faultSuite("short", { storm: 100, stormConcurrency: 4, streamMs: 3000, zookeeperFaults: false });
