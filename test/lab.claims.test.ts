// Lab slots are claimed by labs started at the same moment (vitest starts three test files at
// once): two labs must never hold one slot, or each reaches the other's laptops at the same
// addresses ("ssh: host key mismatch" in a CI run). Real processes race for the claims here.
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

const ROOT = join(__dirname, "..");
const scratch = mkdtempSync(join(tmpdir(), "mptcp-claims-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/**
 * `n` processes, each with a lab directory of its own, claim one slot in `claims` at the same
 * moment (`old`: the claim as it was made before, a directory, then its owner file, with the
 * moment between the two widened to 20 ms); the slots each says it got.
 */
async function race(claims: string, n: number, old: boolean): Promise<number[]> {
  const at = Date.now() + 600;
  const child = (i: number) => {
    const dir = join(scratch, `lab-${i}-${Math.random().toString(16).slice(2)}`);
    mkdirSync(dir);
    const code = old
      ? `const fs = require("fs"), path = require("path");
const claims = ${JSON.stringify(claims)}, dir = ${JSON.stringify(dir)};
const owner = (s) => { try { const o = fs.readFileSync(path.join(claims, "slot-" + s, "owner"), "utf8"); return fs.existsSync(o) ? o : undefined; } catch { return undefined; } };
while (Date.now() < ${at});
fs.mkdirSync(claims, { recursive: true });
for (let s = 0; s < 8; s++) {
  const claim = path.join(claims, "slot-" + s);
  if (fs.existsSync(claim) && !owner(s)) fs.rmSync(claim, { recursive: true, force: true });
  try { fs.mkdirSync(claim); const t = Date.now() + 20; while (Date.now() < t); fs.writeFileSync(path.join(claim, "owner"), dir); console.log(s); break; } catch { if (owner(s) === dir) { console.log(s); break; } }
}`
      : `const { claimSlots } = require(${JSON.stringify(join(ROOT, "scripts", "lab", "lab"))});
while (Date.now() < ${at});
console.log(claimSlots(1, ${JSON.stringify(dir)}, undefined, ${JSON.stringify(claims)})[0]);`;
    const p = spawn(process.execPath, ["--require", "tsx/cjs", "-e", code], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    p.stdout.on("data", (d) => (out += d));
    p.stderr.on("data", (d) => (err += d));
    return new Promise<number>((resolve, reject) => p.on("close", (c) => (c === 0 && out.trim() !== "" ? resolve(Number(out.trim())) : reject(new Error(`claimer exited ${c}: ${err}`)))));
  };
  return Promise.all(Array.from({ length: n }, (_, i) => child(i)));
}

const twice = (slots: number[]) => slots.filter((s, i) => slots.indexOf(s) !== i);

describe("lab slot claims (scripts/lab/state.ts claimSlots)", () => {
  it("six labs claiming at once, ten times: every lab gets a slot of its own", async () => {
    for (let round = 0; round < 10; round++) {
      const claims = join(scratch, `claims-${round}`);
      const slots = await race(claims, 6, false);
      expect(twice(slots), `round ${round}: ${slots.join(" ")}`).toEqual([]);
    }
  }, 60_000);

  it("control: the claim as it was (a directory, then its owner) gives one slot to two labs", async () => {
    let doubled = 0;
    for (let round = 0; round < 5 && doubled === 0; round++) {
      const slots = await race(join(scratch, `old-${round}`), 6, true);
      doubled += twice(slots).length;
    }
    expect(doubled).toBeGreaterThan(0);
  }, 60_000);
});
