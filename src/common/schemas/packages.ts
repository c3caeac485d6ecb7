import { z } from "zod";

/**
 * A package registry entry (`<root>/packages/<name>/<version>`): the blob a
 * `name@version` stands for. Records of older writers hold only the digest;
 * their size and push time read as 0.
 */
export const PackageRecordSchema = z.object({
  digest: z.custom<`sha256:${string}`>((v) => typeof v === "string" && /^sha256:[0-9a-f]{64}$/.test(v), "not a sha256 digest"),
  size: z.number().catch(0),
  pushedAt: z.number().catch(0),
});
