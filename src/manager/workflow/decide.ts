/**
 * What a workflow does next, as a pure function of its record (definition
 * and per-node progress), what became of the jobs of the nodes' current
 * phases, and the time. The primary's workflow phase (runner.ts) writes the
 * record it returns to ZooKeeper first and carries out the submissions and
 * kills after, so a primary that dies in between leaves a record that says
 * which job each active node should have: its successor submits only the
 * ones that do not exist, and never a job for a phase already over.
 *
 * One attempt of a node: PRE (if any), then the job, then POST (if any).
 * A PRE that fails fails the attempt (the job does not run). POST runs after
 * the job whatever its outcome (it sees it as TORCA_JOB_STATUS), and POST's
 * exit decides the attempt, as DAGMan's POST script does. A failed attempt
 * is retried while `retry` allows; a node that fails for good stops the
 * descendants whose `when` needs it to succeed: they are marked skipped
 * (not run), and the workflow fails once nothing else can run.
 */
import { topologicalOrder } from "./graph.js";
import { ACTIVE_NODE_STATES, FINAL_NODE_STATES, jobNameOf, type NodeRecord, type NodeStateName, type Phase, type WorkflowNodeDef, type WorkflowRecord } from "./types.js";

/** What became of the job of a node's current phase, for the submission `seq`. */
export interface Observation {
  seq: number;
  /** absent: no job of this submission exists; active: it exists and has not finished. */
  status: "absent" | "active" | "complete" | "failed";
}

export interface Submission {
  node: string;
  phase: Phase;
  /** The node's submission number: the job carries `${uid}-${seq}` as TORCA_WORKFLOW_RUN. */
  seq: number;
  attempt: number;
  /** The job's name (jobNameOf). */
  job: string;
}

export interface Decision {
  record: WorkflowRecord;
  /** True when the record differs from the one given (and must be written before anything else is done). */
  changed: boolean;
  submit: Submission[];
  /** Names of jobs to kill (their nodes were killed with the workflow). */
  kill: string[];
}

const PHASE_OF: Partial<Record<NodeStateName, Phase>> = { pre: "pre", running: "job", post: "post" };

export function phaseOf(state: NodeStateName): Phase | undefined {
  return PHASE_OF[state];
}

type Verdict = { run: true } | { run: false; skip?: string };

/**
 * Whether a waiting node may run, given its parents' states: `ok` needs every
 * parent to succeed, `failed` every parent to fail (Slurm's afternotok), and
 * `any` every parent to be over, however it ended. A node is skipped as soon
 * as the condition can no longer hold, without waiting for the other parents.
 */
export function verdictOf(node: WorkflowNodeDef, stateOf: (name: string) => NodeRecord): Verdict {
  const parents = node.after.map((p) => ({ name: p, state: stateOf(p).state }));
  const ended = (s: NodeStateName) => FINAL_NODE_STATES.has(s);
  const notRun = (p: { name: string; state: NodeStateName }) => `not run: parent ${p.name} ${p.state === "skipped" || p.state === "killed" ? "did not run" : p.state}`;
  if (node.when === "any") return parents.every((p) => ended(p.state)) ? { run: true } : { run: false };
  const wanted: NodeStateName = node.when === "ok" ? "succeeded" : "failed";
  const spoiler = parents.find((p) => ended(p.state) && p.state !== wanted);
  if (spoiler) return { run: false, skip: node.when === "ok" ? notRun(spoiler) : `not run: when: failed, and parent ${spoiler.name} ${spoiler.state === "succeeded" ? "succeeded" : "did not run"}` };
  return parents.every((p) => p.state === wanted) ? { run: true } : { run: false };
}

/** The workflow's next record and the jobs to submit and kill. */
export function decide(rec: WorkflowRecord, observed: Readonly<Record<string, Observation>>, now: number): Decision {
  if (rec.state !== "running") return { record: rec, changed: false, submit: [], kill: [] };
  const nodes: Record<string, NodeRecord> = { ...rec.nodes };
  let seq = rec.seq;
  let changed = false;
  const order = topologicalOrder(rec.def.nodes);
  const stateOf = (name: string): NodeRecord => nodes[name] ?? { state: "waiting", attempt: 0, seq: 0 };
  const set = (name: string, patch: Partial<NodeRecord>, drop: (keyof NodeRecord)[] = []) => {
    const next: NodeRecord = { ...stateOf(name), ...patch };
    for (const k of drop) delete next[k];
    nodes[name] = next;
    changed = true;
  };
  const kill: string[] = [];

  /** Starts the phase the node's state names, with a new submission number. */
  const enter = (def: WorkflowNodeDef, state: NodeStateName, patch: Partial<NodeRecord> = {}) => {
    const phase = phaseOf(state)!;
    set(def.name, { ...patch, state, seq: ++seq, job: jobNameOf(rec.def.name, def.name, phase) });
  };
  const startAttempt = (def: WorkflowNodeDef, attempt: number, patch: Partial<NodeRecord> = {}) => enter(def, def.pre ? "pre" : "running", { ...patch, attempt });
  const attemptFailed = (def: WorkflowNodeDef, why: string) => {
    const cur = stateOf(def.name);
    if (cur.attempt <= def.retry) return startAttempt(def, cur.attempt + 1, { reason: `attempt ${cur.attempt} failed (${why}); retrying` });
    set(def.name, { state: "failed", reason: `${why}${cur.attempt > 1 ? ` (after ${cur.attempt} attempts)` : ""}`, finishedAt: now });
  };

  if (rec.desired === "stop") {
    for (const def of order) {
      const cur = stateOf(def.name);
      if (ACTIVE_NODE_STATES.has(cur.state)) {
        const obs = observed[def.name];
        if (cur.job && obs?.seq === cur.seq && obs.status === "active") kill.push(cur.job);
        set(def.name, { state: "killed", reason: "killed with the workflow", finishedAt: now });
      } else if (cur.state === "waiting") set(def.name, { state: "killed", reason: "not run: the workflow was killed", finishedAt: now });
    }
  } else {
    // What finished since the last decision, parents before children.
    for (const def of order) {
      const cur = stateOf(def.name);
      const phase = phaseOf(cur.state);
      const obs = observed[def.name];
      if (!phase || !obs || obs.seq !== cur.seq || (obs.status !== "complete" && obs.status !== "failed")) continue;
      const ok = obs.status === "complete";
      if (phase === "pre") {
        if (ok) enter(def, "running");
        else attemptFailed(def, "PRE failed");
      } else if (phase === "job") {
        if (def.post) enter(def, "post", { jobStatus: obs.status });
        else if (ok) set(def.name, { state: "succeeded", jobStatus: "complete", finishedAt: now }, ["reason"]);
        else attemptFailed(def, "job failed");
      } else if (ok) set(def.name, { state: "succeeded", finishedAt: now }, ["reason"]);
      else attemptFailed(def, "POST failed");
    }
    // What may start now, within the throttle.
    let active = order.filter((d) => ACTIVE_NODE_STATES.has(stateOf(d.name).state)).length;
    for (const def of order) {
      const cur = stateOf(def.name);
      if (cur.state !== "waiting") continue;
      const v = verdictOf(def, stateOf);
      if (!v.run) {
        if (v.skip) set(def.name, { state: "skipped", reason: v.skip, finishedAt: now });
        continue;
      }
      const limit = rec.def.throttle;
      if (limit !== undefined && active >= limit) {
        const reason = `throttled: ${active} of at most ${limit} nodes active`;
        if (cur.reason !== reason) set(def.name, { reason });
        continue;
      }
      startAttempt(def, 1, { startedAt: now });
      set(def.name, {}, ["reason"]);
      active++;
    }
  }

  const submit: Submission[] = [];
  for (const def of order) {
    const cur = stateOf(def.name);
    const phase = phaseOf(cur.state);
    const obs = observed[def.name];
    if (phase && (!obs || obs.seq !== cur.seq || obs.status === "absent")) submit.push({ node: def.name, phase, seq: cur.seq, attempt: cur.attempt, job: jobNameOf(rec.def.name, def.name, phase) });
  }

  let record: WorkflowRecord = changed ? { ...rec, nodes, seq, updatedAt: now } : rec;
  const states = order.map((d) => stateOf(d.name).state);
  if (states.every((s) => FINAL_NODE_STATES.has(s))) {
    const state = rec.desired === "stop" ? "killed" : states.includes("failed") ? "failed" : "succeeded";
    record = { ...record, state, finishedAt: now, updatedAt: now };
    changed = true;
  }
  return { record, changed, submit, kill };
}

/** `resume`: rerun what did not succeed (a rescue DAG); refused unless the workflow is over. */
export function resumed(rec: WorkflowRecord, now: number): WorkflowRecord | string {
  if (rec.state === "running") return `workflow ${rec.def.name} is still running`;
  if (rec.state === "succeeded") return `workflow ${rec.def.name} succeeded: nothing to resume`;
  const nodes = Object.fromEntries(
    rec.def.nodes.map((d) => {
      const cur = rec.nodes[d.name] ?? { state: "waiting" as const, attempt: 0, seq: 0 };
      return [d.name, cur.state === "succeeded" ? cur : { state: "waiting" as const, attempt: 0, seq: cur.seq }];
    }),
  );
  const { finishedAt: _finishedAt, ...rest } = rec;
  return { ...rest, state: "running", desired: "run", nodes, resumes: rec.resumes + 1, updatedAt: now };
}

/** A new workflow's first record: every node waiting. */
export function newRecord(def: WorkflowRecord["def"], source: string, uid: string, now: number): WorkflowRecord {
  return {
    uid,
    def,
    source,
    state: "running",
    desired: "run",
    submittedAt: now,
    updatedAt: now,
    seq: 0,
    resumes: 0,
    nodes: Object.fromEntries(def.nodes.map((d) => [d.name, { state: "waiting" as const, attempt: 0, seq: 0 }])),
  };
}

/** Finished workflows whose retention ran out (the same window as finished jobs). */
export function expiredWorkflows(records: Iterable<WorkflowRecord>, now: number, terminalMs: number): WorkflowRecord[] {
  return [...records].filter((r) => r.state !== "running" && r.finishedAt !== undefined && now - r.finishedAt >= terminalMs);
}
