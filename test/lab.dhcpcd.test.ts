// dhcpcd itself drives our dhcpcd hook: the client laptop is a fresh Debian 13 laptop whose paths
// dhcpcd configures (topology `network: dhcpcd`), leased by isc-dhcp-server on the server laptop.
// The server's pool moves, dhcpcd rebinds (the old lease expires, a new one comes), and dhcpcd-run-hooks sources
// /usr/lib/dhcpcd/dhcpcd-hooks/90-mptcp-pulumi, which moves the endpoint and the source rule; the
// source table holds dhcpcd's `proto dhcp` subnet route and the default route; npm run check finds
// no drift and npm run verify passes. Control: the same move without our hook leaves the endpoint
// and rule on the old address. Destroy leaves the laptop as it was.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { requireValidConfig } from "../components";
import { labExec, labSh, labStackConfig } from "../scripts/lab/lab";
import { DEFAULT_TOPOLOGY, Topology } from "../scripts/lab/topology";
import { waitFor } from "../scripts/lab/wait";
import { checkMain } from "../scripts/check";
import { verifyMain } from "../scripts/verify";
import { inProcess } from "./harness/cli";
import { labFile } from "./harness/fixture";
import { runProgram, StackConfig } from "./harness/program";
import { endpoints, snapshot } from "./harness/labtest";

const topology: Topology = { ...DEFAULT_TOPOLOGY, hosts: [DEFAULT_TOPOLOGY.hosts[0], { ...DEFAULT_TOPOLOGY.hosts[1], network: "dhcpcd" }] };
const HOOK = "/usr/lib/dhcpcd/dhcpcd-hooks/90-mptcp-pulumi";
const DHCPD_CONF = "/etc/dhcp/mptcp-lab-dhcpd.conf";
const dir = mkdtempSync(join(tmpdir(), "mptcp-dhcpcd-"));
const f = labFile(topology, "d");
let config: StackConfig;
let stackFile: string;
let pre: string;

const server = () => f.lab.hosts[0];
const client = () => f.lab.hosts[1];
const sh = (script: string) => labSh(client(), script);
const wlanEndpoint = () => endpoints(client()).find((e) => e.dev === "wlan")?.address;
const rulesFrom = (address: string) =>
  sh("ip -4 rule show")
    .split("\n")
    .filter((l) => l.includes(`from ${address} lookup 120`)).length;
const table = () => sh("ip -4 route show table 120 2>/dev/null || true");
const wlanAddress = () => /inet (198\.51\.100\.\d+)\//.exec(sh("ip -4 -o addr show dev wlan scope global -tentative"))?.[1];
const cli = (tool: "check" | "verify") => inProcess(tool, tool === "check" ? checkMain : verifyMain, [stackFile, "--identity", f.lab.privateKeyFile]);

/**
 * The server leases `address` on wlan from now on, and the client's dhcpcd rebinds: dhcpd does not
 * answer for the old address, the lease expires (EXPIRE), dhcpcd asks again (DISCOVER) and binds
 * the new one (BOUND). SIGHUP is `dhcpcd -n` for every interface: dhcpcd 9.4.1 (Debian 12, whose
 * userland the lab runs) serves only the first control command of its life (dhcpcd issue #168).
 * Returns ms until dhcpcd holds the address.
 */
async function moveLease(address: string): Promise<number> {
  labSh(server(), `sed -i '/# wlan:/,/}/ s/range .*;/range ${address} ${address};/' ${DHCPD_CONF} && systemctl restart mptcp-lab-dhcpd.service`);
  const t0 = performance.now();
  sh("kill -HUP $(cat /run/dhcpcd/pid)");
  await waitFor(`dhcpcd to get ${address} on wlan`, 30_000, () => wlanAddress() === address, 100).catch((e: Error) => {
    throw new Error(`${e.message}: ${sh("ip -4 -o addr show dev wlan")}`);
  });
  return performance.now() - t0;
}

/** Waits until the endpoint, the rule and table 120 are on `address`; returns ms. */
async function routingOn(address: string, ms = 10_000): Promise<number> {
  const t0 = performance.now();
  const settled = () => wlanEndpoint() === address && rulesFrom(address) === 1 && table().includes(`198.51.100.16/28 dev wlan scope link src ${address}`);
  await waitFor(`routing on ${address}`, ms, settled, 100).catch(() => undefined);
  return performance.now() - t0;
}

beforeAll(async () => {
  const cfg = labStackConfig(f.lab) as { hosts: any[]; links: any[] };
  Object.assign(cfg.hosts[1], { hooks: true, endpoints: [{ interface: "wlan", flags: [] }], routing: [{ interface: "wlan", mode: "source", table: 120 }] });
  config = cfg;
  stackFile = join(dir, "Pulumi.lab.yaml");
  writeFileSync(stackFile, stringify({ config: { "mptcp:hosts": cfg.hosts, "mptcp:links": cfg.links } }));
  pre = snapshot(client());
});

afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
});

describe("dhcpcd on a lab laptop runs our dhcpcd hook", () => {
  it("dhcpcd leased the client its topology addresses from the server's dhcpd; its routes are proto dhcp", () => {
    expect(sh("systemctl is-active dhcpcd.service").trim()).toBe("active");
    expect(labSh(server(), "systemctl is-active mptcp-lab-dhcpd.service").trim()).toBe("active");
    const routes = sh("ip -4 route show dev wlan");
    console.log(`client wlan routes after the lease:\n${routes}`);
    expect(routes).toMatch(/^198\.51\.100\.16\/28 proto dhcp scope link src 198\.51\.100\.18 /m);
    expect(routes).toMatch(/^default via 198\.51\.100\.17 proto dhcp src 198\.51\.100\.18 /m);
    // the kernel's prefix route is not there (dhcpcd adds its addresses with noprefixroute)
    expect(sh("ip -4 route show dev wlan proto kernel")).toBe("");
    // dhcpcd leaves the management link alone
  });

  it("up installs our hook in dhcpcd's hook directory; the source table holds the proto dhcp subnet route and the default route", async () => {
    await f.sim.up((await runProgram(config, { privateKey: f.privateKey, stack: "lab" })).commands);
    expect(sh(`ls -l ${HOOK}`)).toMatch(/^-rw-r--r-- /);
    expect(wlanEndpoint()).toBe("198.51.100.18");
    expect(rulesFrom("198.51.100.18")).toBe(1);
    expect(table()).toContain("198.51.100.16/28 dev wlan scope link src 198.51.100.18");
    expect(table()).toContain("default via 198.51.100.17 dev wlan");
    const check = await cli("check");
    expect(check.code, check.out).toBe(0);
  });

  it("the lease moves to another address: dhcpcd's hook moves the endpoint, the rule and the table; check finds no drift; verify passes", async () => {
    const leased = await moveLease("198.51.100.25");
    const took = await routingOn("198.51.100.25");
    console.log(`rebind (SIGHUP): new lease in ${leased.toFixed(0)} ms; endpoint, rule and table on it ${took.toFixed(0)} ms later`);
    expect(wlanEndpoint()).toBe("198.51.100.25");
    expect(rulesFrom("198.51.100.25")).toBe(1);
    expect(rulesFrom("198.51.100.18")).toBe(0);
    const t = table();
    console.log(`table 120:\n${t}`);
    expect(t).toContain("198.51.100.16/28 dev wlan scope link src 198.51.100.25");
    expect(t).toContain("default via 198.51.100.17 dev wlan");
    // the old lease expired before the new one came
    expect(sh("journalctl -b -u dhcpcd.service --no-pager -o cat")).toMatch(/wlan: DHCP lease expired/);
    const check = await cli("check");
    expect(check.code, check.out).toBe(0);
    const verify = await cli("verify");
    console.log(verify.out);
    expect(verify.code, verify.out).toBe(0);
  });

  it("negative control: the same move with our hook removed leaves the endpoint and the rule on the old address, and check reports it", async () => {
    sh(`mv ${HOOK} /run/90-mptcp-pulumi.away`);
    try {
      await moveLease("198.51.100.26");
      // what the hook would have done by now (above: well under a second)
      await routingOn("198.51.100.26", 2000);
      expect(wlanEndpoint()).toBe("198.51.100.25");
      expect(rulesFrom("198.51.100.25")).toBe(1);
      expect(rulesFrom("198.51.100.26")).toBe(0);
      console.log(`without our hook, table 120:\n${table() || "(empty)"}`);
      expect(table()).not.toContain("src 198.51.100.26");
      const check = await cli("check");
      console.log(check.out);
      expect(check.code).toBe(1);
      expect(check.out).toContain(`endpoint not in the config: 198.51.100.25 id ${requireValidConfig(config).hosts[1].endpoints[0].id} dev wlan`);
      expect(check.out).toContain('wlan: no ip -4 rule "from 198.51.100.26 lookup 120" at priority 1120');
    } finally {
      sh(`mv /run/90-mptcp-pulumi.away ${HOOK}`);
    }
    // with the hook back, dhcpcd's next event (a rebind of the same lease) brings it in line
    sh("kill -HUP $(cat /run/dhcpcd/pid)");
    await routingOn("198.51.100.26");
    expect(wlanEndpoint()).toBe("198.51.100.26");
    expect(rulesFrom("198.51.100.26")).toBe(1);
  });

  it("the lease back on its first address, destroy leaves the laptop exactly as before (dhcpcd's hook directory too)", async () => {
    await moveLease("198.51.100.18");
    await routingOn("198.51.100.18");
    expect(wlanEndpoint()).toBe("198.51.100.18");
    expect(sh("ip -4 -o addr show dev mgmt")).not.toContain("169.254.");
    await f.sim.destroy();
    expect(labExec(client(), `test -e ${HOOK}`).code).not.toBe(0);
    expect(snapshot(client())).toBe(pre);
  });
});
