/** `resources.devices:` device instances a task needs (GPUs and the like), each by name, count and constraints on the instance's attributes. */
import { DEVICE_NAME_RE, type DeviceRequest } from "../../types.js";
import type { Checker } from "../checks.js";
import { describe } from "../describe.js";
import type { Path } from "../issues.js";
import { LIMITS, SCHEMA_KEYS } from "../schema.js";
import { checkConstraints } from "./constraints.js";

export function checkDevices(c: Checker, v: unknown, path: Path): DeviceRequest[] {
  const items = c.list(v, path, "[{ name: nvidia/gpu, count: 1 }]");
  if (!items) return [];
  const out: DeviceRequest[] = [];
  items.forEach((item, i) => {
    const s = c.section(item, [...path, i], SCHEMA_KEYS.device);
    if (!s) return;
    const nameV = s.required("name");
    let name = nameV === undefined ? undefined : c.string(nameV, s.at("name"));
    if (name !== undefined && !DEVICE_NAME_RE.test(name)) name = c.add(s.at("name"), `${describe(name)} is not a device name: write vendor/type, e.g. nvidia/gpu`);
    const countV = s.get("count");
    const count = countV === undefined ? 1 : c.int(countV, s.at("count"), 1, LIMITS.maxDeviceCount);
    const consV = s.get("constraints");
    const constraints = consV === undefined ? [] : checkConstraints(c, consV, s.at("constraints"));
    if (name !== undefined && count !== undefined) out.push({ name, count, constraints });
  });
  return out;
}
