// Who manages a machine (components/sh/lib/owners.sh). Renaming a host entry creates the new
// name's commands and deletes the old name's at the end of the same update; the old reverts must
// leave the host to the new name, not put it back under it. A second stack reaching a machine
// the first manages is refused before anything changes. (Two entries with one SSH target in one
// stack are a validation error: test/validate.test.ts.)
import { beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { renderCheck, requireValidConfig, STATE_DIR, wrapScript } from "../components";
import { LabHost, labSh, labStackConfig, mgmtAddresses, portOpen, SLOT_SIZE } from "../scripts/lab/lab";
import { waitFor } from "../scripts/lab/wait";
import { runSync } from "../scripts/lab/spawner";
import { DEFAULT_TOPOLOGY } from "../scripts/lab/topology";
import { labFile } from "./harness/fixture";
import { runProgram } from "./harness/program";
import { CommandProviderSim } from "./harness/provider";
import { endpoints, hostState, limits, snapshot, unstaged } from "./harness/labtest";

// one connection per command, as the provider: a host whose address moves must fail to connect
const f = labFile(DEFAULT_TOPOLOGY, "i", { reuseSsh: false });
let server: LabHost;
let cfg: { hosts: any[]; links: any[] };
let pre: string;

beforeAll(async () => {
  server = f.host("server");
  cfg = labStackConfig(f.lab) as typeof cfg;
  pre = snapshot(server);
});

/** The server's live state, without what names the entry (our state directory, our sysctl.d file's header, the copied scripts). */
const live = () =>
  snapshot(server, { staged: false })
    .split("\n")
    .filter((l) => !l.includes(STATE_DIR) && !l.startsWith("sha256 /etc/sysctl.d/99-mptcp-pulumi.conf"))
    .join("\n");

/** The drift check (npm run check's script) of config c's first host as stack mptcp/test, run on the server: its output. */
async function checkServer(c: typeof cfg): Promise<string> {
  const host = requireValidConfig(c).hosts[0];
  const r = await f.ssh.run(
    (f.sim.state.get("server-limits") ?? f.sim.state.get("srv-limits"))!,
    wrapScript(renderCheck({ ...host, stack: "mptcp/test" }), { user: "root", host: host.name }),
    "create",
  );
  expect(r.code, r.stderr).toBe(0);
  return r.stdout;
}

function renamed(): typeof cfg {
  const c = structuredClone(cfg);
  c.hosts[0].name = "srv";
  for (const l of c.links) if (l.server === "server") l.server = "srv";
  return c;
}

describe("identity: who manages a machine", () => {
  it("renaming a host entry: the new name's applies take over, the old name's reverts leave the host to it, destroy restores", async () => {
    await f.sim.up((await runProgram(cfg, { privateKey: f.privateKey })).commands);
    const applied = live();
    const wanted = { subflows: cfg.hosts[0].limits.subflows, addAddrAccepted: cfg.hosts[0].limits.addAddrAccepted };
    expect(limits(server)).toEqual(wanted);
    // before the renamed up: the new name has applied nothing here, so npm run check names every
    // concern unapplied (the stack holds none of its commands yet); the old name's check, none
    expect(await checkServer(cfg)).not.toMatch(/unapplied/);
    const before = await checkServer(renamed());
    expect(before.match(/^unapplied \w+$/gm)).toEqual(["unapplied sysctl", "unapplied limits", "unapplied networkmanager", "unapplied endpoints"]);
    expect(before).toMatch(/^limits\|no apply of limits by host entry srv of stack mptcp\/test has completed on this host/m);
    const steps = await f.sim.up((await runProgram(renamed(), { privateKey: f.privateKey })).commands);
    const deletes = steps.filter((s) => s.phase === "delete");
    expect(deletes.map((s) => s.name).sort()).toEqual([
      "server-anchor",
      "server-endpoints",
      "server-endpoints-confirm",
      "server-limits",
      "server-networkmanager",
      "server-scripts",
      "server-scripts-cleanup",
      "server-sysctl",
    ]);
    // the old name's deletes ran after the new name's creates, and each left the host alone
    const lastCreate = steps.map((s) => `${s.phase} ${s.name}`).lastIndexOf("create srv-endpoints-confirm");
    expect(steps.findIndex((s) => s.phase === "delete")).toBeGreaterThan(lastCreate);
    for (const d of deletes.filter((s) => !/-(confirm|anchor|scripts|scripts-cleanup)$/.test(s.name)))
      expect(d.result!.stdout, d.name).toMatch(/still managed by srv \(stack mptcp\/test\): left as it is/);
    // the old name's anchor, deleted last of its scripts, finds nothing of the old name left; then
    // its copied scripts go (the new name's are in a directory of their own)
    expect(deletes.slice(-3).map((s) => s.name)).toEqual(["server-anchor", "server-scripts-cleanup", "server-scripts"]);
    expect(deletes.at(-3)!.result!.stdout).toMatch(/nothing of host entry server is applied here/);
    expect(labSh(server, "ls /root/.mptcp-pulumi").trim()).toBe("mptcp.test.srv");
    expect(live()).toBe(applied);
    expect(limits(server)).toEqual(wanted);
    expect(endpoints(server).map((e) => e.address)).toEqual(cfg.hosts[0].endpoints.map((e: { address: string }) => e.address));
    expect(await checkServer(renamed())).not.toMatch(/unapplied/);
    await f.sim.destroy();
    expect(snapshot(server)).toBe(pre);
  });

  it("control: the old name's revert with no other manager recorded puts the limits back under the new name (what a rename did before)", async () => {
    const limitsOf = async (c: typeof cfg) => (await runProgram(c, { privateKey: f.privateKey })).commands.find((x) => x.name.endsWith("-limits") && x.name.startsWith(c.hosts[0].name))!;
    const [old, now] = [await limitsOf(cfg), await limitsOf(renamed())];
    for (const c of [old, now]) expect((await f.ssh.run(c, c.create!, "create")).code).toBe(0);
    const wanted = { subflows: cfg.hosts[0].limits.subflows, addAddrAccepted: cfg.hosts[0].limits.addAddrAccepted };
    expect(limits(server)).toEqual(wanted);
    labSh(server, `sed -i '/|srv|/d' ${STATE_DIR}/limits/.owners`);
    const r = await f.ssh.run(old, old.delete!, "delete");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/limits restored/);
    expect(limits(server)).not.toEqual(wanted);
    expect(snapshot(server)).toBe(pre);
  });

  it("a second stack reaching a machine the first manages is refused before anything changes, naming the stack", async () => {
    await f.sim.up((await runProgram(cfg, { privateKey: f.privateKey })).commands);
    const before = snapshot(server);
    const other = new CommandProviderSim(f.ssh.run);
    const cmds = (await runProgram(cfg, { privateKey: f.privateKey, stack: "other" })).commands.filter((c) => c.name.startsWith("server-"));
    await expect(other.up(cmds)).rejects.toThrow(
      /create of server-sysctl failed \(exit 1\):\nmptcp-pulumi\[server\]: error: this machine's sysctl is managed by stack mptcp\/test \(its host entry server, through root@[\d.]+:22\), and two stacks must not manage one machine/,
    );
    // nothing changed but the other stack's copied scripts (a directory of its own), which its destroy removes
    expect(hostState(server)).toBe(unstaged(before));
    expect(labSh(server, "ls /root/.mptcp-pulumi").trim().split("\n")).toEqual(["mptcp.other.server", "mptcp.test.server"]);
    await other.destroy();
    expect(snapshot(server)).toBe(before);
    await f.sim.destroy();
    expect(snapshot(server)).toBe(pre);
  });

  it("ssh.host moves (same laptop, new address): the old address's revert fails naming it; after pulumi state delete of the host's commands, up at the new address keeps the saved originals and destroy restores them", async () => {
    // The laptop also answers at a second address (the last /31 of this lab's slot, unused by a two-laptop lab).
    const old = mgmtAddresses(f.lab.slots[0], SLOT_SIZE - 1);
    const oldRe = old.host.replace(/\./g, "\\.");
    const root = (args: string[]) => expect(runSync("ip", args), args.join(" ")).toMatchObject({ code: 0 });
    // this machine's route and address, taken away after the test even if it times out (its
    // finally would never run) and, first, if an earlier run that timed out left them
    const cleanup = () => {
      runSync("ip", ["route", "del", "unreachable", `${old.host}/32`]);
      runSync("ip", ["addr", "del", `${old.root}/31`, "dev", server.mgmtLink]);
    };
    cleanup();
    onTestFinished(cleanup);
    root(["addr", "add", `${old.root}/31`, "dev", server.mgmtLink]);
    try {
      labSh(
        server,
        `ip addr add ${old.host}/31 dev mgmt
echo 'ListenAddress ${old.host}' >> /etc/ssh/mptcp-lab/sshd_config
systemctl restart mptcp-lab-sshd`,
      );
      // systemctl returns once sshd is started, not once it listens: under load the first
      // connection to the new address was refused
      await waitFor(`sshd of server on ${old.host}:22`, 10_000, () => portOpen(old.host, 22));
      const oldCfg = structuredClone(cfg);
      oldCfg.hosts[0].ssh.host = old.host;
      await f.sim.up((await runProgram(oldCfg, { privateKey: f.privateKey })).commands);
      expect(labSh(server, `cat ${STATE_DIR}/limits/.owners`)).toContain(`|server|root@${old.host}:22`);
      // The laptop moves: the old address is gone. This machine answers a dial to it with
      // "unreachable" (without the route the dial would leave by the machine's uplink).
      labSh(server, `ip addr del ${old.host}/31 dev mgmt`);
      root(["route", "add", "unreachable", `${old.host}/32`]);
      const applied = live();
      const moved = (await runProgram(cfg, { privateKey: f.privateKey })).commands;
      // the provider dials 11 times (connection.go v1.2.1 dialWithRetry), then says so
      await expect(f.sim.up(moved)).rejects.toThrow(new RegExp(`delete of server-\\w+ failed \\(exit 255\\):\\nafter 10 failed attempts: dial tcp ${oldRe}:22: `));
      expect(live()).toBe(applied);
      // control: without the way out, the next up fails the same way (the stack still holds the old address's reverts)
      await expect(f.sim.up(moved)).rejects.toThrow(new RegExp(`after 10 failed attempts: dial tcp ${oldRe}:22: `));
      // The way out (README): pulumi state delete each of the host's commands (their reverts never run), then up.
      const dropped = [...f.sim.state.keys()].filter((n) => n.startsWith("server-"));
      expect(dropped.length).toBeGreaterThan(0);
      for (const n of dropped) f.sim.state.delete(n);
      await f.sim.up(moved);
      expect(live()).toBe(applied);
      expect(labSh(server, `cat ${STATE_DIR}/limits/.owners`).trim()).toBe(`mptcp/test|server|root@${server.mgmtAddress}:22`);
      // the originals saved by the first apply at the old address are the ones destroy restores
      await f.sim.destroy();
      expect(snapshot(server)).toBe(pre);
    } finally {
      cleanup();
    }
  });
});
