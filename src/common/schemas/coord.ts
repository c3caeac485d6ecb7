import { z } from "zod";

/**
 * Schemas of the coordination records: what a manager publishes to run for
 * and hold the primary role, the per-node admin state the primary writes, and
 * the session credentials an agent keeps to resume its session.
 */

/** A manager running for primary (`<root>/election/n_…`). */
export const CandidateSchema = z.object({ id: z.string().min(1), url: z.string().min(1) }).passthrough();

/** The primary (`<root>/leader`, ephemeral): the candidate, its epoch and when it took over. */
export const LeaderInfoSchema = CandidateSchema.extend({ epoch: z.number().int().min(1), since: z.number() });

/** Admin state of a node (`<root>/nodes/<id>`), set through the API. */
export const NodeAdminSchema = z
  .object({
    drain: z.boolean(),
    /** Declared lost by the primary (its tasks migrated); applies until an ad newer than `adCzxid` (the last one the primary saw) appears. */
    lost: z.object({ at: z.number(), adCzxid: z.number() }).optional(),
  })
  .passthrough();

/** A ZooKeeper session's credentials as the binding gives them: id in hex (no 0x), password as 32 hex digits. */
export const SessionCredentialsSchema = z.object({ clientId: z.string().regex(/^[0-9a-f]+$/i), password: z.string().regex(/^[0-9a-f]*$/i) });
export type SessionCredentials = z.infer<typeof SessionCredentialsSchema>;
