// Synchronous process runs for the lab, started by a small helper process instead of by Node.
// Node starts a child by fork(), which copies the page tables of the whole Node process, and on
// these paravirtualized machines page-table updates are dear: a `spawnSync` from a large Node
// process (a test worker with Pulumi loaded) costs several times what it costs through this
// helper (docs/performance.md, "Tools and the harness"). The helper (python3, a few MB; its subprocess uses vfork) runs each command and answers
// over two FIFOs; Node waits on the answer with a blocking read, so callers stay synchronous.
// The helper ends when this process does (end of file on its request FIFO).
import { spawn, spawnSync, SpawnSyncReturns } from "node:child_process";
import { mkdtempSync, openSync, readSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const HELPER = `
import json, subprocess, sys
req = open(sys.argv[1], "rb")
resp = open(sys.argv[2], "wb")
for line in req:
    r = json.loads(line)
    try:
        p = subprocess.run(r["args"], input=(r["input"] or "").encode(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out = {"code": p.returncode, "stdout": p.stdout.decode("utf-8", "replace"), "stderr": p.stderr.decode("utf-8", "replace")}
    except OSError as e:
        out = {"code": 127, "stdout": "", "stderr": str(e)}
    resp.write(json.dumps(out).encode() + b"\\n")
    resp.flush()
`;

export interface RunOutput {
  code: number;
  stdout: string;
  stderr: string;
}

let channel: { req: number; resp: number } | undefined | null;

function open(): { req: number; resp: number } | null {
  // where the helper cannot start (no python3), runs fall back to Node's own spawnSync
  const python = ["/usr/bin/python3", "/usr/local/bin/python3"].find((p) => spawnSync(p, ["-c", ""], { stdio: "ignore" }).status === 0);
  if (!python) return null;
  const dir = mkdtempSync(join(tmpdir(), "mptcp-spawner-"));
  const [req, resp] = [join(dir, "req"), join(dir, "resp")];
  if (spawnSync("mkfifo", [req, resp]).status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    return null;
  }
  spawn(python, ["-c", HELPER, req, resp], { stdio: "ignore" }).unref();
  // each open waits for the helper's open of the other end (request first, as the helper does)
  const c = { req: openSync(req, "w"), resp: openSync(resp, "r") };
  rmSync(dir, { recursive: true, force: true });
  return c;
}

/** Runs `cmd args` to completion with `input` on its stdin; its exit code (-1 if signalled) and output. */
export function runSync(cmd: string, args: string[], input?: string): RunOutput {
  if (channel === undefined) channel = open();
  if (channel === null) {
    const r: SpawnSyncReturns<string> = spawnSync(cmd, args, { encoding: "utf8", input, maxBuffer: 64 << 20 });
    return { code: r.status ?? -1, stdout: r.stdout ?? "", stderr: r.stderr ?? String(r.error ?? "") };
  }
  writeSync(channel.req, JSON.stringify({ args: [cmd, ...args], input: input ?? "" }) + "\n");
  const chunks: Buffer[] = [];
  const buf = Buffer.alloc(1 << 16);
  for (;;) {
    const n = readSync(channel.resp, buf, 0, buf.length, null);
    if (n === 0) throw new Error("the lab's process helper exited");
    chunks.push(Buffer.from(buf.subarray(0, n)));
    if (buf[n - 1] === 0x0a) break;
  }
  const r = JSON.parse(Buffer.concat(chunks).toString("utf8")) as RunOutput;
  return { ...r, code: r.code < 0 ? -1 : r.code };
}

/** runSync that throws on a non-zero exit, naming the command; its stdout. */
export function run(cmd: string, args: string[], input?: string): string {
  const r = runSync(cmd, args, input);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (exit ${r.code}): ${(r.stderr || r.stdout).trim()}`);
  return r.stdout;
}

/** Whether `cmd args` exits 0. */
export function tryRun(cmd: string, args: string[]): boolean {
  return runSync(cmd, args).code === 0;
}
