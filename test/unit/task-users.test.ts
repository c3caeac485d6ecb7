import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { TaskUsers } from "../../agent/tasks/task-users.js";
import { ForbiddenError, UnavailableError } from "../../src/common/errors.js";
import type { TaskDispatch } from "../../src/common/protocol.js";
import { parseTaskFile } from "../../src/common/taskfile/index.js";

const spec = parseTaskFile("name: j\ntype: batch\ncommand: [/bin/true]\n");
const dispatch = (user?: "root"): TaskDispatch => ({ epoch: 1, taskId: "j/0", jobId: "j", index: 0, attempt: 1, spec: user ? { ...spec, user } : spec });
const pool = (o: { allowRootTasks?: boolean; switchUsers?: boolean; size?: number } = {}) =>
  new TaskUsers({ uids: { first: 70000, last: 70000 + (o.size ?? 3) - 1 }, allowRootTasks: o.allowRootTasks ?? false, nodeId: "n1", switchUsers: o.switchUsers ?? true });

describe("task users", () => {
  test("each task gets a uid of its own, its gid the same number; a full range refuses the next task", () => {
    const users = pool();
    assert.deepEqual([users.acquire(dispatch()), users.acquire(dispatch()), users.acquire(dispatch())], [
      { uid: 70000, gid: 70000 },
      { uid: 70001, gid: 70001 },
      { uid: 70002, gid: 70002 },
    ]);
    assert.throws(() => users.acquire(dispatch()), (e: unknown) => e instanceof UnavailableError && /no free task uid: all 3 of agent.taskUsers \(70000-70002\)/.test(e.message));
  });

  test("a released uid is the last one handed out again", () => {
    const users = pool();
    const a = users.acquire(dispatch())!;
    users.acquire(dispatch());
    users.release(a);
    assert.equal(users.acquire(dispatch())!.uid, 70002);
    assert.equal(users.acquire(dispatch())!.uid, 70000);
  });

  test("uids held by re-adopted tasks are not handed out; uids outside the range are ignored", () => {
    const users = pool();
    users.hold({ uid: 70000, gid: 70000 });
    users.hold({ uid: 0, gid: 0 });
    assert.equal(users.inUse, 1);
    assert.equal(users.acquire(dispatch())!.uid, 70001);
  });

  test("user: root only with allowRootTasks, and only on an agent running as root", () => {
    assert.throws(() => pool().acquire(dispatch("root")), (e: unknown) => e instanceof ForbiddenError && /asks for user root, and agent n1 does not run tasks as root \(agent.allowRootTasks is false\)/.test(e.message));
    assert.deepEqual(pool({ allowRootTasks: true }).acquire(dispatch("root")), { uid: 0, gid: 0 });
    assert.throws(() => pool({ allowRootTasks: true, switchUsers: false }).acquire(dispatch("root")), /does not run as root/);
  });

  test("an agent that cannot switch users runs tasks as itself", () => {
    assert.equal(pool({ switchUsers: false }).acquire(dispatch()), undefined);
  });
});
