import { partitionSuite } from "./partition-suite.js";

// `npm run test:partitions`: every case, in order, on one cell.
partitionSuite("full", {
  cases: ["primary-agents", "agent-managers", "client-primary", "zookeeper-server", "primary-zookeeper", "zookeeper-down", "agent-zookeeper"],
  todo: {
    // Seen: the cut-off primary still claimed the primacy 17 s after the cut (it acknowledged and dispatched nothing).
    "primary-zookeeper": "needs the primary to step down when cut off from ZooKeeper past its session timeout (issue 20 item 1)",
    // Seen: an agent whose session expired while ZooKeeper restarted was lost at once and its steady task restarted (attempt 1 → 2).
    "zookeeper-down": "needs the disconnected grace (issue 20 item 1)",
    // Seen: the agent's node went "lost" at once and its steady task was started again elsewhere (attempt 1 → 2).
    "agent-zookeeper": "needs the disconnected grace (issue 20 item 1)",
  },
});
