// The host lock (components/sh/lib/base.sh state_lock) against the removal race: the last revert
// removes the lock file while another apply waits on it, and a third run creates a new file and
// locks that. The waiter then holds a lock on a file no longer at the path, which would let it run
// alongside the third; state_lock must notice and lock the new file instead. Control: the same
// runs with that check taken out do overlap. Runs on this machine in a temporary directory (flock
// and /proc only, no root).
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { readStackConfig, renderScript, requireValidConfig } from "../components/core";
import { waitFor } from "../scripts/lab/wait";

const dir = mkdtempSync(join(tmpdir(), "mptcp-lock-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const host = requireValidConfig(readStackConfig(join(__dirname, "..", "Pulumi.dev.yaml"))).hosts[0];

/** A script that takes the host lock (at a file under `run`), then runs `then`. */
function locked(run: string, then: string, opts: { noRecheck?: boolean } = {}): string {
  let s = renderScript({ host, title: "lock test", source: "t.sh", text: `state_lock\n${then}` })
    .replace(/^LOCK_FILE=.*$/m, `LOCK_FILE=${run}/lock`)
    .replace(/^STATE_DIR=.*$/m, `STATE_DIR=${run}/state`);
  if (opts.noRecheck) {
    const without = s.replace(/^\s*\[ -e \/proc\/self\/fd\/9 \] \|\| break$/m, "    break");
    if (without === s) throw new Error("state_lock's check of the locked file is not where this test expects it");
    s = without;
  }
  return s;
}

const sh = (script: string) => new Promise<number>((resolve) => spawn("sh", ["-c", script], { stdio: "ignore" }).on("close", (c) => resolve(c ?? -1)));

/** A holds the lock and removes the file (as the last revert does); B waits; C locks a new file; returns the order of B's and C's steps. */
async function race(name: string, opts: { noRecheck?: boolean } = {}): Promise<string[]> {
  const run = join(dir, name);
  const log = join(run, "log");
  await sh(`mkdir -p ${run}`);
  const a = sh(locked(run, `: > ${run}/a-holds; sleep 0.2; rm -f "$LOCK_FILE"; : > ${run}/a-removed; sleep 0.2`));
  await waitFor("A to hold the lock", 2000, () => existsSync(join(run, "a-holds")));
  const b = sh(locked(run, `echo B-start >> ${log}; sleep 0.2; echo B-end >> ${log}`, opts));
  await waitFor("A to remove the lock file", 2000, () => existsSync(join(run, "a-removed")));
  const c = sh(locked(run, `echo C-start >> ${log}; sleep 0.8; echo C-end >> ${log}`));
  expect(await Promise.all([a, b, c])).toEqual([0, 0, 0]);
  return readFileSync(log, "utf8").trim().split("\n");
}

describe("host lock", () => {
  it("a run waiting on a lock file that the last revert removed locks the new file: it never overlaps the run holding that one", async () => {
    expect(await race("fixed")).toEqual(["C-start", "C-end", "B-start", "B-end"]);
  });

  it("control: without the check the waiter runs while the new file's holder still runs", async () => {
    expect(await race("control", { noRecheck: true })).toEqual(["C-start", "B-start", "B-end", "C-end"]);
  });
});
