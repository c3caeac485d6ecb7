import type { Checker } from "../chain.js";
import { FEASIBLE } from "../reasons.js";

/** Every static port the task asks for must be free on the node (held by no allocation or reservation). */
export const staticPorts: Checker = {
  name: "static-ports",
  static: false,
  preemptible: true,
  forClass(cls, { state, reasons }) {
    const ports = cls.staticPorts;
    if (ports.length === 0) return undefined;
    const inUse = ports.map((port) => reasons.code(`static port ${port} in use`, { checker: this.name, dimension: `port ${port}` }));
    return {
      check: (node) => {
        for (let p = 0; p < ports.length; p++) {
          if (state.portHolder(node, ports[p] as number) !== undefined) return inUse[p] as number;
        }
        return FEASIBLE;
      },
    };
  },
};
