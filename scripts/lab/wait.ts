// Waiting for what happens on its own (a laptop's init, a rollback job, a listener): poll with a
// deadline. A fixed sleep before an assertion is a guess that load outlasts (CI once failed on a
// rollback job that finished "too late" with three lab files sharing two cores:
// docs/performance.md, "Tools and the harness").
import { setTimeout as sleep } from "node:timers/promises";

export { sleep };

/** Polls `check` every `every` ms until it holds; fails naming `what` after `ms`. */
export async function waitFor(what: string, ms: number, check: () => boolean | Promise<boolean>, every = 20): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await sleep(every);
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}
