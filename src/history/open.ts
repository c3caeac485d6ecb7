import type { HistoryConfig } from "../common/config.js";
import { openEmbedded } from "./embedded.js";
import { openPostgres } from "./postgres.js";
import type { SqlDatabase } from "./sql.js";

/** The database `manager.history` names, open and reachable (not yet migrated: see `HistoryStore.open`). */
export function openHistoryDatabase(c: HistoryConfig): Promise<SqlDatabase> {
  return c.engine === "embedded" ? openEmbedded(c.dir) : openPostgres(c);
}
