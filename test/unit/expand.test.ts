/**
 * Job expansion, specified: the task records live jobs still lack, bounded
 * per tick, and none for jobs the caller holds back.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { Job, TaskInstance } from "../../src/common/types.js";
import { tasksToCreate, type ExpandView } from "../../src/manager/primary/expand.js";
import { makeSpec } from "./scheduler-harness.js";

const NOW = 1_000;

function jobOf(name: string, instances: number): Job {
  return { id: name, spec: makeSpec(name, { instances, type: "batch" }), source: "", status: "pending", desired: "run", submittedAt: 0, updatedAt: 0 };
}

function viewOf(jobs: Job[], tasks: TaskInstance[] = []): ExpandView {
  const of = (id: string) => tasks.filter((t) => t.jobId === id);
  return { jobs: new Map(jobs.map((j) => [j.id, j])), tasksOf: of, taskCount: (id) => of(id).length };
}

describe("expanding jobs", () => {
  test("creates every missing instance of each live job", () => {
    const created = tasksToCreate(viewOf([jobOf("a", 3), jobOf("b", 2)]), NOW);
    assert.deepEqual(created.map((t) => [t.id, t.state]), [["a/0", "pending"], ["a/1", "pending"], ["a/2", "pending"], ["b/0", "pending"], ["b/1", "pending"]]);
  });

  test("creates at most `max` records; the next expansion creates the rest", () => {
    const jobs = [jobOf("a", 3), jobOf("b", 2)];
    const first = tasksToCreate(viewOf(jobs), NOW, { max: 4 });
    assert.deepEqual(first.map((t) => t.id), ["a/0", "a/1", "a/2", "b/0"]);
    const rest = tasksToCreate(viewOf(jobs, first), NOW, { max: 4 });
    assert.deepEqual(rest.map((t) => t.id), ["b/1"]);
  });

  test("creates nothing for jobs `skip` names", () => {
    const created = tasksToCreate(viewOf([jobOf("a", 2), jobOf("held", 2)]), NOW, { skip: (job) => job.id === "held" });
    assert.deepEqual(created.map((t) => t.id), ["a/0", "a/1"]);
  });
});
