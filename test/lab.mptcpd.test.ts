// mptcpd on a laptop: the client boots with mptcpd (Debian's mptcp.service) enabled. mptcpd sets
// ip mptcp limits and adds endpoints itself after address events, so it would undo ours: an apply
// that sets limits or endpoints there fails before it changes anything, naming the host, the
// config path and the way out; npm run check reports it; the hooks' boot run refuses too. After
// `systemctl disable --now mptcp.service` the same up succeeds. Negative control: the same apply
// with the refusal taken out succeeds, and the next address event has mptcpd rewrite its limits
// (it runs after the refusals: mptcpd keeps acting for a while after an event).
import { beforeAll, describe, expect, it } from "vitest";
import { renderCheck, renderSyncScript, requireValidConfig } from "../components";
import { LabHost, labExec, labSh, labStackConfig } from "../scripts/lab/lab";
import { DEFAULT_TOPOLOGY, Topology } from "../scripts/lab/topology";
import { waitFor } from "../scripts/lab/wait";
import { labFile } from "./harness/fixture";
import { runProgram, StackConfig } from "./harness/program";
import { hostState, limits, snapshot, unstaged } from "./harness/labtest";

const topology: Topology = { ...DEFAULT_TOPOLOGY, hosts: [DEFAULT_TOPOLOGY.hosts[0], { ...DEFAULT_TOPOLOGY.hosts[1], mptcpd: true }] };
const WAY_OUT = "systemctl disable --now mptcp.service";
const f = labFile(topology, "d");
let config: StackConfig;

const client = (): LabHost => f.lab.hosts[1];
const sh = (script: string) => labSh(client(), script);
const clientModel = () => requireValidConfig(config).hosts.find((h) => h.name === "client")!;
const mptcpdPid = () => sh('for p in /proc/[0-9]*/comm; do read -r c < $p 2>/dev/null && [ "$c" = mptcpd ] && { p=${p%/comm}; echo ${p#/proc/}; }; done; true').trim();

/** The client's snapshot once mptcpd has stopped changing it (two in a row 1 s apart equal). */
async function settled(): Promise<string> {
  let last = snapshot(client());
  for (let i = 0; i < 10; i++) {
    await new Promise((r) => setTimeout(r, 1000));
    const now = snapshot(client());
    if (now === last) return now;
    last = now;
  }
  throw new Error("the client's state keeps changing");
}

/** An address event on wlan (as a DHCP lease would bring): mptcpd acts on new addresses. */
function addressEvent(): void {
  sh("ip addr add 198.51.100.20/28 dev wlan && ip addr del 198.51.100.20/28 dev wlan");
}

beforeAll(async () => {
  const cfg = labStackConfig(f.lab) as { hosts: any[]; links: unknown };
  // limits, endpoints and hooks only: nothing the config sets on the client comes before limits
  const c = cfg.hosts.find((h) => h.name === "client");
  delete c.sysctl;
  Object.assign(c, { hooks: true, limits: { subflows: 2, addAddrAccepted: 2 }, endpoints: [{ interface: "wlan", flags: [] }] });
  config = cfg;
  await waitFor("mptcpd on the client (it needs the packages mptcpd and mptcpd-plugins on this machine)", 10_000, () => labExec(client(), "systemctl is-active -q mptcp.service").code === 0);
  // mptcpd acts on its own on the paths' IPv6 link-local addresses once DAD is over (it adds
  // endpoints for those it hears of and raises the limits): wait for DAD, then for it to be still
  await waitFor("DAD of the client's link-local addresses", 10_000, () => sh("ip -6 addr show scope link tentative") === "");
  await settled();
});

describe("a laptop that runs mptcpd", () => {
  it("pulumi up fails at the limits before changing anything, naming the host, the config path and the way out", async () => {
    const before = await settled();
    const err = await f.sim.up((await runProgram(config, { privateKey: f.privateKey })).commands).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err?.message).toContain("mptcp-pulumi[client]: error: limits: nothing was changed: mptcpd manages MPTCP on this host (mptcp.service is enabled, mptcpd runs (pid");
    expect(err?.message).toContain(WAY_OUT);
    expect(err?.message).toContain("leave limits and endpoints out of this host's config");
    console.log(err?.message.split("\n").slice(0, 2).join("\n"));
    // nothing changed but the scripts the copy delivered to root's home, which destroy removes
    expect(hostState(client())).toBe(unstaged(before));
    await f.sim.destroy();
    expect(snapshot(client())).toBe(before);
  });

  it("the endpoints apply on its own, and the hooks' boot run, refuse too, and change nothing", async () => {
    const before = await settled();
    const cmd = (await runProgram(config, { privateKey: f.privateKey })).commands.find((x) => x.name === "client-endpoints")!;
    const r = await f.ssh.run(cmd, cmd.create!, "create");
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("mptcp-pulumi[client]: error: endpoints: nothing was changed: mptcpd manages MPTCP on this host");
    const boot = labExec(client(), "sh -s boot", renderSyncScript(clientModel()));
    expect(boot.code).not.toBe(0);
    expect(boot.stderr).toContain("mptcp-pulumi[client]: error: limits: nothing was changed");
    // the boot run takes the host lock before it looks: the lock file is all it leaves
    sh("rm -f /run/mptcp-pulumi.lock");
    expect(snapshot(client())).toBe(before);
  });

  it("npm run check reports it, for the limits and for the endpoints", () => {
    const out = sh(renderCheck(clientModel()));
    expect(out).toMatch(/^limits\|mptcpd manages MPTCP on this host \(mptcp\.service is enabled, mptcpd runs/m);
    expect(out).toMatch(/^endpoints\|mptcpd manages MPTCP on this host/m);
  });

  it("negative control: an apply of the limits without the refusal succeeds, and the next address event has mptcpd rewrite them", async () => {
    const cmd = (await runProgram(config, { privateKey: f.privateKey })).commands.find((x) => x.name === "client-limits")!;
    // the calls of mptcpd_refuse taken out (its definition stays)
    const unguarded = cmd.create!.replace(/^(\s*)mptcpd_refuse "limits"$/gm, "$1:");
    expect(unguarded).not.toBe(cmd.create);
    const r = await f.ssh.run(cmd, unguarded, "create");
    expect(r.code, r.stderr).toBe(0);
    expect(limits(client())).toEqual({ subflows: 2, addAddrAccepted: 2 });
    addressEvent();
    await waitFor("mptcpd to rewrite the limits", 5000, () => limits(client()).addAddrAccepted !== 2 || limits(client()).subflows !== 2);
    await new Promise((r) => setTimeout(r, 500)); // its handling of the deletion too
    console.log(`after an address event, mptcpd (pid ${mptcpdPid()}) left: ${sh("ip mptcp limits show").trim()}; endpoints: ${sh("ip mptcp endpoint show").trim().replace(/\n/g, "; ")}`);
    // our revert puts back the limits it found (mptcpd may act again later: the tests that
    // compare snapshots ran before this one, or run after mptcpd is stopped)
    expect((await f.ssh.run(cmd, cmd.delete!, "delete")).code).toBe(0);
    expect(sh("ls /var/lib/mptcp-pulumi 2>&1 || true")).toContain("No such file");
  });

  it(`after ${WAY_OUT}, the same up succeeds, check has no mptcpd line, and an address event leaves our limits; destroy restores the laptop`, async () => {
    sh(WAY_OUT);
    expect(mptcpdPid()).toBe("");
    const before = snapshot(client());
    await f.sim.up((await runProgram(config, { privateKey: f.privateKey })).commands);
    expect(limits(client())).toEqual({ subflows: 2, addAddrAccepted: 2 });
    // the network stack lines name it (installed here), the differences do not
    const out = sh(renderCheck(clientModel()));
    expect(out).toContain("stack mptcpd installed, not enabled and not running");
    expect(
      out
        .split("\n")
        .filter((l) => !l.startsWith("stack "))
        .join("\n"),
    ).not.toContain("mptcpd");
    addressEvent();
    await new Promise((r) => setTimeout(r, 1000));
    expect(limits(client())).toEqual({ subflows: 2, addAddrAccepted: 2 });
    await f.sim.destroy();
    expect(snapshot(client())).toBe(before);
  });
});
