import type { Endpoint } from "./layout.js";

export type PickStrategy = "round-robin" | "random";

/** The part of a cached name picking reads and advances. */
export interface Pickable {
  endpoints: Endpoint[];
  /** Round-robin position, advanced by each round-robin pick. */
  rr: number;
}

/** One endpoint of `from`, or undefined when it has none. */
export function pickEndpoint(from: Pickable, strategy: PickStrategy): Endpoint | undefined {
  const eps = from.endpoints;
  if (eps.length === 0) return undefined;
  if (strategy === "random") return eps[Math.floor(Math.random() * eps.length)];
  const ep = eps[from.rr % eps.length];
  from.rr = (from.rr + 1) % 1_000_000_007;
  return ep;
}
