import type { NodeInfo } from "../../../common/types.js";
import type { Checker } from "../chain.js";
import { FEASIBLE } from "../reasons.js";

/** The node's agent must offer the task's isolation; with no preference, LXC or plain processes will do. */
export const driver: Checker = {
  name: "driver",
  static: true,
  preemptible: false,
  forClass(cls, { state, reasons }) {
    const origin = { checker: this.name };
    const isolation = cls.spec.isolation;
    const ok: (node: NodeInfo) => boolean =
      isolation === "lxc" ? (n) => n.drivers.lxc : isolation === "process" ? (n) => n.drivers.process : (n) => n.drivers.lxc || n.drivers.process;
    const reason = reasons.code(isolation === undefined ? "no task driver available" : `driver ${isolation} unavailable`, origin);
    return { check: (node) => (ok(state.nodes[node] as NodeInfo) ? FEASIBLE : reason) };
  },
};
