import type { TaskInstance } from "../../common/types.js";

/** Tasks grouped by a key (a node, a desired/recorded state), each group by task id. */
export class TaskGroups {
  private readonly groups = new Map<string, Map<string, TaskInstance>>();

  add(key: string | undefined, t: TaskInstance): void {
    if (key === undefined) return;
    let g = this.groups.get(key);
    if (!g) this.groups.set(key, (g = new Map()));
    g.set(t.id, t);
  }

  remove(key: string | undefined, t: TaskInstance): void {
    if (key === undefined) return;
    const g = this.groups.get(key);
    if (g?.get(t.id) !== t) return;
    g.delete(t.id);
    if (g.size === 0) this.groups.delete(key);
  }

  get(key: string): Iterable<TaskInstance> {
    return this.groups.get(key)?.values() ?? [];
  }

  keys(): Iterable<string> {
    return this.groups.keys();
  }
}
