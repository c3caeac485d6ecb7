import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { StaleEpochError } from "../src/common/errors.js";

/**
 * The agent's side of fencing: the highest primary epoch it has seen, kept in
 * a file across restarts. Anything from a primary with a lower epoch is
 * refused.
 */
export class EpochFence {
  private max = 0;

  constructor(private readonly file: string) {}

  /** Reads the persisted epoch (0 when there is none or it is unreadable). */
  load(): void {
    try {
      this.max = Number(readFileSync(this.file, "utf8")) || 0;
    } catch {
      this.max = 0;
    }
  }

  get highest(): number {
    return this.max;
  }

  /** Refuses anything from a primary older than one already seen. */
  admit(epoch: number): void {
    if (epoch < this.max) throw new StaleEpochError(epoch, this.max);
    if (epoch > this.max) this.note(epoch);
  }

  /** Records an epoch seen in ZooKeeper (persisted before it counts). */
  note(epoch: number): void {
    if (epoch <= this.max) return;
    this.max = epoch;
    writeFileSync(this.file + ".tmp", String(epoch));
    renameSync(this.file + ".tmp", this.file);
  }
}
