import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { hasGrant, namespaceOfAlertKey, namespaceOfJobId, requireInNamespace, type Caller } from "../../src/auth/grants.js";
import { digestOf, newSecret } from "../../src/auth/secret.js";
import { expiredTokens, type StoredToken } from "../../src/auth/token-store.js";
import { TokenTable, type DynamicTokens } from "../../src/common/auth.js";
import { ForbiddenError, UnauthorizedError } from "../../src/common/errors.js";

const bearer = (t: string) => `Bearer ${t}`;

describe("roles and grants", () => {
  it("gives an agent token report and fetch only", () => {
    const agent: Caller = { name: "agents", role: "agent", namespaces: "*" };
    assert.deepEqual(
      (["read", "submit", "admin", "report", "fetch", "control"] as const).filter((g) => hasGrant(agent, g)),
      ["report", "fetch"],
    );
  });

  it("gives a manager token control over agents but no submit or admin", () => {
    const m: Caller = { name: "managers", role: "manager", namespaces: "*" };
    assert.ok(hasGrant(m, "control"));
    assert.ok(!hasGrant(m, "submit") && !hasGrant(m, "admin") && !hasGrant(m, "report"));
  });

  it("limits a namespaced token to its namespaces, naming the token and what it lacks", () => {
    const a: Caller = { name: "team-a", role: "submit", namespaces: ["a"] };
    requireInNamespace(a, "submit", "a");
    assert.throws(() => requireInNamespace(a, "read", "b"), (e) => e instanceof ForbiddenError && /team-a/.test(e.message) && /read on namespace "b"/.test(e.message));
    assert.throws(() => requireInNamespace(a, "admin", "a"), /lacks admin/);
  });

  it("reads the namespace of job ids and of task alert keys", () => {
    assert.equal(namespaceOfJobId("web"), "default");
    assert.equal(namespaceOfJobId("team-a:web"), "team-a");
    assert.equal(namespaceOfAlertKey("task-failed:web/0:3"), "default");
    assert.equal(namespaceOfAlertKey("task-failed:team-a:web/12:3"), "team-a");
    assert.equal(namespaceOfAlertKey("node-lost:agent-1:1700000000000"), undefined);
    assert.equal(namespaceOfAlertKey("manager-failover:4"), undefined);
  });
});

describe("TokenTable", () => {
  it("accepts config tokens by secret or by digest alone", () => {
    const admin = newSecret();
    const manager = newSecret();
    const t = new TokenTable(admin, [{ name: "managers", role: "manager", sha256: digestOf(manager) }]);
    assert.equal(t.authorize(bearer(admin), "admin").name, "cluster");
    assert.equal(t.authorize(bearer(manager), "control").name, "managers");
    assert.throws(() => t.authorize(bearer(manager), "submit"), /token "managers" \(role manager\) lacks submit/);
    assert.throws(() => t.authorize(bearer(newSecret()), "read"), UnauthorizedError);
    assert.throws(() => t.authorize(undefined, "read"), UnauthorizedError);
  });

  it("holds no admin token when given none (agents with their own credential)", () => {
    const t = new TokenTable(undefined, []);
    assert.throws(() => t.authorize(bearer(newSecret()), "read"), UnauthorizedError);
  });

  it("asks the store once more for an unknown secret, and refuses expired tokens", async () => {
    const secret = newSecret();
    let known: Caller | undefined;
    let refreshes = 0;
    const store: DynamicTokens = {
      lookup: (d) => (d === digestOf(secret) ? known : undefined),
      refresh: async () => {
        refreshes++;
        known = { name: "late", role: "read", namespaces: ["a"] };
      },
    };
    const t = new TokenTable(newSecret());
    t.useDynamic(store);
    assert.throws(() => t.authorize(bearer(secret), "read"), UnauthorizedError, "memory only: not known yet");
    assert.equal((await t.identifyFresh(bearer(secret))).name, "late");
    assert.equal(refreshes, 1);
    known = { name: "old", role: "read", namespaces: ["a"], expiresAt: Date.now() - 1 };
    await assert.rejects(t.identifyFresh(bearer(secret)), /token "old" expired/);
  });
});

describe("expired tokens' retention", () => {
  const token = (name: string, expiresAt?: number): StoredToken => ({ name, role: "read", namespaces: ["a"], sha256: "0".repeat(64), createdAt: 0, createdBy: "cluster", ...(expiresAt !== undefined ? { expiresAt } : {}) });
  it("removes a token only once it has been expired for the whole retention; tokens without expiry stay", () => {
    const tokens = [token("forever"), token("fresh", 10_000), token("just-expired", 9_000), token("long-gone", 1_000), token("on-the-edge", 5_000)];
    assert.deepEqual(expiredTokens(tokens, 10_000, 5_000), ["long-gone", "on-the-edge"]);
    assert.deepEqual(expiredTokens(tokens, 10_000, 60_000), []);
  });
});
