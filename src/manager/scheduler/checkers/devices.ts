/**
 * `resources.devices`: the node must have, free, as many instances of each
 * requested device as asked, among those whose attributes meet the request's
 * constraints (job-constraint semantics: a missing attribute fails). The
 * instances themselves are chosen when the task is bound (`assignDevices`).
 *
 * Preemptible: evicting lower-priority tasks that hold matching instances
 * frees them (preempt.ts chooses those victims first).
 */
import { TorcaError } from "../../../common/errors.js";
import type { DeviceAssignment, DeviceRequest } from "../../../common/types.js";
import type { Checker } from "../chain.js";
import type { ClusterState } from "../cluster-state.js";
import type { CompiledDeviceRequest, DeviceShortfall } from "../devices-state.js";
import { FEASIBLE, type ReasonTable } from "../reasons.js";
import type { TaskClass } from "../task-class.js";
import { constraintMatcher, constraintText, type RegexpCache } from "./constraints.js";

/** Compiled requests per class: the checker compiles them, the binding of a placement uses them. */
const compiledByClass = new WeakMap<TaskClass, readonly CompiledDeviceRequest[]>();

function compileRequest(request: DeviceRequest, regexps: RegexpCache): CompiledDeviceRequest {
  const tests = request.constraints.map((c) => ({ attribute: c.attribute, matches: constraintMatcher(c, regexps) ?? (() => false) }));
  return {
    name: request.name,
    count: request.count,
    matches: (attributes) => tests.every((t) => Object.hasOwn(attributes, t.attribute) && t.matches(attributes[t.attribute] as string)),
  };
}

function wantedText(request: DeviceRequest): string {
  const where = request.constraints.length === 0 ? "" : ` with ${request.constraints.map(constraintText).join(" and ")}`;
  return `${request.name}${where}`;
}

export const devices: Checker = {
  name: "devices",
  static: false,
  preemptible: true,
  forClass(cls, { state, reasons, regexps }) {
    const requests = cls.spec.resources.devices;
    if (requests === undefined || requests.length === 0) return undefined;
    const compiled = requests.map((r) => compileRequest(r, regexps));
    compiledByClass.set(cls, compiled);
    const deviceState = state.devices;
    if (deviceState === undefined) {
      const missing = reasons.code(`devices: no ${(requests[0] as DeviceRequest).name}`, { checker: this.name });
      return { check: () => missing };
    }
    return {
      check: (node) => {
        const choice = deviceState.choose(node, compiled);
        return choice.ok ? FEASIBLE : shortfallReason(choice, requests, reasons);
      },
    };
  },
};

function shortfallReason(choice: DeviceShortfall, requests: readonly DeviceRequest[], reasons: ReasonTable): number {
  const request = requests[choice.request] as DeviceRequest;
  const origin = { checker: devices.name };
  switch (choice.kind) {
    case "missing":
      return reasons.code(`devices: no ${request.name}`, origin);
    case "mismatch":
      return reasons.code(`devices: ${choice.matching} ${wantedText(request)}, ${request.count} wanted`, origin);
    case "busy":
      return reasons.code(`devices: ${wantedText(request)} ${choice.free} of ${request.count} free`, { ...origin, dimension: `device ${request.name}` });
  }
}

/** The instances a placement of `cls` on `node` takes; undefined when the class asks for no devices. */
export function assignDevices(cls: TaskClass, state: ClusterState, node: number): DeviceAssignment[] | undefined {
  const compiled = compiledByClass.get(cls);
  if (compiled === undefined) return undefined;
  const choice = state.devices?.choose(node, compiled);
  // The class's chain passed this node, devices included, just before binding.
  if (choice === undefined || !choice.ok) throw new TorcaError("internal", `scheduler: node ${state.nodes[node]?.id} passed the devices check but has no devices for ${cls.jobId}`);
  return choice.devices;
}

/** The class's compiled device requests; undefined when it asks for none. */
export function deviceRequestsOf(cls: TaskClass): readonly CompiledDeviceRequest[] | undefined {
  return compiledByClass.get(cls);
}
