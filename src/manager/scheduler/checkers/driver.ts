import type { Checker } from "../chain.js";
import { DRIVER_LXC, DRIVER_PROCESS } from "../cluster-state.js";
import { FEASIBLE } from "../reasons.js";

/** The node's agent must offer the task's isolation; with no preference, LXC or plain processes will do. */
export const driver: Checker = {
  name: "driver",
  static: true,
  preemptible: false,
  signature(cls) {
    return cls.spec.isolation ?? "";
  },
  forClass(cls, { state, reasons }) {
    const isolation = cls.spec.isolation;
    const wanted = isolation === "lxc" ? DRIVER_LXC : isolation === "process" ? DRIVER_PROCESS : DRIVER_LXC | DRIVER_PROCESS;
    const reason = reasons.code(isolation === undefined ? "no task driver available" : `driver ${isolation} unavailable`, { checker: this.name });
    const drivers = state.drivers;
    return { check: (node) => (((drivers[node] as number) & wanted) !== 0 ? FEASIBLE : reason) };
  },
};
