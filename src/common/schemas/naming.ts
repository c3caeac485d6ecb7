import { z } from "zod";

/** A host port: 1-65535. */
const PortSchema = z.number().int().min(1).max(65535);

/**
 * An endpoint znode's data (`<root>/naming/<ns>/<service>/<task>`). An
 * attempt or registration time that is missing or not a number reads as 0:
 * such a record loses any tie to a newer one.
 */
export const EndpointRecordSchema = z.object({
  host: z.string().min(1),
  port: PortSchema,
  ports: z.record(PortSchema),
  task: z.string(),
  node: z.string(),
  job: z.string(),
  attempt: z.number().int().catch(0),
  registeredAt: z.number().catch(0),
});
