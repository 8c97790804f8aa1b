// Routing modes of the entry point on a real kernel: a scratch network namespace with two
// interfaces, main-table default routes, IPv4 and IPv6; the rendered sync script runs there in a
// private mount namespace (its state under a tmpfs), so nothing of this machine is touched.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildModel, configSchema, renderCheck, renderConcern, renderHookFiles, renderSyncScript, shq } from "../components";
import { run, ScratchNs } from "./harness/scratch";

let ns: ScratchNs;
let peer: ScratchNs;
const dir = mkdtempSync(join(tmpdir(), "mptcp-routing-"));
const inNs = (script: string) => ns.sh(script);

const modelOf = (routing: object[]) =>
  buildModel(
    configSchema.parse({
      hosts: [{ name: "rt", ssh: { host: "h", insecureIgnoreHostKey: true }, endpoints: [{ interface: "lan" }, { interface: "wlan" }], hooks: true, routing }],
    }),
  ).hosts[0];

function sync(routing: object[], ...calls: string[]): string {
  writeFileSync(join(dir, "sync"), renderSyncScript(modelOf(routing)), { mode: 0o755 });
  const r = ns.isolated(calls.map((c) => `${join(dir, "sync")} ${c}`).join(" && "));
  if (r.code !== 0) throw new Error(`sync ${calls.join(", ")}: exit ${r.code}: ${r.stderr}`);
  return r.stdout;
}

/** The default tables of lan and wlan (derived from the interface names: components/model.ts, routingFor), and wlan's default priority. */
const LAN = modelOf([]).routing.find((r) => r.interface === "lan")!.table;
const WLAN = modelOf([]).routing.find((r) => r.interface === "wlan")!.table;
const WLAN_PRIO = modelOf([]).routing.find((r) => r.interface === "wlan")!.priority;

/** A table's routes ("" when the kernel has no such table). */
const table = (fam: "-4" | "-6", t: number) => inNs(`ip ${fam} route show table ${t} 2>/dev/null || true`);
const rules = (fam: "-4" | "-6") =>
  inNs(`ip ${fam} rule show`)
    .split("\n")
    .filter((l) => /\sfrom [0-9a-f:.]+ lookup /.test(l));

beforeAll(() => {
  ns = new ScratchNs("mptcp-rt");
  peer = new ScratchNs("mptcp-rt-p");
  for (const [i, v4, v6] of [
    ["lan", "65", "65"],
    ["wlan", "81", "81"],
  ]) {
    run(["ip", "link", "add", i, "netns", ns.name, "type", "veth", "peer", "name", i, "netns", peer.name]);
    inNs(`ip addr add 198.51.100.${v4}/28 dev ${i} && ip addr add 2001:db8:${v6}::1/64 dev ${i} nodad && ip link set ${i} up`);
    peer.sh(`ip addr add 198.51.100.${Number(v4) + 1}/28 dev ${i} && ip addr add 2001:db8:${v6}::2/64 dev ${i} nodad && ip link set ${i} up`);
  }
  inNs("ip route add default via 198.51.100.66 dev lan metric 100 && ip route add default via 198.51.100.82 dev wlan metric 200 && ip -6 route add default via 2001:db8:81::2 dev wlan metric 200");
});

afterAll(() => {
  ns?.close();
  peer?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("routing modes on a real kernel", () => {
  it("auto: source routing for the interface whose gateway is not the main default; none for the one that is", () => {
    sync([], "lan up", "wlan up");
    expect(rules("-4")).toEqual([expect.stringMatching(new RegExp(`^${WLAN_PRIO}:\\s+from 198\\.51\\.100\\.81 lookup ${WLAN}(?!\\d)`))]);
    expect(rules("-6")).toEqual([expect.stringMatching(new RegExp(`^${WLAN_PRIO}:\\s+from 2001:db8:81::1 lookup ${WLAN}(?!\\d)`))]);
    const t4 = table("-4", WLAN);
    expect(t4).toContain("default via 198.51.100.82 dev wlan");
    expect(t4).toContain("198.51.100.80/28 dev wlan scope link src 198.51.100.81");
    expect(table("-6", WLAN)).toContain("default via 2001:db8:81::2 dev wlan");
    expect(table("-4", LAN)).toBe("");
  });

  it("up again and again leaves one rule per address; down removes rules and table", () => {
    sync([], "wlan up", "wlan up", "wlan change", "lan up");
    expect(rules("-4")).toHaveLength(1);
    expect(rules("-6")).toHaveLength(1);
    sync([], "wlan down");
    expect(rules("-4")).toEqual([]);
    expect(rules("-6")).toEqual([]);
    expect(table("-4", WLAN)).toBe("");
  });

  it("source on a connected-only interface: its subnet route, no default; none: nothing", () => {
    inNs("ip route del default via 198.51.100.66 dev lan");
    sync(
      [
        { interface: "lan", mode: "source", table: 7, priority: 77 },
        { interface: "wlan", mode: "none" },
      ],
      "lan up",
      "wlan up",
    );
    expect(rules("-4")).toEqual([expect.stringMatching(/^77:\s+from 198\.51\.100\.65 lookup 7/)]);
    expect(table("-4", 7)).toBe("198.51.100.64/28 dev lan scope link src 198.51.100.65 \n");
    sync(
      [
        { interface: "lan", mode: "source", table: 7, priority: 77 },
        { interface: "wlan", mode: "none" },
      ],
      "lan down",
    );
    expect(rules("-4")).toEqual([]);
  });

  it("auto with the wlan default now first in the main table: none", () => {
    sync([], "lan up", "wlan up");
    expect(rules("-4")).toEqual([]);
  });

  it("a configured gateway wins over the routes, and a hook's gateway hint is used when none is configured", () => {
    sync([{ interface: "lan", mode: "source", gateway: "198.51.100.70" }], "lan up");
    expect(table("-4", LAN)).toContain("default via 198.51.100.70 dev lan");
    sync([{ interface: "lan", mode: "source" }], "lan up 198.51.100.71");
    expect(table("-4", LAN)).toContain("default via 198.51.100.71 dev lan");
    sync([{ interface: "lan", mode: "source" }], "lan down");
  });

  it("the table gets the interface's on-link routes whoever added them (dhcpcd's proto dhcp subnet route, an admin's static one), not routes through a gateway; check reports one missing", () => {
    const routing = [{ interface: "lan", mode: "source", table: 7, priority: 77, gateway: "198.51.100.66" }];
    // lan addressed as dhcpcd does it: the address without the kernel's prefix route, dhcpcd's own instead
    inNs(`ip addr del 198.51.100.65/28 dev lan && ip addr add 198.51.100.65/28 dev lan noprefixroute
ip route add 198.51.100.64/28 dev lan proto dhcp scope link src 198.51.100.65 metric 1003
ip route add 198.51.100.96/28 dev lan proto static && ip route add 198.51.100.112/28 via 198.51.100.66 dev lan proto dhcp`);
    // control: the kernel's routes (all the table got before) hold no IPv4 route of lan now
    expect(inNs("ip -4 route show dev lan proto kernel")).toBe("");
    const check = () => {
      const r = ns.isolated(`sh -c ${shq(renderCheck(modelOf(routing)))}`);
      if (r.code !== 0) throw new Error(r.stderr);
      return r.stdout
        .split("\n")
        .filter((l) => l.startsWith("routing|"))
        .map((l) => l.slice(l.indexOf("|") + 1));
    };
    try {
      sync(routing, "lan up");
      const t = table("-4", 7).split("\n").filter(Boolean).sort();
      expect(t).toEqual(["198.51.100.64/28 dev lan scope link src 198.51.100.65 ", "198.51.100.96/28 dev lan scope link src 198.51.100.65 ", "default via 198.51.100.66 dev lan "]);
      expect(table("-6", 7)).toContain("2001:db8:65::/64 dev lan");
      expect(check()).toEqual([]);
      inNs("ip route del 198.51.100.64/28 table 7");
      expect(check()).toEqual(["lan: table 7 has no route to 198.51.100.64/28 (the main table reaches it on lan)"]);
    } finally {
      sync(routing, "lan down");
      inNs(`ip route del 198.51.100.112/28 dev lan; ip route del 198.51.100.96/28 dev lan; ip route del 198.51.100.64/28 dev lan proto dhcp
ip addr del 198.51.100.65/28 dev lan; ip addr add 198.51.100.65/28 dev lan`);
    }
  });

  it("an event on one interface leaves another's routing alone when it is right, a gateway known only from a hook's hint included; control: with that gateway nowhere, the same event takes the rule away", () => {
    const wlanState = () => inNs(`ip -4 rule show | grep ' lookup ${WLAN}$' || true; ip -4 route show table ${WLAN}`);
    inNs("ip route del default via 198.51.100.82 dev wlan metric 200");
    try {
      sync([], "lan down", "wlan down", "wlan change 198.51.100.82");
      expect(rules("-4")).toContainEqual(expect.stringMatching(new RegExp(`from 198\\.51\\.100\\.81 lookup ${WLAN}(?!\\d)`)));
      expect(table("-4", WLAN)).toContain("default via 198.51.100.82 dev wlan");
      const before = wlanState();
      sync([], "lan change 198.51.100.66", "lan up 198.51.100.66");
      expect(wlanState()).toBe(before);
      inNs(`ip -4 route del default table ${WLAN}`);
      sync([], "lan change 198.51.100.66");
      expect(rules("-4").filter((l) => l.endsWith(` lookup ${WLAN}`))).toEqual([]);
    } finally {
      inNs("ip route replace default via 198.51.100.82 dev wlan metric 200");
      sync([], "lan down", "wlan down");
    }
  });

  it("npm run check's routing: in step after the sync; a second rule, a missing rule, a missing default route and a rule left in mode none are each reported (IPv4 and IPv6)", () => {
    const routing = (mode: string) => [
      { interface: "lan", mode: "none" },
      { interface: "wlan", mode, table: 9, priority: 99, gateway: "198.51.100.82" },
    ];
    // the routing differences npm run check reports (the host was not applied: its other lines are left out)
    const check = (mode = "source") => {
      const r = ns.isolated(`sh -c ${shq(renderCheck(modelOf(routing(mode))))}`);
      if (r.code !== 0) throw new Error(r.stderr);
      return r.stdout
        .split("\n")
        .filter((l) => l.startsWith("routing|"))
        .map((l) => l.slice(l.indexOf("|") + 1));
    };
    sync(routing("source"), "wlan up");
    expect(check()).toEqual([]);
    inNs("ip rule add from 198.51.100.81 lookup 9 priority 98 && ip -6 rule add from 2001:db8:81::1 lookup 9 priority 98");
    expect(check()).toEqual(["wlan: 2 ip -4 rules to table 9, 1 expected", "wlan: 2 ip -6 rules to table 9, 1 expected"]);
    inNs("ip rule del priority 98 && ip rule del priority 99");
    expect(check()).toEqual(['wlan: no ip -4 rule "from 198.51.100.81 lookup 9" at priority 99', "wlan: 0 ip -4 rules to table 9, 1 expected", "wlan: 2 ip -6 rules to table 9, 1 expected"]);
    inNs("ip -6 rule del priority 98");
    sync(routing("source"), "wlan up");
    inNs("ip route del default table 9");
    expect(check()).toEqual(["wlan: table 9 has no default route via 198.51.100.82"]);
    sync(routing("source"), "wlan up");
    expect(check("none")).toEqual(["wlan: 1 ip -4 rule(s) to table 9, none expected (mode none)", "wlan: 1 ip -6 rule(s) to table 9, none expected (mode none)"]);
    sync(routing("source"), "wlan down");
  });

  it("hook files: check finds none differing after the apply; another content, another mode, a symlink in a file's place and a missing file are each reported, and the next apply writes exactly those", () => {
    const model = buildModel(
      configSchema.parse({
        hosts: [
          {
            name: "rt",
            ssh: { host: "h", insecureIgnoreHostKey: true },
            endpoints: [{ interface: "lan" }, { interface: "wlan" }],
            hooks: true,
            confirmTimeout: 0,
            routing: [
              { interface: "lan", mode: "none" },
              { interface: "wlan", mode: "none" },
            ],
          },
        ],
      }),
    ).hosts[0];
    writeFileSync(join(dir, "apply"), renderConcern(model, "hooks").apply);
    const hookPaths = renderHookFiles(model).map((f) => f.path);
    const hostHad = hookPaths.filter((p) => existsSync(p));
    writeFileSync(join(dir, "check"), renderCheck(model));
    // the directories the hooks write, each a tmpfs of this private mount namespace
    const dirs = ["/usr/local/sbin", "/etc/network", "/etc/NetworkManager", "/etc/dhcp", "/etc/systemd", "/etc/networkd-dispatcher"];
    // dhcpcd's hook directory is this machine's (dhcpcd-base): hidden, so the apply cannot write there
    const r = ns.isolated(`set -e; for d in ${dirs.join(" ")}; do mount -t tmpfs tmpfs $d; done
if [ -d /usr/lib/dhcpcd ]; then mount -t tmpfs tmpfs /usr/lib/dhcpcd; fi
mkdir -p /etc/network/if-up.d /etc/network/if-post-down.d /etc/NetworkManager/dispatcher.d /etc/dhcp/dhclient-exit-hooks.d /etc/systemd/system /etc/systemd/network
sh ${dir}/apply > /dev/null; echo @applied; sh ${dir}/check
printf x >> /usr/local/sbin/mptcp-pulumi-sync
chmod 600 /etc/network/if-up.d/mptcp_up
rm /etc/network/if-post-down.d/mptcp_down
cp /etc/dhcp/dhclient-exit-hooks.d/mptcp-pulumi ${dir}/same && rm /etc/dhcp/dhclient-exit-hooks.d/mptcp-pulumi && ln -s ${dir}/same /etc/dhcp/dhclient-exit-hooks.d/mptcp-pulumi
echo @changed; sh ${dir}/check; echo @again; sh ${dir}/apply; echo @reapplied; sh ${dir}/check
printf '[Network]\\nManageForeignRoutes=yes\\n' > /etc/systemd/networkd.conf.d/zz-admin.conf
echo @overridden; sh ${dir}/check; rm /etc/systemd/networkd.conf.d/zz-admin.conf; echo @restored; sh ${dir}/check`);
    expect(r.stderr).toBe("");
    const part = (name: string) =>
      r.stdout
        .split(`@${name}\n`)[1]
        .split("\n@")[0]
        .split("\n")
        .filter((l) => l.startsWith("hooks|") || l.includes(": wrote "))
        .map((l) => l.replace(/^hooks\|/, "").replace(/^mptcp-pulumi\[rt\]: /, ""));
    expect(part("applied")).toEqual([]);
    expect(part("changed").sort()).toEqual([
      "/etc/dhcp/dhclient-exit-hooks.d/mptcp-pulumi has mode 777, not 644",
      "/etc/network/if-post-down.d/mptcp_down is missing",
      "/etc/network/if-up.d/mptcp_up has mode 600, not 755",
      "/usr/local/sbin/mptcp-pulumi-sync differs from what mptcp-pulumi writes",
    ]);
    expect(part("again").sort()).toEqual([
      "wrote /etc/dhcp/dhclient-exit-hooks.d/mptcp-pulumi",
      "wrote /etc/network/if-post-down.d/mptcp_down",
      "wrote /etc/network/if-up.d/mptcp_up",
      "wrote /usr/local/sbin/mptcp-pulumi-sync",
    ]);
    expect(part("reapplied")).toEqual([]);
    // systemd-networkd's own setting read after our drop-in: check names it; control: without it, nothing
    expect(part("overridden")).toEqual([
      "systemd-networkd reads ManageForeignRoutes=yes last, in /etc/systemd/networkd.conf.d/zz-admin.conf (after ours): it deletes our rules and routes whenever it configures a link; remove that setting, or name that file to sort before ours",
    ]);
    expect(part("restored")).toEqual([]);
    // nothing of this machine's was written (every hook directory was a tmpfs of the namespace)
    expect(hookPaths.filter((p) => existsSync(p))).toEqual(hostHad);
  });
});

describe("routing changes only what differs", () => {
  const routing = [
    { interface: "lan", mode: "none" },
    { interface: "wlan", mode: "source", table: 9, priority: 99, gateway: "198.51.100.82" },
  ];
  /** Runs `calls` of the sync script (or of `script`, a variant) under `ip monitor rule route`; the monitor's Deleted lines for table 9. */
  function deletions(calls: string[], script = renderSyncScript(modelOf(routing))): string[] {
    writeFileSync(join(dir, "sync-mon"), script, { mode: 0o755 });
    const r = ns.isolated(`ip monitor rule route > /run/mon & m=$!; sleep 0.3; ${calls.map((c) => `${join(dir, "sync-mon")} ${c}`).join(" && ")}; rc=$?; sleep 0.3; kill $m; cat /run/mon; exit $rc`);
    if (r.code !== 0) throw new Error(r.stderr);
    return r.stdout.split("\n").filter((l) => l.startsWith("Deleted") && / (lookup|table) 9\b/.test(l));
  }
  /** route_set as it was: the table cleared first, then filled again (negative control). */
  const clearing = () => {
    const text = renderSyncScript(modelOf(routing));
    const old = text.replace('if [ "$rt_mode" != source ]; then route_clear "$rt_table"; return 0; fi', 'route_clear "$rt_table"; [ "$rt_mode" = source ] || return 0');
    expect(old).not.toBe(text);
    return old;
  };

  it("an apply (sync apply) and an up over routing that is right delete no rule or route; control: route_set clearing first deletes both rules and every route of the table", () => {
    try {
      sync(routing, "wlan up");
      const t4 = table("-4", 9);
      expect(t4).toContain("default via 198.51.100.82 dev wlan");
      const was = inNs("ip -4 rule show; ip -6 rule show; ip -4 route show table 9; ip -6 route show table 9");
      expect(deletions(["apply", "wlan up", "wlan change"])).toEqual([]);
      expect(inNs("ip -4 rule show; ip -6 rule show; ip -4 route show table 9; ip -6 route show table 9")).toBe(was);
      const control = deletions(["apply"], clearing());
      console.log(`clearing route_set on an unchanged table: ${control.length} deletions`);
      expect(control.filter((l) => / lookup 9/.test(l))).toHaveLength(2);
      expect(control.filter((l) => / table 9/.test(l)).length).toBeGreaterThanOrEqual(3);
    } finally {
      sync(routing, "wlan down");
    }
  });

  it("what differs is changed and nothing else: a stray rule and a stray route to the table are deleted, the right ones stay", () => {
    try {
      sync(routing, "wlan up");
      inNs("ip -4 rule add from 198.51.100.200 table 9 priority 98 && ip -4 route add 203.0.113.0/24 dev wlan table 9");
      const d = deletions(["apply"]);
      expect(d).toEqual([expect.stringMatching(/^Deleted 203\.0\.113\.0\/24 dev wlan table 9/), expect.stringMatching(/^Deleted 98:\s+from 198\.51\.100\.200 lookup 9/)]);
      expect(rules("-4").filter((l) => / lookup 9/.test(l))).toEqual([expect.stringMatching(/^99:\s+from 198\.51\.100\.81 lookup 9/)]);
    } finally {
      sync(routing, "wlan down");
    }
  });
});
