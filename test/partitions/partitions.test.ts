import { partitionSuite } from "./partition-suite.js";

// `npm run test:partitions`: every case, in order, on one cell.
partitionSuite("full", {
  cases: ["primary-agents", "agent-managers", "client-primary", "zookeeper-server", "primary-zookeeper", "zookeeper-down", "agent-zookeeper"],
});
