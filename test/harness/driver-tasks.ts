import type { Driver, TaskHandle } from "../../agent/driver/driver.js";

/** After a driver test: stops and removes every task it started; one failure does not keep the others running. */
export async function stopAndDestroyAll(driver: Driver, started: readonly TaskHandle[]): Promise<void> {
  for (const h of started) {
    try {
      await driver.stop(h, 0);
      await driver.destroy(h);
    } catch (e) {
      console.error(`cleanup of ${h.taskDir} failed:`, e);
    }
  }
}
