// Applies are transactions (components/sh/lib/txn.sh). An apply that fails half-way (a command
// failing, the SSH session cut) puts the host back as it was before it began and says what failed,
// on which host, for which config path; one killed outright is put back by the next apply or
// revert on the host. Faults are real: a laptop-local wrapper in /usr/local/sbin (the laptop's own
// overlay, first in root's PATH) makes one command fail, hang or stall, the way a full disk, an
// old iproute2 or a dropped link would. Control: the same fault with the transaction turned off
// leaves the host half-changed, so the snapshot comparison can fail.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { renderCheck, requireValidConfig, STATE_DIR, wrapScript } from "../components";
import { LabHost, labSh } from "../scripts/lab/lab";
import { DEFAULT_TOPOLOGY } from "../scripts/lab/topology";
import { waitFor } from "../scripts/lab/wait";
import { labFile } from "./harness/fixture";
import { RecordedCommand, runProgram } from "./harness/program";
import { sshArgs } from "./harness/ssh";
import { adminEndpoint, allConcernsConfig, AllConcernsConfig, labFault, snapshot } from "./harness/labtest";

const f = labFile(DEFAULT_TOPOLOGY, "t");
let client: LabHost;
let cfg: AllConcernsConfig;
/** The client before anything of ours, with an endpoint of its own (what a flush would lose). */
let before: string;
const keyDir = mkdtempSync(join(tmpdir(), "mptcp-txn-"));

beforeAll(async () => {
  client = f.host("client");
  adminEndpoint(client, 50);
  cfg = allConcernsConfig(f.lab, { client: { confirmTimeout: 10 } });
  before = snapshot(client);
});

afterAll(async () => {
  rmSync(keyDir, { recursive: true, force: true });
});

type Action = "fail" | "hang" | "stall";

/**
 * Makes `cmd` on the laptop misbehave once, the first time its arguments contain `match`: fail
 * (exit 7), hang (until killed; its process group id in /run/lab-fault.pgid) or stall (2 s, then
 * run). Once, so that the undo, which may run the same command, is not hit. Returns what removes
 * the wrapper.
 */
function fault(h: LabHost, cmd: string, match: string, action: Action): () => void {
  const act = { fail: `echo "lab fault: ${cmd} $*" >&2; exit 7`, hang: "cut -d' ' -f5 /proc/$$/stat > /run/lab-fault.tmp; mv /run/lab-fault.tmp /run/lab-fault.pgid; sleep 120", stall: "sleep 2" }[
    action
  ];
  return labFault(h, cmd, match, act);
}

/** Per concern, a command that fails after the apply's first change: in a first apply, and in a later one (the changed config). */
const FAULTS: { concern: string; path: string; first: [string, string]; later: [string, string] }[] = [
  { concern: "sysctl", path: "sysctl", first: ["mv", "99-mptcp-pulumi.conf"], later: ["mv", "99-mptcp-pulumi.conf"] },
  { concern: "endpoints", path: "endpoints", first: ["ip", "mptcp endpoint add"], later: ["ip", "mptcp endpoint add"] },
  // files are installed, then the unit enabled; later, the files are updated, then the new table's rule added
  { concern: "hooks", path: "hooks, routing", first: ["ln", "mptcp-pulumi.service"], later: ["ip", "rule add from"] },
  // the drop-in is written, then systemd reloaded
  { concern: "services", path: "services", first: ["systemctl", "daemon-reload"], later: ["systemctl", "daemon-reload"] },
];

async function clientCommands(config = cfg): Promise<RecordedCommand[]> {
  return (await runProgram(config, { privateKey: f.privateKey })).commands.filter((c) => c.name.startsWith("client-"));
}
const named = (cmds: RecordedCommand[], name: string) => cmds.find((c) => c.name === `client-${name}`)!;

/** Runs a command's create over SSH, optionally with the transaction off (the negative control). */
async function create(c: RecordedCommand, opts: { noTxn?: boolean } = {}) {
  return f.ssh.run(c, (opts.noTxn ? "export MPTCP_PULUMI_UNDO=1\n" : "") + c.create!, "create");
}

/** Starts a create with our own ssh client, so the test can kill it. */
function startCreate(c: RecordedCommand) {
  const child = spawn("ssh", [...sshArgs(c.connection, keyDir), "--", c.create!], { stdio: ["ignore", "pipe", "pipe"] });
  let err = "";
  child.stderr.on("data", (d) => (err += d));
  const done = new Promise<number>((resolve) => child.on("close", (code) => resolve(code ?? -1)));
  return { child, done, stderr: () => err };
}

/** Runs a shell command on the client over SSH (systemctl needs a session inside the laptop). */
async function onClient(script: string): Promise<string> {
  const r = await f.ssh.run(named(await clientCommands(), "limits"), script, "create");
  if (r.code !== 0) throw new Error(`${script}: exit ${r.code}: ${r.stderr}`);
  return r.stdout;
}
/** The client's drift check (npm run check's script, for the stack the program ran as), its output. */
async function checkClient(): Promise<string> {
  const script = wrapScript(renderCheck({ ...requireValidConfig(cfg).hosts[1], stack: "mptcp/test" }), { user: "root", host: "client" });
  return (await f.ssh.run(named(await clientCommands(), "limits"), script, "create")).stdout;
}
const exists = (h: LabHost, path: string) => labSh(h, `[ -e ${path} ] && echo yes || true`).trim() === "yes";

describe("an apply that fails half-way puts the host back as it was before it began", () => {
  for (const f of FAULTS) {
    it(`${f.concern}: a first apply (${f.first[0]} failing after the first changes) leaves the host exactly as before, naming host and config path`, async () => {
      const heal = fault(client, ...f.first, "fail");
      const r = await create(named(await clientCommands(), f.concern));
      heal();
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain(`lab fault: ${f.first[0]}`);
      expect(r.stderr).toContain(`mptcp-pulumi[client]: error: ${f.path}: the ${f.concern} apply failed (exit`);
      expect(r.stderr).toContain("client was put back as it was before this apply began");
      expect(snapshot(client)).toBe(before);
      // the rollback the failed apply armed (endpoints, hooks) was disarmed with it
      expect(await onClient("systemctl list-units --all --no-legend 'mptcp-pulumi-rollback-*'")).toBe("");
    });
  }

  it("after a completed up, a changed config whose apply fails leaves each concern as the last up left it", async () => {
    await f.sim.up(await clientCommands());
    const applied = snapshot(client);
    expect(applied).not.toBe(before);
    const changed = structuredClone(cfg);
    // (wlan's endpoint under an id of its own: the apply deletes it, then fails adding it back, where a
    // re-flag in place would be one change, nothing before it to put back)
    Object.assign(changed.hosts[1], {
      sysctl: { enabled: true, addAddrTimeout: 30 },
      endpoints: [
        { interface: "lan", flags: ["subflow"] },
        { interface: "wlan", flags: ["subflow", "backup"], id: 70 },
      ],
      routing: [{ interface: "wlan", mode: "source", table: 77, priority: 7700 }],
      services: [{ unit: "iperf3.service", mode: "godebug" }],
    });
    const cmds = await clientCommands(changed);
    for (const f of FAULTS) {
      const heal = fault(client, ...f.later, "fail");
      const r = await create(named(cmds, f.concern));
      heal();
      expect(r.code, f.concern).not.toBe(0);
      expect(r.stderr).toContain("client was put back as it was before this apply began");
      expect(snapshot(client), f.concern).toBe(applied);
    }
    // control: the same faults with the transaction off leave the host half-changed
    for (const f of FAULTS) {
      const heal = fault(client, ...f.later, "fail");
      const r = await create(named(cmds, f.concern), { noTxn: true });
      heal();
      expect(r.code, f.concern).not.toBe(0);
      expect(r.stderr).not.toContain("put back");
      expect(snapshot(client), f.concern).not.toBe(applied);
      // the completed apply puts it right again (and its confirmation disarms what it armed)
      const again = await clientCommands();
      for (const c of [named(again, f.concern), named(again, `${f.concern}-confirm`)].filter((x) => x)) {
        const ok = await create(c);
        expect(ok.code, ok.stderr).toBe(0);
      }
    }
    expect(snapshot(client)).toBe(applied);
  });
});

/** The config with the client's wlan endpoint turned into a backup one: an endpoints apply that changes the table. */
function wlanBackup(): typeof cfg {
  const changed = structuredClone(cfg);
  changed.hosts[1].endpoints[1].flags = ["subflow", "backup"];
  return changed;
}

/**
 * Starts the endpoints apply of `config` with `ip mptcp endpoint add` (a first apply) or `change`
 * (wlanBackup: re-flagged in place) stalling or hanging; resolves once the apply is in the middle.
 */
async function endpointsApplyCaught(action: "stall" | "hang", config: typeof cfg, op: "add" | "change") {
  const heal = fault(client, "ip", `mptcp endpoint ${op}`, action);
  const run = startCreate(named(await clientCommands(config), "endpoints"));
  await waitFor(`the endpoints apply to reach ip mptcp endpoint ${op}`, 10_000, () => exists(client, action === "hang" ? "/run/lab-fault.pgid" : `${STATE_DIR}/endpoints/.txn`), 100);
  return { run, heal };
}

/** Kills the hung apply and everything it started (its process group), as SIGKILL or a power cut would: no trap runs. */
const killHung = () => labSh(client, "kill -9 -$(cat /run/lab-fault.pgid)");

describe("an apply killed outright is put back by the next apply or revert on the host", () => {
  it("the SSH session cut mid-apply: the apply notices (SIGPIPE), puts the host back and exits", async () => {
    const applied = snapshot(client);
    const { run, heal } = await endpointsApplyCaught("stall", wlanBackup(), "change");
    run.child.kill("SIGKILL");
    await run.done;
    await waitFor("the cut apply to put the host back", 10_000, () => !exists(client, `${STATE_DIR}/endpoints/.txn`), 100);
    heal();
    expect(snapshot(client)).toBe(applied);
  });

  it("killed with SIGKILL (no trap runs): the check reports it, the next apply of another concern puts it back first", async () => {
    const applied = snapshot(client);
    const { run, heal } = await endpointsApplyCaught("hang", wlanBackup(), "change");
    killHung();
    await run.done;
    heal();
    // caught inside its transaction (begun: its files are there)
    expect(snapshot(client)).not.toBe(applied);
    expect(exists(client, `${STATE_DIR}/endpoints/.txn`) && exists(client, `${STATE_DIR}/endpoints/.applied.sh.new`)).toBe(true);
    const check = await checkClient();
    expect(check).toMatch(/^endpoints\|an apply of endpoints that began at \S+ was interrupted and not put back yet/m);
    // an update was killed: the stack holds the command, so it is one to replace (control for the
    // first apply killed, below)
    expect(check).not.toMatch(/^unapplied /m);
    const next = await create(named(await clientCommands(), "limits"));
    expect(next.code, next.stderr).toBe(0);
    expect(next.stdout).toMatch(/mptcp-pulumi\[client\]: endpoints: an apply that began at \S+ was interrupted: putting it back first/);
    expect(snapshot(client)).toBe(applied);
  });

  it("a first apply killed, then destroy: every revert succeeds and the host is exactly as before", async () => {
    // destroy what the last up applied, then a first endpoints apply that is killed
    await f.sim.destroy();
    expect(snapshot(client)).toBe(before);
    const cmds = await clientCommands();
    const { run, heal } = await endpointsApplyCaught("hang", cfg, "add");
    killHung();
    await run.done;
    heal();
    expect(snapshot(client)).not.toBe(before);
    // its create failed, so the stack does not hold the command: check names it unapplied (a
    // --replace of it would fail the whole up), though its state directory is there
    expect(exists(client, `${STATE_DIR}/endpoints/.txn`)).toBe(true);
    const check = await checkClient();
    expect(check).toMatch(/^unapplied endpoints$/m);
    expect(check).toMatch(/^endpoints\|no apply of endpoints by host entry client of stack mptcp\/test has completed on this host/m);
    const r = await f.ssh.run(named(cmds, "endpoints"), named(cmds, "endpoints").delete!, "delete");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/endpoints: already restored by putting back its interrupted apply/);
    expect(snapshot(client)).toBe(before);
  });
});

describe("an apply killed at the edges of its transaction (components/sh/lib/txn.sh)", () => {
  const dir = (concern: string) => `${STATE_DIR}/${concern}`;

  it("killed after the commit's rename, before its files were removed: the check reports nothing and the next apply finishes the commit instead of undoing it; control: before the rename it is put back", async () => {
    await f.sim.up(await clientCommands());
    const applied = snapshot(client);
    const cmds = await clientCommands();
    // what the commit leaves when it dies right after `mv .applied.sh.new .applied.sh`
    labSh(client, `cp ${dir("limits")}/.owners ${dir("limits")}/.txn`);
    expect(await checkClient()).not.toMatch(/interrupted/);
    const next = await create(named(cmds, "sysctl"));
    expect(next.code, next.stderr).toBe(0);
    expect(next.stdout).not.toMatch(/interrupted/);
    expect(snapshot(client)).toBe(applied);
    // control: the same, before the rename (.applied.sh.new still there): reported and put back
    labSh(client, `cp ${dir("limits")}/.owners ${dir("limits")}/.txn && cp ${dir("limits")}/.applied.sh ${dir("limits")}/.applied.sh.new`);
    expect(await checkClient()).toMatch(/^limits\|an apply of limits that began at \S+ was interrupted/m);
    const again = await create(named(cmds, "sysctl"));
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/limits: an apply that began at \S+ was interrupted: putting it back first/);
    expect(snapshot(client)).toBe(applied);
  });

  it("killed before its transaction began (its undo and text written, no .txn): nothing is put back, and destroy leaves nothing behind", async () => {
    const applied = snapshot(client);
    labSh(client, `echo 'exit 9' > ${dir("endpoints")}/.txn.undo && echo 'exit 9' > ${dir("endpoints")}/.applied.sh.new`);
    expect(snapshot(client)).not.toBe(applied);
    const next = await create(named(await clientCommands(), "limits"));
    expect(next.code, next.stderr).toBe(0);
    expect(next.stdout).not.toMatch(/interrupted/);
    await f.sim.destroy();
    expect(snapshot(client)).toBe(before);
  });
});
