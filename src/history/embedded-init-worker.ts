/**
 * Creates an embedded history database (PGlite's initdb) in a worker thread:
 * it takes seconds of CPU, and on the manager's event loop it would starve the
 * ZooKeeper session of its pings (a primary lost its session to it).
 */
import { workerData } from "node:worker_threads";
import { PGlite } from "@electric-sql/pglite";

const { dataDir } = workerData as { dataDir: string };
const db = await PGlite.create({ dataDir });
await db.close();
