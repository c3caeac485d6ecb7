/** The workflow's graph: cycles and layers (depth from the roots), over nodes known by name. */

export interface GraphNode {
  name: string;
  after: readonly string[];
}

/**
 * A cycle, as the names along it with the first repeated at the end
 * (`a → b → a`), or undefined. Edges to unknown names are ignored (reported
 * on their own). Iterative, so a long chain cannot overflow the stack.
 */
export function findCycle(nodes: readonly GraphNode[]): string[] | undefined {
  const parents = new Map(nodes.map((n) => [n.name, n.after]));
  const state = new Map<string, "open" | "done">();
  for (const start of nodes) {
    if (state.has(start.name)) continue;
    const stack: { name: string; next: number }[] = [{ name: start.name, next: 0 }];
    state.set(start.name, "open");
    while (stack.length) {
      const top = stack[stack.length - 1]!;
      const after = parents.get(top.name) ?? [];
      if (top.next >= after.length) {
        state.set(top.name, "done");
        stack.pop();
        continue;
      }
      const p = after[top.next++]!;
      if (!parents.has(p)) continue;
      const s = state.get(p);
      if (s === "open") {
        const from = stack.findIndex((f) => f.name === p);
        // Walked child → parent; read in the direction work flows (parent before child).
        return [...stack.slice(from).map((f) => f.name), p].reverse();
      }
      if (s === undefined) {
        state.set(p, "open");
        stack.push({ name: p, next: 0 });
      }
    }
  }
  return undefined;
}

/** Each node's layer: 0 for roots, else one more than its deepest parent (the graph must be acyclic). */
export function layersOf(nodes: readonly GraphNode[]): Map<string, number> {
  const byName = new Map(nodes.map((n) => [n.name, n]));
  const layer = new Map<string, number>();
  const visit = (name: string): number => {
    const known = layer.get(name);
    if (known !== undefined) return known;
    const stack = [name];
    while (stack.length) {
      const cur = stack[stack.length - 1]!;
      const pending = (byName.get(cur)?.after ?? []).filter((p) => byName.has(p) && !layer.has(p));
      if (pending.length) {
        stack.push(...pending);
        continue;
      }
      stack.pop();
      layer.set(cur, Math.max(-1, ...(byName.get(cur)?.after ?? []).map((p) => layer.get(p) ?? -1)) + 1);
    }
    return layer.get(name)!;
  };
  for (const n of nodes) visit(n.name);
  return layer;
}

/** Nodes in an order where every parent comes before its children (ties keep file order). */
export function topologicalOrder<T extends GraphNode>(nodes: readonly T[]): T[] {
  const layer = layersOf(nodes);
  return nodes
    .map((n, i) => ({ n, i }))
    .sort((a, b) => layer.get(a.n.name)! - layer.get(b.n.name)! || a.i - b.i)
    .map((x) => x.n);
}
