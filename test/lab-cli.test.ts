// npm run lab: root required; up twice and down twice are safe; down leaves nothing behind.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { readStackConfig, validateConfig } from "../components";
import { inotifyShortfall, namespaces } from "../scripts/lab/lab";
import { preparePlotDir } from "../scripts/lab/plot";
import { DEFAULT_FORKS, EngineFacts, Row, scaleSummary } from "../scripts/lab/scale";
import { Topology } from "../scripts/lab/topology";
import { inProcess, npmScript, ROOT } from "./harness/cli";
import { ScratchNs } from "./harness/scratch";
import { labMain } from "../scripts/lab";

const base = mkdtempSync(join(tmpdir(), "mptcp-labcli-"));
const id = `c${Math.random().toString(16).slice(2, 6)}`;
const env = { ...process.env, MPTCP_LAB_DIR: join(base, "lab"), MPTCP_LAB_STACK_FILE: join(base, "Pulumi.lab.yaml"), MPTCP_LAB_ID: id };
const lab = (args: string[], uid?: number, extra: Record<string, string> = {}) => spawnSync(...npmScript("lab", ...args), { encoding: "utf8", env: { ...env, ...extra }, uid, cwd: ROOT });

/**
 * The same CLI's main in this process (inProcess), for all but the no-root refusal and the first
 * up and down: its status (1 when it throws, as the entry point exits), stdout and stderr.
 * `extra`: environment over the test's own.
 */
async function labIn(args: string[], extra: Record<string, string> = {}): Promise<{ status: number; stdout: string; stderr: string }> {
  const r = await inProcess("lab", (argv, io) => labMain(argv, { ...env, ...extra }, io).then(() => 0), args, 1);
  return { status: r.code, stdout: r.out, stderr: r.err };
}

/** Everything a lab could leave behind: namespaces, links, processes, mounts, cgroups, slot claims, files. */
function leftovers(labId = id, dir = env.MPTCP_LAB_DIR, stackFile = env.MPTCP_LAB_STACK_FILE): string[] {
  const out: string[] = [];
  for (const root of ["/sys/fs/cgroup/systemd/mptcp-lab", "/sys/fs/cgroup/unified/mptcp-lab"]) {
    if (existsSync(root))
      out.push(
        ...readdirSync(root)
          .filter((n) => n.startsWith(`mptcp-${labId}-`))
          .map((n) => `cgroup ${root}/${n}`),
      );
  }
  if (existsSync("/run/mptcp-lab")) {
    for (const claim of readdirSync("/run/mptcp-lab")) {
      const owner = join("/run/mptcp-lab", claim, "owner");
      if (existsSync(owner) && readFileSync(owner, "utf8").trim() === dir) out.push(`claim ${claim}`);
    }
  }
  out.push(
    ...namespaces()
      .filter((n) => n.startsWith(`mptcp-${labId}-`))
      .map((n) => `netns ${n}`),
  );
  const links = spawnSync("ip", ["-o", "link", "show"], { encoding: "utf8" }).stdout;
  out.push(
    ...links
      .split("\n")
      .filter((l) => new RegExp(`-${labId}[@:]`).test(l))
      .map((l) => `link ${l.split(":")[1]}`),
  );
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(dir)) {
        if (!/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, "utf8"))) out.push(`process ${pid}`);
      }
      if (readFileSync(`/proc/${pid}/mountinfo`, "utf8").includes(dir)) out.push(`mount in ${pid}`);
    } catch {
      /* gone */
    }
  }
  if (existsSync(dir)) out.push(`dir ${dir}`);
  if (existsSync(stackFile)) out.push(`file ${stackFile}`);
  return out;
}

afterAll(async () => {
  await labIn(["down"]);
  rmSync(base, { recursive: true, force: true });
});

describe("npm run lab", () => {
  it("flags are parsed as verify and check parse theirs (parseArgs): an unknown option, a missing value or a stray argument is a usage error (exit 1, the usage line), --help exits 0, building nothing", async () => {
    const usage = /\nusage: npm run lab -- up \[--topology FILE\] \| down \| status \| bench /;
    const cases: [string[], RegExp][] = [
      [["up", "--frob"], /^Unknown option '--frob'/],
      [["down", "--topology", "x.yaml"], /^Unknown option '--topology'/],
      [["up", "--topology"], /^Option '--topology <value>' argument missing/],
      [["up", "extra"], /^unknown arguments: extra/],
      [["bench", "--scale", "2", "--rate", "5mbit"], /^unknown arguments: --rate 5mbit \(--scale takes only --runs and --plot\)/],
      [["nope"], /^unknown command nope/],
    ];
    for (const [args, message] of cases) {
      const r = await labIn(args);
      expect(r.status, args.join(" ")).toBe(1);
      expect(r.stderr, args.join(" ")).toMatch(message);
      expect(r.stderr, args.join(" ")).toMatch(usage);
    }
    // control: --help, and a well-formed command (status of a lab that is down), pass the parser: exit 0
    const help = await labIn(["up", "--help"]);
    expect(help).toMatchObject({ status: 0, stderr: "" });
    expect(help.stdout).toMatch(/^usage: npm run lab -- up /);
    expect((await labIn(["status"])).status).toBe(0);
    expect(leftovers()).toEqual([]);
  });

  it("refuses to run without root, changing nothing", () => {
    const r = lab(["up"], 65534);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/needs root/);
    expect(leftovers()).toEqual([]);
  });

  // The first up and down run as `npm run lab` does (a process of their own, its exit code); what
  // follows them runs the same main in this process (labIn).
  it("up, up again, status, down, down again: the second up and down change nothing; down leaves nothing", async () => {
    const up = lab(["up"]);
    expect(up.status, up.stderr).toBe(0);
    const took = /lab up in ([\d.]+) s/.exec(up.stdout)?.[1];
    console.log(`lab up of the default topology: ${took} s`);
    expect(took).toBeDefined();
    const pids = JSON.parse(readFileSync(join(env.MPTCP_LAB_DIR, "state.json"), "utf8")).hosts.map((h: { pid: number }) => h.pid);
    // the live state a user would see
    expect(leftovers().filter((l) => l.startsWith("netns"))).toHaveLength(2);
    const stack = readStackConfig(env.MPTCP_LAB_STACK_FILE);
    expect(validateConfig(stack).ok).toBe(true);

    const again = await labIn(["up"]);
    expect(again.status, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/lab already up/);
    expect(JSON.parse(readFileSync(join(env.MPTCP_LAB_DIR, "state.json"), "utf8")).hosts.map((h: { pid: number }) => h.pid)).toEqual(pids);

    const status = await labIn(["status"]);
    expect(status.stdout).toMatch(new RegExp(`lab ${id} in .*: up`));
    expect(status.stdout).toMatch(/server +server +systemd running +ssh root@.*lan.*=198\.51\.100\.1\/28/);
    expect(status.stdout).toMatch(/client +client +systemd running +ssh root@.*lan.*=198\.51\.100\.2\/28/);

    // another lab asking for the slot this one holds is refused, and builds nothing
    const slot = JSON.parse(readFileSync(join(env.MPTCP_LAB_DIR, "state.json"), "utf8")).slots[0];
    const other = { MPTCP_LAB_DIR: join(base, "other"), MPTCP_LAB_ID: `${id}x`, MPTCP_LAB_STACK_FILE: join(base, "other.yaml"), MPTCP_LAB_SLOT: String(slot) };
    const clash = await labIn(["up"], other);
    expect(clash.status).toBe(1);
    expect(clash.stderr).toMatch(new RegExp(`no 1 free consecutive management slot\\(s\\) from slot ${slot} .*slot ${slot}: ${env.MPTCP_LAB_DIR}`));
    expect(leftovers(other.MPTCP_LAB_ID, other.MPTCP_LAB_DIR, other.MPTCP_LAB_STACK_FILE)).toEqual([]);

    // Pulumi rewrites the stack file (salt, secrets) and drops its comments: down still knows it.
    const doc = parse(readFileSync(env.MPTCP_LAB_STACK_FILE, "utf8"));
    doc.encryptionsalt = "v1:abc";
    writeFileSync(env.MPTCP_LAB_STACK_FILE, stringify(doc));

    const down = lab(["down"]);
    expect(down.status, down.stderr).toBe(0);
    console.log(down.stdout.trim());
    expect(leftovers()).toEqual([]);
    const downAgain = await labIn(["down"]);
    expect(downAgain.status, downAgain.stderr).toBe(0);
    expect(leftovers()).toEqual([]);
  });

  it("down keeps a Pulumi.lab.yaml that is not this lab's", async () => {
    expect((await labIn(["up"])).status).toBe(0);
    const doc = parse(readFileSync(env.MPTCP_LAB_STACK_FILE, "utf8"));
    doc.config["mptcp:hosts"][0].ssh.hostKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIsomeoneElsesKey";
    writeFileSync(env.MPTCP_LAB_STACK_FILE, stringify(doc));
    expect((await labIn(["down"])).status).toBe(0);
    expect(leftovers()).toEqual([`file ${env.MPTCP_LAB_STACK_FILE}`]);
    rmSync(env.MPTCP_LAB_STACK_FILE);
  });

  it("refuses a lab that would pass this machine's inotify limit, saying what to raise, building nothing", async () => {
    const pairs = (n: number): Topology => ({
      hosts: Array.from({ length: n }, (_, i) => ({ name: `h${i}`, role: i % 2 ? "client" : "server", ...(i === 1 ? { network: "networkmanager" as const } : {}) })),
      paths: [{ name: "lan", subnet: "198.51.100.0/28", between: ["h0", "h1"] }],
    });
    expect(inotifyShortfall(pairs(2), 100, 128)).toBeUndefined();
    expect(inotifyShortfall(pairs(2), 119, 128)).toMatch(
      /2 laptops need about 10 inotify instances .* 119 are in use, but fs\.inotify\.max_user_instances is 128: raise it first \(sysctl -w fs\.inotify\.max_user_instances=512;/,
    );
    // for real, sized from this machine's limit (CI's Debian: 128, so 33 laptops)
    const max = Number(readFileSync("/proc/sys/fs/inotify/max_user_instances", "utf8"));
    const n = Math.floor(max / 4) + 1;
    expect(n, "this machine's inotify limit is too high to show the refusal with at most 128 laptops").toBeLessThanOrEqual(128);
    const file = join(base, "big.yaml");
    writeFileSync(file, stringify(pairs(n)));
    const r = await labIn(["up", "--topology", file]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`${n} laptops need about \\d+ inotify instances .* fs\\.inotify\\.max_user_instances is ${max}: raise it first`));
    expect(leftovers()).toEqual([]);
  });

  it("bench --scale refuses laptop counts no lab of pairs has, building nothing", async () => {
    for (const sizes of ["2,7", "0", "130", "8,x"]) {
      const r = await labIn(["bench", "--scale", sizes]);
      expect(r.status, sizes).toBe(1);
      expect(r.stderr).toContain(`lab: --scale takes even laptop counts from 2 to 128, comma-separated (got ${sizes})`);
    }
    expect(namespaces().filter((n) => n.startsWith("mptcp-scale-"))).toEqual([]);
  });

  it("bench refuses a --runs that is not a whole number of at least one, both kinds, building nothing", async () => {
    for (const args of [
      ["bench", "--scale", "2", "--runs", "0"],
      ["bench", "--scale", "2,8", "--runs", "x"],
      ["bench", "--runs", "1.5"],
    ]) {
      const r = await labIn(args);
      expect(r.status, args.join(" ")).toBe(1);
      expect(r.stderr, args.join(" ")).toContain("lab: --runs must be a whole number >= 1");
    }
    expect(namespaces().filter((n) => n.startsWith("mptcp-scale-") || n.startsWith("mptcp-bench-"))).toEqual([]);
  });

  it("bench refuses a --plot directory it cannot write before it builds anything", async () => {
    const file = join(base, "not-a-dir");
    writeFileSync(file, "");
    for (const args of [
      ["bench", "--scale", "2", "--plot", join(file, "plots")],
      ["bench", "--runs", "1", "--plot", join(file, "plots")],
    ]) {
      const r = await labIn(args);
      expect(r.status, args.join(" ")).toBe(1);
      expect(r.stderr).toContain(`lab: --plot ${join(file, "plots")}: plots cannot be written there (ENOTDIR`);
    }
    expect(namespaces().filter((n) => n.startsWith("mptcp-scale-") || n.startsWith("mptcp-bench-"))).toEqual([]);
    // a directory that does not exist yet is made, with its parents (a run failed at its end on one)
    preparePlotDir(join(base, "plots", "new"));
    expect(existsSync(join(base, "plots", "new"))).toBe(true);
  });

  it("bench refuses a congestion control the laptops cannot take, building nothing; the rule is the kernel's", async () => {
    const list = (f: string) => readFileSync(`/proc/sys/net/ipv4/${f}`, "utf8").trim().split(/\s+/);
    const allowed = list("tcp_allowed_congestion_control");
    // available to this machine but not to other namespaces (cubic here), and one that does not exist
    const restricted = list("tcp_available_congestion_control").filter((c) => !allowed.includes(c));
    for (const cc of [...restricted, "nosuch"]) {
      const r = await labIn(["bench", "--cc", cc]);
      expect(r.status, cc).toBe(1);
      expect(r.stderr).toContain(`lab: --cc ${cc}: the laptops may only use ${allowed.join(", ")} (net.ipv4.tcp_allowed_congestion_control on this machine)`);
    }
    expect(namespaces().filter((n) => n.startsWith("mptcp-bench-"))).toEqual([]);
    // control: in a namespace of its own the kernel takes each allowed one and refuses the others
    const ns = new ScratchNs("mptcp-cc");
    try {
      const set = (cc: string) => ns.try(`sysctl -qw net.ipv4.tcp_congestion_control=${cc}`).code;
      for (const cc of allowed) expect(set(cc), cc).toBe(0);
      for (const cc of [...restricted, "nosuch"]) expect(set(cc), cc).not.toBe(0);
    } finally {
      ns.close();
    }
  });

  it("rejects a bad topology file with its path, building nothing", async () => {
    const file = join(base, "bad.yaml");
    writeFileSync(file, "hosts: [{ name: a, role: server }, { name: b, role: client }]\npaths: [{ name: lan, subnet: 192.0.2.0/24, between: [a, b] }]\n");
    const r = await labIn(["up", "--topology", file]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/topology:paths\[0\]\.subnet: must be a subnet inside 198\.51\.100\.0\/24/);
    expect(leftovers()).toEqual([]);
  });
});

describe("bench --scale's summary", () => {
  const engine = (over: Partial<EngineFacts>): EngineFacts => ({
    parallel: 8,
    peak: 8,
    steps: 160,
    writes: 320,
    bytes: 1.9e9,
    largest: 11.5e6,
    checkpointSeconds: 20,
    stateBytes: 11.52e6,
    inputBytes: 5.7e6,
    ...over,
  });
  const rows = (round: number, oursApply: number, ansible: number): Row[] => [
    { n: 32, round, tool: "mptcp-pulumi", run: "apply", seconds: oursApply, connections: [4, 6], engine: engine({ peak: 7 + round, checkpointSeconds: 19 + round }) },
    { n: 32, round, tool: "mptcp-pulumi", run: "no-op", seconds: 0.5, connections: [0, 0], engine: engine({ peak: 0, steps: 0, writes: 1, bytes: 11.52e6, checkpointSeconds: 0.1 }) },
    { n: 32, round, tool: "mptcp-pulumi", run: "destroy", seconds: 2 + round, connections: [4, 6], engine: engine({ peak: 8, writes: 320, bytes: 2.1e9, stateBytes: 90, inputBytes: 0 }) },
    { n: 32, round, tool: DEFAULT_FORKS, run: "apply", seconds: ansible, connections: [1, 1] },
    { n: 32, round, tool: DEFAULT_FORKS, run: "no-op", seconds: ansible - 1, connections: [1, 1] },
    { n: 32, round, tool: "ansible forks=32", run: "apply", seconds: ansible + 1, connections: [1, 1] },
    { n: 32, round, tool: "ansible forks=32", run: "no-op", seconds: ansible, connections: [1, 1] },
  ];

  it("gives per N our apply, no-op and destroy, Ansible's columns and the ratio, from the medians of the rounds", () => {
    const out = scaleSummary([...rows(1, 10, 30), ...rows(2, 12, 33), ...rows(3, 11, 40)], 3);
    expect(out[0]).toBe("Medians of 3 rounds per N (wall seconds):");
    expect(out[1].trim().split(/\s{2,}/)).toEqual(["N", "ours apply", "no-op", "destroy", "ansible(5)", "ansible(N)", "ansible no-op(5/N)", "SSH/laptop ours", "ansible", "ansible(best) / ours"]);
    // ours 11 (median of 10, 12, 11), no-op 0.5, destroy 4; Ansible 33 and 34, no-op 32/33; 33 / 11 = 3.0x
    expect(out[2].trim().split(/\s+/)).toEqual(["32", "11.00", "0.50", "4.00", "33.00", "34.00", "32.0/33.0", "4-6", "1", "3.0x"]);
    expect(out.at(-1)).toBe(" 32  ours 10.00-12.00 s, Ansible's best 30.00-40.00 s, ratio 2.8-3.6x");
    // a span of equal values is one value
    expect(scaleSummary([...rows(1, 10, 30), ...rows(2, 10, 30)], 2).at(-1)).toBe(" 32  ours 10.00 s, Ansible's best 30.00 s, ratio 3.0x");
  });

  it("gives the engine simulator's parallelism, the checkpoint writes and bytes per run, and the state per host", () => {
    const out = scaleSummary([...rows(1, 10, 30), ...rows(2, 12, 33), ...rows(3, 11, 40)], 3);
    const i = out.findIndex((l) => l.startsWith("Our runs in the engine simulator"));
    expect(out[i]).toContain("(--parallel 8, the engine's default: 4 x CPUs)");
    expect(out[i + 1].trim().split(/\s{2,}/)).toEqual([
      "N",
      "steps apply/destroy",
      "peak parallel apply/destroy",
      "checkpoints apply/no-op/destroy",
      "MB written apply/destroy",
      "largest MB",
      "checkpoint s (apply)",
      "state KB/host",
      "inputs KB/host",
    ]);
    // peak: the highest of the rounds (8, 9, 10); checkpoint seconds: the median (20, 21, 22);
    // the state per host: 11.52 MB / 32 = 360 KB, the inputs 5.7 MB / 32 = 178.1 KB
    expect(out[i + 2].trim().split(/\s+/)).toEqual(["32", "160/160", "10/8", "320/1/320", "1900.0/2100.0", "11.5", "21.00", "360.0", "178.1"]);
    // one round: no per-round lines, and the engine's table still there
    const one = scaleSummary(rows(1, 10, 30), 1);
    expect(one[0]).toBe("Wall seconds:");
    expect(one.at(-1)!.trim().split(/\s+/)[0]).toBe("32");
    expect(one.some((l) => l.startsWith("Per round"))).toBe(false);
  });
});
