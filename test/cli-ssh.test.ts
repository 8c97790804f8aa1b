// npm run check and npm run verify against SSH servers that stall (issue 26, items 7 and 9), in
// this process (ssh2's Server on loopback, test/cli-sshd.ts): one that never sends its banner,
// one that never answers a channel open after login, one that never answers an exec request, one
// that accepts an exec and then never sends output or an exit. Each run returns, exit 2, naming
// the host as unreachable and stalled, within its deadlines; with the deadlines out of reach
// (negative control) the same run is still running. check over 1000 hosts at `ulimit -n 256`
// opens at most --connections (32) at once and exits 0; without the bound (negative control) it
// runs out of file descriptors and says so as an internal error, exit 3, never 1 (drift).
// Both SSH exec wrappers (verify's sessions, the provider stand-in) report a command whose exit
// status never came as 255 saying why (scripts/ssh-exec.ts); one that came is kept (control).
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { checkMain } from "../scripts/check";
import { verifyMain } from "../scripts/verify";
import { inProcess, npmScript, ROOT } from "./harness/cli";
import { clientKey, FakeSshd, Mode, startSshd } from "./cli-sshd";
import { requireValidConfig } from "../components/validate";
import { connect } from "../scripts/verify/ssh";
import { EXIT_MISSING, EXIT_STATUS_MISSING, ExecResult, killedBy } from "../scripts/ssh-exec";
import { RecordedCommand } from "./harness/program";
import { sshRunner } from "./harness/ssh";

const dir = mkdtempSync(join(tmpdir(), "mptcp-cli-ssh-"));
const keyFile = join(dir, "id_ed25519");
writeFileSync(keyFile, clientKey, { mode: 0o600 });
const HOSTILE: Exclude<Mode, "ok">[] = ["nobanner", "nosession", "noexec", "silent"];
const servers = new Map<Mode, FakeSshd>();

beforeAll(async () => {
  for (const mode of ["ok", ...HOSTILE] as Mode[]) servers.set(mode, await startSshd(mode));
});
afterAll(async () => {
  for (const s of servers.values()) await s.close();
  rmSync(dir, { recursive: true, force: true });
});

const hostOf = (name: string, s: FakeSshd, port = s.ports[0]) => ({ name, ssh: { host: "127.0.0.1", port, hostKey: s.hostKey } });

function stackFile(name: string, hosts: object[], links: object[] = []): string {
  const file = join(dir, `Pulumi.${name}.yaml`);
  writeFileSync(file, stringify({ config: { "mptcp:hosts": hosts, "mptcp:links": links } }));
  return file;
}

/** `npm run TOOL -- ARGS` as a process of its own (asynchronous: the servers live in this process), under `prefix` (prlimit). */
function spawned(tool: "check" | "verify", args: string[], prefix: string[] = [], killAfter = 60_000, ports?: Set<number>) {
  const [node, words] = npmScript(tool, ...args, "--identity", keyFile);
  const [cmd, ...rest] = [...prefix, node, ...words];
  const start = Date.now();
  const child = spawn(cmd, rest, { cwd: ROOT, env: { ...process.env, SSH_AUTH_SOCK: "" } });
  let out = "";
  let err = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (err += d));
  const killer = setTimeout(() => child.kill("SIGKILL"), killAfter);
  // the most TCP connections to `ports` the tool (the process `prefix` execs into) holds at once,
  // sampled every 10 ms: its socket inodes whose remote port /proc/net/tcp lists as one of them.
  // Reading /proc/PID/fd is not atomic (a closed descriptor's number is reused by the next socket
  // while the listing runs), so a socket counts only if two listings, before and after the table,
  // both hold it: it was open through the whole sample, so the count never exceeds what was open
  // at one instant (a single listing over-counted under load: 36 seen with 32 at most open)
  let maxSockets = 0;
  const socketInodes = () =>
    new Set(
      readdirSync(`/proc/${child.pid}/fd`).flatMap((fd) => {
        try {
          return [/^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${child.pid}/fd/${fd}`))?.[1] ?? ""];
        } catch {
          return [];
        }
      }),
    );
  const sampler = setInterval(() => {
    if (!ports) return;
    try {
      const before = socketInodes();
      const table = readFileSync(`/proc/${child.pid}/net/tcp`, "utf8");
      const after = socketInodes();
      let n = 0;
      for (const line of table.split("\n").slice(1)) {
        const f = line.trim().split(/\s+/);
        if (f.length > 9 && before.has(f[9]) && after.has(f[9]) && ports.has(parseInt(f[2].split(":")[1], 16))) n++;
      }
      maxSockets = Math.max(maxSockets, n);
    } catch {
      // gone
    }
  }, 10);
  const done = new Promise<{ code: number | null; out: string; err: string; seconds: number; maxSockets: number }>((resolve) =>
    child.on("close", (code) => {
      clearTimeout(killer);
      clearInterval(sampler);
      resolve({ code, out, err, seconds: (Date.now() - start) / 1000, maxSockets });
    }),
  );
  return { child, done };
}

const stalledHosts = () => HOSTILE.map((m) => hostOf(m, servers.get(m)!));

describe("deadlines on every SSH step (issue 26, item 7)", () => {
  it("check, in process, one stalled host at a time: each is unreachable (exit 2) within its deadline, the step named", async () => {
    const times: Record<string, number> = {};
    // --timeout 2: the login and each command's reply 2 s, a command's silence 8 s
    const expected: Record<string, [RegExp, number]> = {
      nobanner: [/stalled: no login within 2 s/, 2],
      nosession: [/stalled: no reply to a command \(channel open, exec request\) in 2 s/, 2],
      noexec: [/stalled: no reply to a command \(channel open, exec request\) in 2 s/, 2],
      silent: [/stalled: no output and no exit from a command in 8 s/, 8],
    };
    for (const mode of HOSTILE) {
      const start = Date.now();
      const r = await inProcess("check", checkMain, [stackFile(mode, [hostOf(mode, servers.get(mode)!), hostOf("good", servers.get("ok")!)]), "--identity", keyFile, "--timeout", "2"]);
      times[mode] = (Date.now() - start) / 1000;
      expect(r.code, r.out + r.err).toBe(2);
      expect(r.out).toContain(`${mode}: unreachable\n  ${mode} (root@127.0.0.1:${servers.get(mode)!.ports[0]}, mptcp:hosts[0].ssh): unreachable: `);
      expect(r.out).toMatch(expected[mode][0]);
      expect(r.out).toContain("good: in step");
      expect(times[mode]).toBeGreaterThanOrEqual(expected[mode][1] - 0.1);
      expect(times[mode]).toBeLessThan(expected[mode][1] + 3);
    }
    console.log("check, seconds to exit 2 per stalled host (--timeout 2):", JSON.stringify(times));
  });

  it("check and verify as processes: all four stalled hosts in one stack, exit 2 within the longest deadline", async () => {
    const hosts = [...stalledHosts(), hostOf("good", servers.get("ok")!)];
    const file = stackFile(
      "stalled",
      hosts,
      HOSTILE.map((m) => ({ client: "good", server: m, address: "127.0.0.1" })),
    );
    const [check, verify] = await Promise.all([spawned("check", [file, "--timeout", "2"]).done, spawned("verify", [file, "--timeout", "2"]).done]);
    console.log(`check exited ${check.code} in ${check.seconds} s; verify exited ${verify.code} in ${verify.seconds} s`);
    for (const [r, what] of [
      [check, "check"],
      [verify, "verify"],
    ] as const) {
      expect(r.code, `${what}: ${r.out}${r.err}`).toBe(2);
      // Node's start and the 8 s silence of the slowest, plus verify's links one after another;
      // bounded, with room for a loaded machine (docs/performance.md, "The CLIs")
      expect(r.seconds, what).toBeLessThan(40);
      for (const m of HOSTILE) expect(r.out, `${what} ${m}`).toMatch(new RegExp(`${m} \\(root@127\\.0\\.0\\.1:${servers.get(m)!.ports[0]}, mptcp:hosts\\[\\d\\]\\.ssh\\): unreachable: stalled`));
    }
    expect(verify.out).toMatch(/^unreachable: nobanner .*stalled: no login within 2 s/m);
    for (const m of ["nosession", "noexec", "silent"]) expect(verify.out).toMatch(new RegExp(`mptcp:links\\[\\d\\]: good -> ${m} \\(dials 127\\.0\\.0\\.1\\): MISMATCH`));
  });

  it("negative control: with the deadlines out of reach (--timeout 86400) the same check is still running after 12 s", async () => {
    const run = spawned("check", [stackFile("stalled-forever", stalledHosts()), "--timeout", "86400"], [], 12_000);
    const r = await run.done;
    // killed by the test's own 12 s timer: it had not returned
    expect(r.code).toBeNull();
    expect(r.seconds).toBeGreaterThanOrEqual(12);
    expect(r.out).toBe("");
  });

  it("--timeout and --connections are checked; --help names the exit codes", async () => {
    const file = stackFile("one", [hostOf("good", servers.get("ok")!)]);
    for (const bad of [["--timeout", "0"], ["--timeout", "2.5"], ["--timeout", "86401"], ["--connections=-1"], ["--connections", "x"]]) {
      const r = await inProcess("check", checkMain, [file, "--identity", keyFile, ...bad]);
      expect(r.code, bad.join(" ")).toBe(2);
      expect(r.err).toMatch(/^--(timeout|connections) must be a whole number from \d+ to \d+\nusage: npm run check -- /);
    }
    for (const [tool, main] of [
      ["check", checkMain],
      ["verify", verifyMain],
    ] as const) {
      const r = await inProcess(tool, main, ["--help"]);
      expect(r.code).toBe(0);
      expect(r.out).toMatch(/exit codes: 0 .*; 1 .*; 2 a host unreachable.*; 3 an internal error \(a bug in mptcp-pulumi\)/);
      expect(r.out).toContain("--timeout SECONDS");
      expect(r.out).toContain("--connections N");
    }
  });
});

describe("a bounded number of connections (issue 26, item 9)", () => {
  const HOSTS = 1000;
  let many: FakeSshd;
  let file: string;
  beforeAll(async () => {
    many = await startSshd("ok", HOSTS);
    file = stackFile(
      "many",
      many.ports.map((p, i) => hostOf(`h${i}`, many, p)),
    );
  });
  afterAll(() => many.close());

  it(`check of ${HOSTS} hosts at ulimit -n 256: at most 32 connections at once, every host in step, exit 0`, async () => {
    const r = await spawned("check", [file], ["prlimit", "--nofile=256:256", "--"], 110_000, new Set(many.ports)).done;
    console.log(`check of ${HOSTS} hosts at nofile 256: exit ${r.code} in ${r.seconds} s, at most ${r.maxSockets} connections at once (sampled)`);
    expect(r.err).not.toMatch(/EMFILE/);
    expect(r.code, r.err.slice(0, 2000)).toBe(0);
    expect(
      r.out
        .split("\n")
        .filter((l) => l && !/^h\d+: in step$/.test(l))
        .slice(0, 5),
    ).toEqual([]);
    expect(r.out.match(/^h\d+: in step$/gm)?.length).toBe(HOSTS);
    expect(many.stats.logins).toBeGreaterThanOrEqual(HOSTS);
    expect(r.maxSockets).toBeGreaterThan(4); // the sampler sees them
    // the pool opens the next connection only once the last one's socket closed (the sampler counts
    // only sockets open through a whole sample: never more than were open at once)
    expect(r.maxSockets).toBeLessThanOrEqual(32);
  });

  it("negative control: without the bound (--connections 0) it runs out of file descriptors: an internal error, exit 3, not 1 (drift)", async () => {
    const r = await spawned("check", [file, "--connections", "0"], ["prlimit", "--nofile=256:256", "--"], 110_000, new Set(many.ports)).done;
    console.log(`unbounded: exit ${r.code} in ${r.seconds} s, ${r.maxSockets} connections at once (sampled): ${r.err.split("\n")[0]}`);
    expect(r.err).toMatch(/^check: internal error \(a bug in mptcp-pulumi, please report it\): .*EMFILE/m);
    expect(r.code).toBe(3);
  });
});

describe("one exit contract for both SSH exec wrappers (scripts/ssh-exec.ts): a command whose exit status never came exits 255 saying why", () => {
  const MODES = ["ok", "fail", "noexit", "signal"] as const;
  const sshds = new Map<Mode, FakeSshd>();
  beforeAll(async () => {
    for (const mode of MODES) sshds.set(mode, await startSshd(mode, 1, "printed\n"));
  });
  afterAll(async () => {
    for (const s of sshds.values()) await s.close();
  });

  /** The same command through verify's session (scripts/verify/ssh.ts) and through the provider stand-in (test/harness/ssh.ts). */
  async function both(mode: Mode): Promise<{ session: ExecResult; provider: ExecResult }> {
    const s = sshds.get(mode)!;
    const host = requireValidConfig({ hosts: [hostOf(mode, s)] }).hosts[0];
    const session = await connect(host, { privateKey: clientKey });
    try {
      const viaSession = await session.exec("true");
      const runner = sshRunner({ env: {} });
      const command = { name: mode, connection: { host: "127.0.0.1", port: s.ports[0], user: "root", privateKey: clientKey, dialErrorLimit: 0, perDialTimeout: 15 } } as unknown as RecordedCommand;
      return { session: viaSession, provider: await runner.run(command, "true", "create") };
    } finally {
      await session.close();
    }
  }

  it("no exit status (the channel closed first): 255, stderr opening with x/crypto's ExitMissingError text; an exit signal: 255, naming the signal", async () => {
    for (const [mode, why] of [
      ["noexit", EXIT_MISSING],
      ["signal", killedBy("SIGTERM")],
    ] as const) {
      const { session, provider } = await both(mode);
      console.log(`${mode}: verify's session exit ${session.code} (${session.stderr.split("\n")[0]}), the provider stand-in exit ${provider.code} (${provider.stderr.split("\n")[0]})`);
      for (const r of [session, provider]) {
        expect(r.code, mode).toBe(EXIT_STATUS_MISSING);
        expect(r.code, mode).toBe(255);
        expect(r.stderr.split("\n")[0], mode).toBe(why);
      }
      expect(session.stdout).toBe("printed\n");
    }
  });

  it("negative control: an exit status that came is the command's, 0 or not, with nothing added to stderr", async () => {
    for (const [mode, code] of [
      ["ok", 0],
      ["fail", 3],
    ] as const) {
      const { session, provider } = await both(mode);
      expect(session).toEqual({ code, stdout: "printed\n", stderr: "" });
      expect(provider).toEqual({ code, stdout: "printed", stderr: "" });
    }
  });
});
