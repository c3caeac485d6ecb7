import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import pg from "pg";
import { startPostgres } from "../harness/postgres.js";

test("the PostgreSQL harness serves a fresh database on loopback, then leaves no process and no directory behind", async () => {
  const server = await startPostgres();
  let stopped = false;
  try {
    const url = await server.createDatabase("harness check");
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    const [row] = (await client.query<{ db: string; addr: string }>("SELECT current_database() AS db, inet_server_addr()::text AS addr")).rows;
    await client.end();
    assert.deepEqual(row, { db: "harness check", addr: "127.0.0.1/32" });

    await server.stop();
    stopped = true;
    assert.throws(() => process.kill(server.pid, 0), { code: "ESRCH" });
    assert.equal(existsSync(server.dir), false);
  } finally {
    if (!stopped) await server.stop();
  }
});
