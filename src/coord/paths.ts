/** The znode layout under the cluster root (docs/architecture.md, "ZooKeeper layout"). One place, so nobody spells a path twice. */
export function zpaths(root: string) {
  return {
    root,
    election: `${root}/election`,
    leader: `${root}/leader`,
    epoch: `${root}/epoch`,
    agents: `${root}/agents`,
    agent: (id: string) => `${root}/agents/${id}`,
    nodes: `${root}/nodes`,
    node: (id: string) => `${root}/nodes/${id}`,
    jobs: `${root}/jobs`,
    job: (jobId: string) => `${root}/jobs/${encodeURIComponent(jobId)}`,
    tasks: (jobId: string) => `${root}/jobs/${encodeURIComponent(jobId)}/tasks`,
    /** Task records `k*TASKS_PER_CHUNK` to `(k+1)*TASKS_PER_CHUNK - 1` of a job, in one znode (store/chunks.ts). */
    taskChunk: (jobId: string, k: number) => `${root}/jobs/${encodeURIComponent(jobId)}/tasks/c${k}`,
    /** One task record per znode: the layout before chunks, read, and moved into chunks by the primary, on upgrade (state-store.ts). */
    legacyTask: (jobId: string, index: number) => `${root}/jobs/${encodeURIComponent(jobId)}/tasks/${index}`,
    packages: `${root}/packages`,
    packageName: (name: string) => `${root}/packages/${name}`,
    packageVersion: (name: string, version: string) => `${root}/packages/${name}/${version}`,
    naming: `${root}/naming`,
    alerts: `${root}/alerts`,
    idempotency: `${root}/idempotency`,
    idempotencyKey: (id: string) => `${root}/idempotency/${id}`,
    workflows: `${root}/workflows`,
    workflow: (id: string) => `${root}/workflows/${encodeURIComponent(id)}`,
    versions: `${root}/versions`,
    jobVersions: (jobId: string) => `${root}/versions/${encodeURIComponent(jobId)}`,
  };
}
export type ZPaths = ReturnType<typeof zpaths>;
