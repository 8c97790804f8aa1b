// State that survives interface events, address changes and reboots, on laptops that boot
// systemd. Real ifupdown (ifup/ifdown run our hooks), the dhclient hook and the NetworkManager
// dispatcher script invoked as their callers do, a real reboot (PID and network namespaces
// recreated, disk kept, systemd boots again and our unit runs), joins after a path comes back,
// 5 flaps in a row, concurrent hooks during an apply, then destroy.
// The server laptop has strict rp_filter (all = 1, from its own sysctl.d): the hooks make its
// wlan loose and destroy restores it. That shows the setting is made and undone, not that these
// joins need it: with two connected subnets, strict filtering passes them (IPReversePathFilter 0).
import { beforeAll, describe, expect, it } from "vitest";
import { expectedJoins, HostModel, LOCK_FILE, Model, requireValidConfig, SYNC_PATH } from "../components";
import { dialAddress, LabHost, labExec, labReboot, labSh, labSpawn, labStackConfig } from "../scripts/lab/lab";
import { DEFAULT_TOPOLOGY, pathEnds } from "../scripts/lab/topology";
import { sleep, waitFor } from "../scripts/lab/wait";
import { RecordedCommand, runProgram, StackConfig } from "./harness/program";
import { labFile } from "./harness/fixture";
import { counter, endpoints, limits, snapshot } from "./harness/labtest";
import { connectAll } from "../scripts/verify/ssh";
import { transfer, TransferReport } from "../scripts/verify/verify";

const topology = DEFAULT_TOPOLOGY;
const f = labFile(topology, "h");
let config: StackConfig;
let model: Model;
const pre = new Map<string, string>();
const applied = new Map<string, string>();
const host = f.host;
const modelOf = (name: string): HostModel => model.hosts.find((h) => h.name === name)!;
const sh = (name: string, script: string) => labSh(host(name), script);

/** /etc/network/interfaces for a laptop: its paths as static interfaces, addresses from the topology. */
function interfacesFile(name: string, override: Record<string, string> = {}): string {
  const ends = pathEnds(topology).filter((e) => e.host === name);
  return ["auto lo", "iface lo inet loopback", ...ends.map((e) => `auto ${e.path}\niface ${e.path} inet static\n  address ${override[e.path] ?? e.address}/${e.prefix}`)].join("\n") + "\n";
}

/** Puts a laptop's paths under ifupdown: flush what the lab configured, then ifup. */
function ifupAll(name: string): void {
  const ifaces = pathEnds(topology)
    .filter((e) => e.host === name)
    .map((e) => e.path);
  sh(name, `mkdir -p /run/network; for i in ${ifaces.join(" ")}; do ifdown --force "$i" >/dev/null 2>&1 || true; ip addr flush dev "$i"; ifup "$i"; done`);
}

/** Rules "from ADDRESS" in the laptop's IPv4 policy database. */
function rulesFrom(name: string, address: string): number {
  return sh(name, "ip -4 rule show")
    .split("\n")
    .filter((l) => l.includes(`from ${address} `)).length;
}

function wlanEndpointAddress(name: string): string | undefined {
  return endpoints(host(name)).find((e) => e.dev === "wlan")?.address;
}

/** Watches `ip mptcp monitor` on a laptop, timestamping SF_ESTABLISHED events. */
function monitor(h: LabHost) {
  const events: number[] = [];
  const p = labSpawn(h, ["ip", "mptcp", "monitor"]);
  p.stdout.on("data", (d: Buffer) => {
    for (const line of d.toString().split("\n")) if (line.includes("SF_ESTABLISHED")) events.push(performance.now());
  });
  return { events, stop: () => p.kill() };
}

beforeAll(async () => {
  // The laptops' own configuration before we come: ifupdown, NetworkManager's dispatcher
  // directory, and on the server a strict rp_filter from its own sysctl.d.
  for (const h of f.lab.hosts) {
    sh(h.name, `cat > /etc/network/interfaces <<'EOF'\n${interfacesFile(h.name)}EOF\nmkdir -p /etc/NetworkManager/dispatcher.d`);
    ifupAll(h.name);
  }
  sh("server", "echo 'net.ipv4.conf.all.rp_filter = 1' > /etc/sysctl.d/50-admin.conf && sysctl -q -p /etc/sysctl.d/50-admin.conf");
  const cfg = labStackConfig(f.lab) as { hosts: any[]; links: any[] };
  const server = cfg.hosts.find((h) => h.name === "server")!;
  const client = cfg.hosts.find((h) => h.name === "client")!;
  server.hooks = true;
  server.routing = [{ interface: "wlan", mode: "source" }];
  client.hooks = true;
  client.endpoints = [
    { interface: "lan", flags: [] },
    { interface: "wlan", flags: [] },
  ];
  client.routing = [
    { interface: "lan", mode: "source" },
    { interface: "wlan", mode: "source", table: 120 },
  ];
  config = cfg;
  model = requireValidConfig(config);
  for (const h of f.lab.hosts) pre.set(h.name, snapshot(h));
});

/** The server's wlan table: the default the config leaves to the model (derived from the interface name). */
const serverWlanTable = () => model.hosts.find((h) => h.name === "server")!.routing.find((r) => r.interface === "wlan")!.table;

describe("hooks: MPTCP state through interface events, address changes and reboots", () => {
  it("up installs the entry point, hooks and boot unit, with one rule per address", async () => {
    const steps = await f.sim.up((await runProgram(config, { privateKey: f.privateKey })).commands);
    console.log(`up: ${steps.map((s) => s.name).join(", ")}`);
    expect(steps.map((s) => s.name)).toContain("server-hooks");
    for (const name of ["server", "client"]) {
      const files = sh(
        name,
        `ls -l ${SYNC_PATH} /etc/network/if-up.d/mptcp_up /etc/network/if-post-down.d/mptcp_down /etc/NetworkManager/dispatcher.d/70-mptcp-pulumi /etc/dhcp/dhclient-exit-hooks.d/mptcp-pulumi /etc/systemd/system/mptcp-pulumi.service; readlink /etc/systemd/system/multi-user.target.wants/mptcp-pulumi.service`,
      );
      expect(files).toMatch(/^-rwxr-xr-x .* \/usr\/local\/sbin\/mptcp-pulumi-sync$/m);
      expect(files).toMatch(/^-rw-r--r-- .* \/etc\/dhcp\/dhclient-exit-hooks.d\/mptcp-pulumi$/m);
      expect(files).toMatch(/^\.\.\/mptcp-pulumi\.service$/m);
      // the laptop's own systemd sees the unit enabled (our apply ran systemctl daemon-reload)
      expect(sh(name, "systemctl is-enabled mptcp-pulumi.service").trim()).toBe("enabled");
    }
    expect(rulesFrom("server", "198.51.100.17")).toBe(1);
    expect(rulesFrom("client", "198.51.100.2")).toBe(1);
    expect(rulesFrom("client", "198.51.100.18")).toBe(1);
    expect(sh("server", `ip -4 route show table ${serverWlanTable()}`)).toContain("198.51.100.16/28 dev wlan scope link src 198.51.100.17");
    expect(sh("server", "cat /proc/sys/net/ipv4/conf/wlan/rp_filter").trim()).toBe("2");
    for (const h of f.lab.hosts) applied.set(h.name, snapshot(h));
  });

  it("a re-apply that changes nothing does not make systemd reload; one that rewrites our unit does (control)", async () => {
    // systemd (PID 1) logs "Reloading." for each daemon-reload
    const reloads = () =>
      sh("server", "journalctl -b -o cat --no-pager _PID=1")
        .split("\n")
        .filter((l) => l === "Reloading.").length;
    const apply = f.sim.state.get("server-hooks")!;
    const confirm = f.sim.state.get("server-hooks-confirm")!;
    const before = reloads();
    const same = await f.ssh.run(apply, apply.create!, "create");
    expect(same.code, same.stderr).toBe(0);
    expect(same.stdout).not.toContain("wrote ");
    expect(reloads()).toBe(before);
    // control: a unit edited by hand is written again, and systemd reads it again
    sh("server", "echo '# edited by hand' >> /etc/systemd/system/mptcp-pulumi.service");
    const edited = await f.ssh.run(apply, apply.create!, "create");
    expect(edited.code, edited.stderr).toBe(0);
    expect(edited.stdout).toContain("wrote /etc/systemd/system/mptcp-pulumi.service");
    // that apply armed its rollback (it changed something): confirm it, as pulumi up would
    expect((await f.ssh.run(confirm, confirm.create!, "create")).code).toBe(0);
    await waitFor("systemd's reload in the journal", 5000, () => reloads() === before + 1);
    expect(sh("server", "systemctl show -p NeedDaemonReload --value mptcp-pulumi.service").trim()).toBe("no");
    expect(snapshot(host("server"))).toBe(applied.get("server"));
  });

  it("ifdown/ifup (real ifupdown) removes the endpoints and rules and brings them back", () => {
    sh("server", "ifdown wlan");
    expect(wlanEndpointAddress("server")).toBeUndefined();
    expect(rulesFrom("server", "198.51.100.17")).toBe(0);
    expect(sh("server", `ip -4 route show table ${serverWlanTable()}`)).toBe("");
    sh("server", "ifup wlan");
    expect(wlanEndpointAddress("server")).toBe("198.51.100.17");
    expect(rulesFrom("server", "198.51.100.17")).toBe(1);
    expect(snapshot(host("server"))).toBe(applied.get("server"));
  });

  it("a failing entry point never fails ifup: the interface comes up, the failure is in the journal (control: a failing if-up.d script does fail ifup)", () => {
    const server = host("server");
    // control: what interfaces(5) says, on this laptop's ifupdown
    sh("server", "ifdown wlan && printf '#!/bin/sh\\nexit 1\\n' > /etc/network/if-up.d/zz-fails && chmod +x /etc/network/if-up.d/zz-fails");
    expect(labExec(server, "ifup wlan").code).not.toBe(0);
    sh("server", "rm /etc/network/if-up.d/zz-fails && ifdown --force wlan; ip link set wlan down");
    // our hook with an entry point that fails
    sh("server", `mv ${SYNC_PATH} ${SYNC_PATH}.off && printf '#!/bin/sh\\necho noise\\necho "lab: it broke" >&2\\nexit 3\\n' > ${SYNC_PATH} && chmod +x ${SYNC_PATH}`);
    try {
      const r = labExec(server, "ifup wlan");
      expect(r.code, r.stderr).toBe(0);
      expect(sh("server", "ip -4 addr show dev wlan")).toContain("198.51.100.17");
      // with the entry point's last error line (its stdout discarded)
      expect(sh("server", "journalctl -t mptcp-pulumi --no-pager")).toMatch(/mptcp-pulumi-sync wlan up\s*failed \(exit 3\): lab: it broke: the interface keeps going/);
    } finally {
      sh("server", `mv ${SYNC_PATH}.off ${SYNC_PATH} && ifdown wlan && ifup wlan`);
    }
    expect(snapshot(server)).toBe(applied.get("server"));
  });

  it("address changes: ifupdown, the dhclient hook and the NetworkManager dispatcher make the endpoint and rule follow", () => {
    const seen: string[] = [];
    // ifupdown: the interface is re-addressed by its configuration
    sh("client", `ifdown wlan && cat > /etc/network/interfaces <<'EOF'\n${interfacesFile("client", { wlan: "198.51.100.19" })}EOF\nifup wlan`);
    seen.push(`ifupdown -> ${wlanEndpointAddress("client")}`);
    expect(wlanEndpointAddress("client")).toBe("198.51.100.19");
    expect(rulesFrom("client", "198.51.100.19")).toBe(1);
    expect(rulesFrom("client", "198.51.100.18")).toBe(0);
    // dhclient renews with a new address: dhclient-script sources the exit hooks with these variables
    sh(
      "client",
      "ip addr del 198.51.100.19/28 dev wlan && ip addr add 198.51.100.21/28 dev wlan && reason=RENEW interface=wlan old_ip_address=198.51.100.19 new_ip_address=198.51.100.21 new_routers='' && . /etc/dhcp/dhclient-exit-hooks.d/mptcp-pulumi",
    );
    seen.push(`dhclient RENEW -> ${wlanEndpointAddress("client")}`);
    expect(wlanEndpointAddress("client")).toBe("198.51.100.21");
    expect(rulesFrom("client", "198.51.100.21")).toBe(1);
    expect(rulesFrom("client", "198.51.100.19")).toBe(0);
    // NetworkManager: dispatcher scripts get the interface and the action as $1 $2
    sh("client", "ip addr del 198.51.100.21/28 dev wlan && ip addr add 198.51.100.22/28 dev wlan && /etc/NetworkManager/dispatcher.d/70-mptcp-pulumi wlan dhcp4-change");
    seen.push(`NetworkManager dhcp4-change -> ${wlanEndpointAddress("client")}`);
    expect(wlanEndpointAddress("client")).toBe("198.51.100.22");
    expect(rulesFrom("client", "198.51.100.22")).toBe(1);
    expect(rulesFrom("client", "198.51.100.21")).toBe(0);
    // dhclient loses the lease
    sh("client", "reason=EXPIRE interface=wlan && . /etc/dhcp/dhclient-exit-hooks.d/mptcp-pulumi");
    expect(wlanEndpointAddress("client")).toBeUndefined();
    expect(rulesFrom("client", "198.51.100.22")).toBe(0);
    console.log(`address changes: ${seen.join("; ")}; EXPIRE -> no endpoint, no rule`);
    // back to the original configuration
    sh("client", `ip addr flush dev wlan && cat > /etc/network/interfaces <<'EOF'\n${interfacesFile("client")}EOF`);
    ifupAll("client");
    expect(snapshot(host("client"))).toBe(applied.get("client"));
  });

  it("a real DHCP exchange (isc-dhcp-server on the server, dhclient on the client): the endpoint follows the lease", () => {
    sh(
      "server",
      `mkdir -p /var/lib/dhcp && : > /var/lib/dhcp/dhcpd.leases && printf 'subnet 198.51.100.16 netmask 255.255.255.240 {\\n  range 198.51.100.25 198.51.100.25;\\n}\\n' > /etc/dhcp/dhcpd-lab.conf && dhcpd -4 -q -cf /etc/dhcp/dhcpd-lab.conf -pf /run/dhcpd.pid -lf /var/lib/dhcp/dhcpd.leases wlan`,
    );
    const dhclient = "dhclient -pf /run/dhclient.wlan.pid -lf /var/lib/dhcp/dhclient.wlan.leases";
    try {
      const t0 = performance.now();
      sh("client", `ip addr flush dev wlan && mkdir -p /var/lib/dhcp && ${dhclient} -1 wlan`);
      const bound = wlanEndpointAddress("client");
      console.log(`DHCP: bound in ${(performance.now() - t0).toFixed(0)} ms, endpoint ${bound}, rules from it ${rulesFrom("client", "198.51.100.25")}`);
      expect(bound).toBe("198.51.100.25");
      expect(rulesFrom("client", "198.51.100.25")).toBe(1);
      expect(rulesFrom("client", "198.51.100.18")).toBe(0);
      sh("client", `${dhclient} -r wlan`);
      expect(wlanEndpointAddress("client")).toBeUndefined();
      expect(rulesFrom("client", "198.51.100.25")).toBe(0);
    } finally {
      labExec(host("server"), "kill $(cat /run/dhcpd.pid); rm -f /run/dhcpd.pid /etc/dhcp/dhcpd-lab.conf; rm -rf /var/lib/dhcp");
      labExec(host("client"), `${dhclient} -x wlan 2>/dev/null; rm -rf /var/lib/dhcp /run/dhclient.wlan.pid`);
    }
    ifupAll("client");
    expect(snapshot(host("client"))).toBe(applied.get("client"));
  });

  /** Reboots both laptops at once; each brings its paths up itself at boot (ifupdown). */
  async function rebootAll(): Promise<number> {
    const t0 = performance.now();
    await labReboot(
      f.lab,
      f.lab.hosts.map((h) => h.name),
      { selfConfigured: true },
    );
    for (const h of f.lab.hosts) expect(sh(h.name, "systemctl is-system-running --wait || true").trim(), `${h.name} after boot`).toBe("running");
    return performance.now() - t0;
  }

  it("negative control: a reboot without our boot unit and if-up hook does not bring the state back", async () => {
    const wants = "/etc/systemd/system/multi-user.target.wants/mptcp-pulumi.service";
    for (const h of f.lab.hosts) sh(h.name, `mv ${wants} /root/wants-link && chmod -x /etc/network/if-up.d/mptcp_up`);
    await rebootAll();
    try {
      for (const h of f.lab.hosts) {
        const m = modelOf(h.name);
        const live = limits(host(h.name));
        console.log(`no unit, no hook: ${h.name} limits ${JSON.stringify(live)}, endpoints ${endpoints(host(h.name)).length}`);
        expect(snapshot(h), h.name).not.toBe(applied.get(h.name));
        expect(live).not.toEqual({ ...live, ...m.limits });
      }
    } finally {
      for (const h of f.lab.hosts) sh(h.name, `mv /root/wants-link ${wants} && chmod +x /etc/network/if-up.d/mptcp_up`);
    }
  });

  it("reboot: systemd boots each laptop again and restores the applied state by itself (sysctl.d, ifup -a running our hook, our boot unit)", async () => {
    const ms = await rebootAll();
    for (const h of f.lab.hosts) {
      expect(sh(h.name, "systemctl is-active mptcp-pulumi.service").trim()).toBe("active");
      expect(sh(h.name, "journalctl -b -u mptcp-pulumi.service --no-pager")).toMatch(/Finished mptcp-pulumi\.service/);
    }
    console.log(`reboot of ${f.lab.hosts.map((h) => h.name).join(", ")} through systemd: back to the applied state in ${ms.toFixed(0)} ms`);
    for (const h of f.lab.hosts) expect(snapshot(h), h.name).toBe(applied.get(h.name));
  });

  async function joinAfterPathReturns(withHooks: boolean): Promise<{ report: TransferReport; joins: number; delay?: number }> {
    const server = host("server");
    const client = host("client");
    const address = dialAddress(topology, "client", "server")!;
    const joinsBefore = counter(server, "MPTcpExtMPJoinAckRx");
    // the whole wlan path is down (both ends) when the connection starts
    for (const name of ["server", "client"]) sh(name, withHooks ? "ifdown wlan" : "ip link set wlan down");
    const mon = monitor(client);
    // the product's transfer (npm run verify's) over SSH sessions of its own: laptops reboot in this file
    const { sessions } = await connectAll([modelOf("client"), modelOf("server")], { privateKey: f.privateKey });
    await sleep(200);
    let upAt = 0;
    try {
      const report = await transfer(sessions.get("client")!, sessions.get("server")!, address, {
        bytes: 4 << 20,
        pace: 3,
        // the path comes back at 0.8 s, but under load ifup and its hook take seconds
        // (docs/performance.md, "Lab proofs under load"): the connection waits for the predicted joins, 3 s before its first byte and 6 s after its
        // last, so the window depends on the join, not on the machine's speed; without the hooks
        // (the control) it stays open the whole 12 s and nothing joins
        subflows: expectedJoins(modelOf("client"), modelOf("server"), address),
        linger: 6,
        during: async () => {
          await sleep(800);
          sh("client", withHooks ? "ifup wlan" : "ip link set wlan up");
          upAt = performance.now();
          sh("server", withHooks ? "ifup wlan" : "ip link set wlan up");
        },
      });
      await sleep(100);
      const joins = counter(server, "MPTcpExtMPJoinAckRx") - joinsBefore;
      const after = mon.events.filter((t) => t >= upAt);
      return { report, joins, delay: after.length ? (after[0] - upAt) / 1000 : undefined };
    } finally {
      mon.stop();
      for (const s of sessions.values()) void s.close();
    }
  }

  it("negative control: without the hooks, a path that was down when the connection started never joins", async () => {
    const { report, joins, delay } = await joinAfterPathReturns(false);
    console.log(`no hooks (ip link down/up): joins ${joins}, subflows ${report.subflows}, SF_ESTABLISHED after link up: ${delay ?? "never"} (transfer ${report.seconds} s)`);
    expect(report.server.sha256).toBe(report.sha256);
    expect(joins).toBe(0);
    expect(delay).toBeUndefined();
    for (const name of ["server", "client"]) sh(name, `${SYNC_PATH} wlan up`);
  });

  it("with the hooks, the path joins once it is back (ifup re-announces the endpoint)", async () => {
    const { report, joins, delay } = await joinAfterPathReturns(true);
    const want = expectedJoins(modelOf("client"), modelOf("server"), dialAddress(topology, "client", "server"));
    console.log(`hooks (ifdown/ifup): joins ${joins} (predicted ${want}), subflows ${report.subflows}, seconds from link up to SF_ESTABLISHED: ${delay?.toFixed(3)} (goal < 2)`);
    expect(report.server.sha256).toBe(report.sha256);
    expect(joins).toBe(want);
    expect(delay).toBeDefined();
    expect(report.subflows).toBe(want);
  });

  // Five cycles, one after another: a rule or endpoint a cycle leaves behind shows from the second
  // on (five, not twenty: their cost is in docs/performance.md, "Lab proofs under load")
  it("5 ifdown/ifup cycles leave exactly one rule per address and the same endpoints", () => {
    const t0 = performance.now();
    sh("server", "for n in 1 2 3 4 5; do ifdown wlan && ifup wlan; done");
    console.log(`5 cycles in ${(performance.now() - t0).toFixed(0)} ms: rules from 198.51.100.17: ${rulesFrom("server", "198.51.100.17")}`);
    expect(rulesFrom("server", "198.51.100.17")).toBe(1);
    expect(snapshot(host("server"))).toBe(applied.get("server"));
  });

  it("two hooks for different interfaces and an apply at once: the final state is right", async () => {
    const endpointsCmd = [...f.sim.state.values()].find((c) => c.name === "client-endpoints")!;
    const hooksCmd = [...f.sim.state.values()].find((c) => c.name === "client-hooks")!;
    const client = host("client");
    const t0 = performance.now();
    const hook = (iface: string) => new Promise<number>((resolve) => labSpawn(client, ["sh", "-c", `${SYNC_PATH} ${iface} up`]).on("close", (c) => resolve(c ?? -1)));
    const results = await Promise.all([hook("lan"), hook("wlan"), f.ssh.run(endpointsCmd, endpointsCmd.create!, "create"), f.ssh.run(hooksCmd, hooksCmd.create!, "create"), hook("wlan")]);
    console.log(`concurrent: 3 hooks and 2 applies in ${(performance.now() - t0).toFixed(0)} ms, exits ${results.map((r) => (typeof r === "number" ? r : r.code)).join(",")}`);
    expect(results.map((r) => (typeof r === "number" ? r : r.code))).toEqual([0, 0, 0, 0, 0]);
    expect(snapshot(client)).toBe(applied.get("client"));
  });

  it("every apply and revert waits for the host lock; a command that takes no lock does not (control)", async () => {
    const client = host("client");
    const lockHeld = () => labExec(client, `flock -n ${LOCK_FILE} true`).code !== 0;
    /** Holds the host lock on the client for `ms`; resolves once it is held. */
    const holdLock = async (ms: number) => {
      labSpawn(client, ["flock", LOCK_FILE, "sleep", String(ms / 1000)]);
      await waitFor("the lock to be held", 5000, lockHeld, 10);
    };
    const timed = async (text: string, c: RecordedCommand) => {
      await holdLock(800);
      const t0 = performance.now();
      const r = await f.ssh.run(c, text, "create");
      return { code: r.code, ms: performance.now() - t0, err: r.stderr };
    };
    const waited: string[] = [];
    // every concern's (the anchor's delete reverts them all: test/lab.anchor.test.ts times its wait)
    for (const c of [...f.sim.state.values()].filter((x) => x.name.startsWith("client-") && !x.name.endsWith("-anchor") && !x.copy && x.create !== undefined)) {
      for (const [phase, text] of [
        ["revert", c.delete!],
        ["apply", c.create!],
      ] as const) {
        const r = await timed(text, c);
        expect(r.code, `${c.name} ${phase}: ${r.err}`).toBe(0);
        expect(r.ms, `${c.name} ${phase} waited`).toBeGreaterThan(600);
        waited.push(`${c.name} ${phase} ${r.ms.toFixed(0)} ms`);
      }
    }
    // control, with no timing in it (a loaded machine may take long for anything): the lock held
    // until released here, a command that takes no lock still finishes while it is held
    labSh(client, `flock ${LOCK_FILE} sh -c 'echo $$ > /run/lab-lock-holder; exec sleep 60' < /dev/null > /dev/null 2>&1 &`);
    // the holder writes its pid once it holds the lock
    await waitFor("the lock to be held", 5000, () => labExec(client, "test -s /run/lab-lock-holder").code === 0, 10);
    const t0 = performance.now();
    const control = await f.ssh.run([...f.sim.state.values()].find((c) => !c.copy)!, "true", "create");
    const ms = performance.now() - t0;
    const heldAfter = lockHeld();
    labSh(client, "kill $(cat /run/lab-lock-holder); rm -f /run/lab-lock-holder");
    console.log(`with the lock held for 800 ms: ${waited.join(", ")}; a plain ssh true with the lock held: ${ms.toFixed(0)} ms`);
    expect(control.code).toBe(0);
    expect(heldAfter).toBe(true);
    await waitFor("the lock to be free", 5000, () => !lockHeld(), 10);
    expect(snapshot(client)).toBe(applied.get("client"));
  });

  it("destroy removes every hook, unit, rule, route and table entry, and restores rp_filter", async () => {
    const steps = await f.sim.destroy();
    console.log(`destroy: ${steps.map((s) => s.name).join(", ")}`);
    for (const h of f.lab.hosts) expect(snapshot(h), h.name).toBe(pre.get(h.name));
    expect(labExec(host("server"), `test -e ${SYNC_PATH}`).code).not.toBe(0);
  });
});
