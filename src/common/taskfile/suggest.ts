/** "Did you mean": the closest allowed word to a misspelt key or value, or the name other systems use for it. */

/** Names people reach for from other systems; suggested when the key is allowed where it was written. */
const ALIASES: Record<string, string> = {
  cmd: "command", args: "command", argv: "command", exec: "command",
  replicas: "instances", count: "instances",
  image: "package", pkg: "package",
  environment: "env",
  cpus: "cpu", mem: "memory",
  cron: "schedule",
  healthcheck: "check", health: "check",
  port: "static",
  retries: "attempts",
};

/** Optimal string alignment distance: a transposition (`instnaces`) counts as one edit. */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/** The closest candidate if it is plausibly a typo (about one edit per three letters). */
export function suggest(word: string, candidates: readonly string[]): string | undefined {
  const alias = ALIASES[word.toLowerCase()];
  if (alias !== undefined && candidates.includes(alias)) return alias;
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const dist = editDistance(word.toLowerCase(), c.toLowerCase());
    if (dist < bestDistance) {
      best = c;
      bestDistance = dist;
    }
  }
  const limit = Math.min(3, Math.max(1, Math.floor(word.length / 3)));
  if (bestDistance <= limit) return best;
  // Another form of the same word (`failure` for `failed`) is far in edits but shares a stem.
  const stem = word.toLowerCase().slice(0, 4);
  const sameStem = stem.length === 4 ? candidates.filter((c) => c.toLowerCase().startsWith(stem)) : [];
  return sameStem.length === 1 ? sameStem[0] : undefined;
}
