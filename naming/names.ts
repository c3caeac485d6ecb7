/**
 * Service names (docs/contracts.md, "Naming"): a dotted name such as
 * `web.frontend` lives in namespace `default`; `ns/web.frontend` names it in
 * namespace `ns`. The canonical text omits the default namespace, so both
 * spellings of a default-namespace name are one cache entry and one key.
 */

export const DEFAULT_NAMESPACE = "default";

/** Same rules as the task file's `namespace` and `service.name` (src/common/taskfile/rules/). */
const NAMESPACE_RE = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const SERVICE_RE = /^[a-z0-9-]+(?:\.[a-z0-9-]+)*$/;

export interface ServiceName {
  namespace: string;
  /** The dotted service name, e.g. `web.frontend`. */
  service: string;
  /** Canonical text: `web.frontend` in the default namespace, else `ns/web.frontend`. */
  key: string;
}

export class InvalidNameError extends Error {
  constructor(readonly input: string, reason: string) {
    super(`invalid service name ${JSON.stringify(input)}: ${reason}`);
    this.name = "InvalidNameError";
  }
}

export function serviceName(namespace: string, service: string): ServiceName {
  if (!NAMESPACE_RE.test(namespace)) throw new InvalidNameError(`${namespace}/${service}`, `namespace must be lowercase letters, digits and "-" (at most 63)`);
  if (!SERVICE_RE.test(service) || service.length > 253) {
    throw new InvalidNameError(service, `use lowercase letters, digits and "-", in dot-separated parts (e.g. web.frontend)`);
  }
  return { namespace, service, key: namespace === DEFAULT_NAMESPACE ? service : `${namespace}/${service}` };
}

/** Parses `web.frontend` or `ns/web.frontend`. Throws InvalidNameError. */
export function parseServiceName(input: string): ServiceName {
  const text = input.trim();
  const slash = text.indexOf("/");
  if (slash < 0) return serviceName(DEFAULT_NAMESPACE, text);
  if (text.indexOf("/", slash + 1) >= 0) throw new InvalidNameError(input, `at most one "/" (namespace/service)`);
  return serviceName(text.slice(0, slash), text.slice(slash + 1));
}
