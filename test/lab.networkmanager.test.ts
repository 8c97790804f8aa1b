// NetworkManager on both laptops, configured as on an Ubuntu desktop: a profile per path with a
// gateway each and connection.mptcp-flags at its default (test/fixtures/networkmanager.topology.yaml,
// scripts/lab/laptops.ts nmProfile). NetworkManager then makes MPTCP endpoints of its own, and on every
// activation or reapply deletes or re-flags the others on its interfaces. The stack owns the
// endpoints (endpointOwner defaults to mptcp-pulumi): after `pulumi up` the endpoint tables stay
// the config's through nmcli's activations and reapplies, a carrier loss and a reboot; destroy
// gives NetworkManager its configuration and its endpoints back.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isDeepStrictEqual } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { NM_CONF, requireValidConfig } from "../components";
import { LabHost, labExec, labReboot, labSh, labStackConfig } from "../scripts/lab/lab";
import { pathEnds, readTopology } from "../scripts/lab/topology";
import { sleep, waitFor } from "../scripts/lab/wait";
import { checkMain } from "../scripts/check";
import { verifyMain } from "../scripts/verify";
import { labFile } from "./harness/fixture";
import { inProcess } from "./harness/cli";
import { runProgram, StackConfig } from "./harness/program";
import { snapshot } from "./harness/labtest";

const topology = readTopology(join(__dirname, "fixtures", "networkmanager.topology.yaml"));
const dir = mkdtempSync(join(tmpdir(), "mptcp-nm-"));
const f = labFile(topology, "m");
let config: StackConfig;
let stackFile: string;
const before = new Map<string, string>();

const host = f.host;
const server = () => host("server");
const client = () => host("client");
/** The endpoint table as `ip mptcp endpoint show` prints it, kernel-made (implicit) ones left out. */
const table = (h: LabHost) =>
  labSh(h, "ip mptcp endpoint show")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !/implicit|rawflags/.test(l))
    .sort();
/** The client's wlan address: its profile's, until a test re-addresses it. */
let clientWlan = pathEnds(topology).find((e) => e.host === "client" && e.path === "wlan")!.address;
/** What the config asks for: the server announces wlan; the client's wlan endpoint (no flags) follows its address. */
const wanted = () => ({ server: [`${serverWlan()} id 5 signal dev wlan`], client: [`${clientWlan} id ${clientWlanId()} dev wlan`] });
/** The client's wlan endpoint id: derived from its interface (the config sets none). */
const clientWlanId = () => requireValidConfig(config).hosts[1].endpoints[0].id;
const serverWlan = () => (config.hosts as { endpoints: { address: string }[] }[])[0].endpoints[0].address;
const tables = () => ({ server: table(server()), client: table(client()) });
/**
 * What `read` gives once it equals `want`, or after `ms`, for the assertion that follows:
 * NetworkManager acts on its own time after nmcli returns, and its dispatcher runs our hook after
 * the change.
 */
async function eventually<T>(read: () => T, want: T, ms: number): Promise<T> {
  await waitFor("a state", ms, () => isDeepStrictEqual(read(), want), 100).catch(() => undefined);
  return read();
}
/** The endpoint tables once they are `want`, or after `ms`. */
const settle = (want = wanted(), ms = 8000) => eventually(tables, want, ms);
const check = () => inProcess("check", checkMain, [stackFile, "--identity", f.lab.privateKeyFile]);
const verify = () => inProcess("verify", verifyMain, [stackFile, "--identity", f.lab.privateKeyFile]);
const nm = (h: LabHost, args: string) => labSh(h, `nmcli ${args} >/dev/null`);
const rpFilter = (h: LabHost, iface: string) => labSh(h, `cat /proc/sys/net/ipv4/conf/${iface}/rp_filter`).trim();
/** rp_filter once it is `want`, or after 5 s. */
const rpFilterBecomes = (h: LabHost, iface: string, want: string) => eventually(() => rpFilter(h, iface), want, 5000);
const DISPATCHER = "/etc/NetworkManager/dispatcher.d/70-mptcp-pulumi";

beforeAll(async () => {
  const cfg = labStackConfig(f.lab) as { hosts: any[]; links: unknown };
  for (const h of cfg.hosts) h.hooks = true;
  // an id of its own: after a reboot NetworkManager's "id 1 subflow dev lan" once stayed beside it
  cfg.hosts[0].endpoints[0].id = 5;
  // the client: an endpoint that follows wlan's address, and source routing for it (table 120)
  Object.assign(cfg.hosts[1], { endpoints: [{ interface: "wlan", flags: [] }], routing: [{ interface: "wlan", mode: "source", table: 120 }] });
  config = cfg;
  stackFile = join(dir, "Pulumi.test.yaml");
  writeFileSync(stackFile, stringify({ config: { "mptcp:hosts": cfg.hosts, "mptcp:links": cfg.links } }));
});

afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
});

describe("NetworkManager laptops with default profiles (endpointOwner: mptcp-pulumi)", () => {
  it("before any apply, NetworkManager made subflow endpoints of its own on every path with a gateway", async () => {
    for (const h of f.lab.hosts) {
      expect(labSh(h, "systemctl is-active NetworkManager").trim()).toBe("active");
      const t = table(h);
      console.log(`${h.name} before up: ${JSON.stringify(t)}`);
      expect(t.map((l) => l.replace(/ id \d+/, ""))).toEqual(expect.arrayContaining([expect.stringMatching(/ subflow dev lan$/), expect.stringMatching(/ subflow dev wlan$/)]));
      expect(labSh(h, "nmcli -g connection.mptcp-flags connection show wlan").trim()).toBe("0x0");
    }
    // strict reverse-path filtering (Fedora's default), kept across reboots: NetworkManager relaxes it where it makes endpoints
    labSh(server(), "echo 'net.ipv4.conf.lan.rp_filter = 1' > /etc/sysctl.d/60-strict-lan.conf && sysctl -qw net.ipv4.conf.lan.rp_filter=1");
    nm(server(), "device reapply lan");
    expect(await rpFilterBecomes(server(), "lan", "2")).toBe("2");
  });

  it("negative control: NetworkManager left on re-flags a signal endpoint on its interface at a reapply (the failure this project must prevent)", async () => {
    const s = server();
    const address = serverWlan();
    labSh(
      s,
      `ip mptcp endpoint delete id "$(ip mptcp endpoint show | awk '/dev wlan/ { for (i = 1; i <= NF; i++) if ($i == "id") print $(i + 1) }')" && ip mptcp endpoint add ${address} id 9 signal dev wlan`,
    );
    expect(table(s)).toContain(`${address} id 9 signal dev wlan`);
    nm(s, "device reapply wlan");
    await sleep(300);
    const t = table(s);
    expect(t).not.toContain(`${address} id 9 signal dev wlan`);
    expect(t.some((l) => l.startsWith(`${address} `) && l.endsWith(" subflow dev wlan"))).toBe(true);
  });

  it("up: NetworkManager's endpoints go, the config's table is set, our conf.d file is in place, the profiles untouched", async () => {
    const profiles = (h: LabHost) => labSh(h, "sha256sum /etc/NetworkManager/system-connections/*");
    const p0 = f.lab.hosts.map(profiles);
    for (const h of f.lab.hosts) before.set(h.name, snapshot(h));
    const steps = await f.sim.up((await runProgram(config, { privateKey: f.privateKey })).commands);
    expect(await settle()).toEqual(wanted());
    expect(f.lab.hosts.map(profiles)).toEqual(p0);
    // NetworkManager put back the rp_filter it had relaxed (our routing never touches lan: no endpoint there)
    expect(await rpFilterBecomes(server(), "lan", "1")).toBe("1");
    for (const h of f.lab.hosts) {
      expect(labSh(h, `cat ${NM_CONF}`)).toMatch(/^\[connection-mptcp-pulumi\]\nconnection\.mptcp-flags=0x1$/m);
      expect(labSh(h, "NetworkManager --print-config")).toMatch(/connection\.mptcp-flags=0x1/);
    }
    const stdout = steps.find((s) => s.name === "server-networkmanager")?.result?.stdout ?? "";
    console.log(stdout);
    expect(stdout).toMatch(/network stack: NetworkManager 1\.\d+\.\d+, running; profiles active on: lan \(profile 'lan', connection\.mptcp-flags 0x0\) wlan/);
  });

  it("check and verify pass, and check names NetworkManager in the host's network stack", async () => {
    const c = await check();
    console.log(c.out);
    expect(c.code).toBe(0);
    expect(c.out).toMatch(/network stack: NetworkManager 1\.\d+\.\d+, running; .* default connection\.mptcp-flags 0x1/);
    expect(c.out).toMatch(/^server: in step\n(  network stack: .*\n)*  network stack: NetworkManager on the endpoint interfaces: wlan \(connected\)$/m);
    const v = await verify();
    console.log(v.out);
    expect(v.code).toBe(0);
  });

  it("with our dispatcher script disabled too, NetworkManager's activations and reapplies leave the tables and rp_filter exactly as they are (the conf.d file alone keeps it off)", async () => {
    for (const h of f.lab.hosts) labSh(h, `chmod -x ${DISPATCHER}`);
    try {
      for (const action of ["device reapply wlan", "connection up wlan", "device reapply lan", "connection up lan"]) {
        for (const h of f.lab.hosts) nm(h, action);
        await sleep(1000);
        expect(tables(), action).toEqual(wanted());
        expect(rpFilter(server(), "lan"), action).toBe("1");
      }
    } finally {
      for (const h of f.lab.hosts) labSh(h, `chmod +x ${DISPATCHER}`);
    }
  });

  for (const action of ["connection up lan", "connection up wlan", "device reapply lan", "device reapply wlan"]) {
    it(`nmcli ${action} on both laptops: the endpoint tables stay the config's`, async () => {
      for (const h of f.lab.hosts) nm(h, action);
      await sleep(500);
      expect(await settle()).toEqual(wanted());
    });
  }

  it("an event on an interface without endpoints (the server's lan) repairs another's: the signal endpoint deleted by hand comes back at `nmcli device reapply lan`", async () => {
    const s = server();
    labSh(s, "ip mptcp endpoint delete id 5");
    await sleep(1500);
    // control: nothing else puts it back
    expect(table(s)).toEqual([]);
    nm(s, "device reapply lan");
    expect(await settle()).toEqual(wanted());
  });

  it("a profile re-addresses the client's wlan: NetworkManager's dispatcher runs our hook, and the endpoint and source rule follow", async () => {
    const c = client();
    const file = "/etc/NetworkManager/system-connections/wlan.nmconnection";
    const original = labSh(c, `cat ${file}`);
    const readdress = (a: string) => nm(c, `connection modify wlan ipv4.addresses ${a}/28 ipv4.gateway 198.51.100.17 && nmcli connection up wlan`);
    const rulesFrom = (a: string) =>
      labSh(c, "ip -4 rule show")
        .split("\n")
        .filter((l) => l.includes(`from ${a} lookup 120`)).length;
    try {
      readdress("198.51.100.20");
      clientWlan = "198.51.100.20";
      expect(await settle()).toEqual(wanted());
      // the hook sets the rule after the endpoint
      const rules = await eventually(() => rulesFrom("198.51.100.20"), 1, 3000);
      console.log(labSh(c, "ip -4 rule show; ip -4 route show table 120"));
      expect(rules).toBe(1);
      expect(rulesFrom("198.51.100.18")).toBe(0);
      // negative control: with our dispatcher script disabled, nothing else (not the ifupdown bridge) moves the endpoint
      labSh(c, `chmod -x ${DISPATCHER}`);
      readdress("198.51.100.21");
      await sleep(2000);
      expect(labSh(c, "ip -br -4 addr show wlan")).toContain("198.51.100.21");
      expect(table(c)).toEqual([`198.51.100.20 id ${clientWlanId()} dev wlan`]);
    } finally {
      labSh(c, `chmod +x ${DISPATCHER}`);
      labExec(c, `cat > ${file} && chmod 600 ${file} && nmcli connection reload && nmcli connection up wlan >/dev/null`, original);
    }
    clientWlan = pathEnds(topology).find((e) => e.host === "client" && e.path === "wlan")!.address;
    expect(await settle()).toEqual(wanted());
    expect(await eventually(() => rulesFrom(clientWlan), 1, 3000)).toBe(1);
  });

  it("after all of that, check and verify still pass", async () => {
    expect((await check()).code).toBe(0);
    expect((await verify()).code).toBe(0);
  });

  it("an 8 s carrier loss on the server's wlan (NetworkManager deactivates it after about 6 s): the signal endpoint is back when it returns, verify passes", async () => {
    labSh(client(), "ip link set wlan down");
    await sleep(8000);
    const during = table(server());
    labSh(client(), "ip link set wlan up");
    console.log(`server's table during the outage: ${JSON.stringify(during)}`);
    expect(during).toEqual([]);
    expect(await settle(wanted(), 15_000)).toEqual(wanted());
    expect((await verify()).code).toBe(0);
  });

  it("a reboot of both laptops: NetworkManager reads our conf.d file and the boot unit restores the table; check and verify pass", async () => {
    await labReboot(f.lab, ["server", "client"]);
    expect(await settle(wanted(), 15_000)).toEqual(wanted());
    expect((await check()).code).toBe(0);
    expect((await verify()).code).toBe(0);
  });

  it("a profile given MPTCP flags of its own: check names it, and an apply is refused before any change, naming the profile and the way out", async () => {
    const c = client();
    const file = "/etc/NetworkManager/system-connections/wlan.nmconnection";
    const original = labSh(c, `cat ${file}`);
    nm(c, "connection modify wlan connection.mptcp-flags subflow");
    nm(c, "connection up wlan");
    try {
      const r = await check();
      console.log(r.out);
      expect(r.code).toBe(1);
      expect(r.out).toMatch(/mptcp:hosts\[1\]\.endpointOwner: NetworkManager profile 'wlan' on wlan sets connection\.mptcp-flags 0x\w+: NetworkManager manages MPTCP endpoints there/);
      // the apply run by hand, as pulumi up runs it (NetworkManager settings first, then the lock)
      const apply = (await runProgram(config, { privateKey: f.privateKey })).commands.find((x) => x.name === "client-networkmanager")!.create!;
      const snap = snapshot(c);
      const a = labExec(c, apply);
      expect(a.code).toBe(1);
      expect(a.stderr).toMatch(
        /mptcp-pulumi\[client\]: error: endpointOwner: NetworkManager manages MPTCP endpoints here: profile 'wlan' on wlan sets connection\.mptcp-flags 0x\w+; .*\(nmcli connection modify PROFILE connection\.mptcp-flags 0\)/,
      );
      expect(snapshot(c)).toEqual(snap);
    } finally {
      labExec(c, `cat > ${file} && chmod 600 ${file} && nmcli connection reload && nmcli connection up wlan >/dev/null`, original);
    }
    expect(await settle(wanted(), 15_000)).toEqual(wanted());
    expect((await check()).code).toBe(0);
  });

  it("destroy: NetworkManager's configuration byte for byte, and its own endpoints back with their ids", async () => {
    await f.sim.destroy();
    // ids included: the revert gives NetworkManager's endpoints back as they were, and it keeps them
    // (NetworkManager relaxes rp_filter again on its own time: up to 5 s)
    for (const h of f.lab.hosts) expect(await eventually(() => snapshot(h), before.get(h.name)!, 5000), h.name).toEqual(before.get(h.name));
  });
});

describe("endpointOwner: networkmanager leaves NetworkManager's endpoints alone", () => {
  it("up writes no conf.d file on that laptop and keeps NetworkManager's endpoints; check names them as NetworkManager's; destroy restores the snapshot", async () => {
    const cfg = structuredClone(config) as { hosts: any[]; links: unknown };
    Object.assign(cfg.hosts[1], { endpointOwner: "networkmanager", endpoints: [], routing: [] });
    const file = join(dir, "Pulumi.owner.yaml");
    writeFileSync(file, stringify({ config: { "mptcp:hosts": cfg.hosts, "mptcp:links": cfg.links } }));
    const snap = snapshot(client());
    const nmTable = table(client());
    expect(nmTable.some((l) => / subflow dev (lan|wlan)$/.test(l))).toBe(true);
    const steps = await f.sim.up((await runProgram(cfg, { privateKey: f.privateKey, stack: "owner" })).commands);
    expect(steps.map((s) => s.name)).not.toContain("client-networkmanager");
    expect(labExec(client(), `test -e ${NM_CONF}`).code).not.toBe(0);
    await sleep(500);
    expect(table(client())).toEqual(nmTable);
    const c = await inProcess("check", checkMain, [file, "--identity", f.lab.privateKeyFile]);
    console.log(c.out);
    expect(c.code).toBe(0);
    expect(c.out).toMatch(/^client: in step\n(  network stack: .*\n)*  network stack: MPTCP endpoints: NetworkManager's \(endpointOwner: networkmanager\)/m);
    await f.sim.destroy();
    expect(snapshot(client())).toEqual(snap);
  });
});
