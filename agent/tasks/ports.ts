import { createServer } from "node:net";
import { UnplaceableError } from "../../src/common/errors.js";

/**
 * Dynamic host ports for tasks, from the agent's configured range. A port is
 * handed out only if nothing on the machine is bound to it right now.
 */
export class PortAllocator {
  private readonly taken = new Set<number>();
  private next: number;

  constructor(private readonly range: [number, number], private readonly host = "0.0.0.0") {
    this.next = range[0];
  }

  reserve(port: number): void {
    this.taken.add(port);
  }

  release(port: number): void {
    this.taken.delete(port);
  }

  async allocate(): Promise<number> {
    const size = this.range[1] - this.range[0] + 1;
    for (let i = 0; i < size; i++) {
      const p = this.next;
      this.next = p >= this.range[1] ? this.range[0] : p + 1;
      if (this.taken.has(p)) continue;
      if (await isFree(p, this.host)) {
        this.taken.add(p);
        return p;
      }
    }
    throw new UnplaceableError(`no free port in ${this.range[0]}-${this.range[1]}`);
  }
}

function isFree(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once("error", () => resolve(false));
    s.listen(port, host, () => s.close(() => resolve(true)));
  });
}
