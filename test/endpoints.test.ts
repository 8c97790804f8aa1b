// The endpoint table on a real kernel (a scratch network namespace): endpoint lines are compared
// in one normalized form, so neither the order the config lists flags in nor the order iproute2
// prints them in matters; the saved original table replays exactly.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildModel, configSchema, HostModel, renderConcern, renderScript, shq } from "../components";
import { run, ScratchNs } from "./harness/scratch";

let ns: ScratchNs;

beforeAll(() => {
  ns = new ScratchNs("mptcp-ep");
  ns.sh(
    "ip link add lan type veth peer name lan-p && ip link add wlan type veth peer name wlan-p && ip addr add 198.51.100.65/28 dev lan && ip addr add 198.51.100.81/28 dev wlan && ip -6 addr add 2001:db8:81::1/64 dev wlan nodad && ip link set lan up && ip link set wlan up",
  );
});

afterAll(() => {
  ns?.close();
  rmSync(scripts, { recursive: true, force: true });
});

/** Scripts run from files (several whole scripts in one argument would pass the kernel's 128 KiB limit). */
const scripts = mkdtempSync(join(tmpdir(), "mptcp-ep-"));
function scriptFile(name: string, text: string): string {
  const p = join(scripts, name);
  writeFileSync(p, text);
  return p;
}

const host = (endpoints: object[]): HostModel => buildModel(configSchema.parse({ hosts: [{ name: "ep", ssh: { host: "h", insecureIgnoreHostKey: true }, endpoints }] })).hosts[0];

/** Runs library code (e.g. a function) with stdin in the scratch namespace. */
function fn(call: string, input: string): string {
  const script = renderScript({ host: host([]), title: "test", source: "test.sh", text: call });
  const r = ns.isolated(`printf %s ${shq(input)} | sh -c ${shq(script)}`);
  if (r.code !== 0) throw new Error(r.stderr);
  return r.stdout;
}

function permutations<T>(xs: T[]): T[][] {
  if (xs.length <= 1) return [xs];
  return xs.flatMap((x, i) => permutations([...xs.slice(0, i), ...xs.slice(i + 1)]).map((p) => [x, ...p]));
}

describe("an interface's usable address (addr_get)", () => {
  it("skips an IPv4 link-local 169.254.0.0/16 address dhcpcd adds with scope global, and takes the next one", () => {
    ns.sh("ip link add ll type veth peer name ll-p && ip addr add 169.254.7.9/16 dev ll scope global && ip link set ll up");
    try {
      expect(fn("addr_of ll -4", "")).toBe("");
      // negative control: the same address is what ip lists first for the interface
      expect(ns.sh("ip -o -4 addr show dev ll scope global")).toContain("169.254.7.9/16");
      ns.sh("ip addr add 198.51.100.97/28 dev ll");
      expect(fn("addr_of ll -4", "").trim()).toBe("198.51.100.97");
    } finally {
      ns.sh("ip link del ll");
    }
  });
});

describe("endpoint lines in one form", () => {
  it("every order of id, port, dev and the flags gives the same line", () => {
    const words = [["id", "3"], ["port", "8443"], ["dev", "wlan"], ["signal"], ["backup"]];
    const lines = permutations(words).map((p) => ["198.51.100.81", ...p.flat()].join(" "));
    expect(lines).toHaveLength(120);
    const out = fn("ep_normalize", lines.join("\n") + "\n")
      .trim()
      .split("\n");
    expect(out).toHaveLength(120);
    expect(new Set(out)).toEqual(new Set(["198.51.100.81 id 3 port 8443 dev wlan backup signal"]));
  });

  it("keeps endpoints apart that differ, and drops implicit ones and blank lines (negative control)", () => {
    const out = fn("ep_normalize", "198.51.100.81 id 3 subflow dev wlan\n198.51.100.81 id 3 subflow backup dev wlan\n\n198.51.100.2 id 4 implicit\n198.51.100.2 id 5 rawflags 10 \n")
      .trim()
      .split("\n");
    expect(out).toEqual(["198.51.100.81 id 3 dev wlan backup subflow", "198.51.100.81 id 3 dev wlan subflow"]);
  });

  it("sorts the lines as sort does under LC_ALL=C (it replaces a sort process), duplicates kept", () => {
    const lines = [
      "2001:db8::1 id 9 dev wlan signal",
      "198.51.100.9 id 10 dev lan subflow",
      "198.51.100.81 id 2 dev wlan subflow",
      "198.51.100.81 id 2 dev wlan subflow",
      "10.0.0.1 id 1 dev Lan signal",
      "198.51.100.10 id 1 dev lan backup signal",
    ];
    const out = fn("ep_normalize", lines.join("\n") + "\n");
    const sorted = ns.isolated(`printf %s ${shq(out)} | LC_ALL=C sort`).stdout;
    expect(out).toBe(sorted);
    expect(out.trim().split("\n")).toHaveLength(lines.length);
    // control: the lines are already in normalized form, so the input order is what ep_normalize
    // would print without its sort; that order differs from sort's, so the comparison can fail
    expect(lines.join("\n") + "\n").not.toBe(sorted);
  });
});

describe("which address an interface gives its endpoint and rule", () => {
  it("never a tentative (DAD running), deprecated or dadfailed IPv6 address; the same interface with a usable address gives that one (control)", () => {
    // t0's peer is down, so its IPv6 address stays tentative; d0 holds a deprecated one (preferred_lft 0, no DAD)
    ns.sh(
      "ip link add t0 type veth peer name t0p && ip link set t0 up && ip -6 addr add 2001:db8:70::1/64 dev t0 && ip link add d0 type veth peer name d0p && ip link set d0 up && ip -6 addr add 2001:db8:71::1/64 dev d0 preferred_lft 0 nodad",
    );
    try {
      expect(ns.sh("ip -6 addr show dev t0")).toContain("tentative");
      expect(ns.sh("ip -6 addr show dev d0")).toContain("deprecated");
      expect(fn("addr_of t0 -6; echo end", "")).toBe("end\n");
      expect(fn("addr_of d0 -6; echo end", "")).toBe("end\n");
      ns.sh("ip -6 addr add 2001:db8:70::2/64 dev t0 nodad && ip -6 addr add 2001:db8:71::2/64 dev d0 nodad");
      expect(fn("addr_of t0 -6", "")).toBe("2001:db8:70::2\n");
      expect(fn("addr_of d0 -6", "")).toBe("2001:db8:71::2\n");
    } finally {
      ns.sh("ip link del t0; ip link del d0");
    }
  });
});

describe("the endpoints concern on a real kernel", () => {
  // Flags listed against iproute2's print order (it prints signal, subflow, backup, fullmesh).
  const config = [
    { interface: "lan", flags: ["fullmesh", "subflow"] },
    { interface: "wlan", address: "198.51.100.81", flags: ["backup", "signal"], port: 8443 },
    { interface: "wlan", address: "2001:db8:81::1", flags: ["backup", "subflow"] },
  ];

  it("a second apply finds the table unchanged, and revert replays the original table exactly", () => {
    const h = host(config);
    h.endpoints.forEach((e, i) => {
      e.flags = config[i].flags as typeof e.flags;
    });
    const s = renderConcern(h, "endpoints");
    const original = "ip mptcp endpoint add 198.51.100.200 id 50 subflow backup && ip mptcp endpoint add 198.51.100.201 id 51 signal dev lan";
    const apply = scriptFile("apply", s.apply);
    const revert = scriptFile("revert", s.revert);
    const r = ns.isolated(
      `ip mptcp endpoint flush && ${original} && ip mptcp endpoint show > /run/before && sh ${apply} && sh ${apply} && ip mptcp endpoint show && echo --- && sh ${revert} && ip mptcp endpoint show | cmp - /run/before && echo same-as-before`,
    );
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const [applied, reverted] = r.stdout.split("---\n");
    expect(applied).toMatch(/endpoints set[\s\S]*endpoints unchanged/);
    expect(applied).toContain(`198.51.100.65 id ${h.endpoints[0].id} subflow fullmesh dev lan`);
    expect(applied).toContain(`198.51.100.81 port 8443 id ${h.endpoints[1].id} signal backup dev wlan`);
    expect(reverted).toContain("endpoints restored");
    expect(reverted).toContain("same-as-before");
  });

  it("rollback without systemd (a setsid job, as on this machine): an unconfirmed apply is undone after confirmTimeout; a confirmed one stays; the job never holds the lock", () => {
    const h = { ...host(config), confirmTimeout: 3 };
    const s = renderConcern(h, "endpoints");
    const original = "ip mptcp endpoint add 198.51.100.200 id 50 subflow";
    const dir = "/var/lib/mptcp-pulumi/endpoints";
    // past the timeout, the disarmed job must have done nothing; the armed one fires after it and
    // then re-runs an apply, which under load takes a while: wait for it to finish (20 s at most)
    const settle = (confirm: boolean) => (confirm ? "sleep 4" : `i=0; until { [ -e ${dir}/rolled-back ] && [ ! -e ${dir}/rollback/firing ]; } || [ $i -ge 200 ]; do sleep 0.1; i=$((i + 1)); done`);
    const script = (confirm: boolean) =>
      `ip mptcp endpoint flush && ${original} && ip mptcp endpoint show > /run/before && sh -s <<'EOS' && ${confirm ? "sh -s <<'EOC' && " : ""}flock -w 1 /run/mptcp-pulumi.lock true && echo lock-free && ${settle(confirm)} && ip mptcp endpoint show | cmp -s - /run/before && echo undone || echo kept; cat ${dir}/rolled-back 2>/dev/null || echo no-rollback-recorded\n${s.apply}EOS\n${confirm ? `${s.confirm!.create}EOC\n` : ""}`;
    const unconfirmed = ns.isolated(script(false));
    expect(unconfirmed.stdout).toMatch(/endpoints: rollback armed at/);
    expect(unconfirmed.stdout).toContain("lock-free");
    expect(unconfirmed.stdout).toMatch(/undone\n\S+ \(undo exit 0\)/);
    const confirmed = ns.isolated(script(true));
    expect(confirmed.stdout).toContain("endpoints: confirmed over a new SSH connection: rollback disarmed");
    expect(confirmed.stdout).toMatch(/kept\nno-rollback-recorded/);
  });

  it("compared as iproute2 prints them, the same table would differ (negative control)", () => {
    const h = host(config);
    const wanted = h.endpoints.map((e, i) => `${e.address ?? "198.51.100.65"} id ${e.id} ${e.port ? `port ${e.port} ` : ""}${config[i].flags.join(" ")} dev ${e.interface}`);
    ns.sh(`ip mptcp endpoint flush && ${wanted.map((w) => `ip mptcp endpoint add ${w}`).join(" && ")}`);
    const shown = ns
      .sh("ip mptcp endpoint show")
      .trim()
      .split("\n")
      .map((l) => l.trim());
    expect(shown.sort()).not.toEqual([...wanted].sort());
    expect(fn("ep_table", "").trim().split("\n")).toEqual(
      fn("ep_normalize | sort", wanted.join("\n") + "\n")
        .trim()
        .split("\n"),
    );
    ns.sh("ip mptcp endpoint flush");
  });
});

describe("an apply changes only the endpoints that differ (ep_sync)", () => {
  // Every endpoint write (add, delete, change, flush) the scripts make is logged by an `ip` wrapper
  // first in PATH; the tables are read from the kernel.
  const lan = { interface: "lan", id: 1, flags: ["subflow"] };
  const wlan4 = { interface: "wlan", address: "198.51.100.81", id: 2, flags: ["subflow"] };
  const wlan6 = { interface: "wlan", address: "2001:db8:81::1", id: 3, flags: ["subflow"] };
  const admin = "198.51.100.200 id 9 signal";
  const table = () =>
    ns
      .sh("ip mptcp endpoint show")
      .trim()
      .split("\n")
      .map((l) => l.trim())
      .sort();
  const wrapper = scriptFile(
    "ip",
    `#!/bin/sh
case "$1 $2 $3" in "mptcp endpoint add" | "mptcp endpoint delete" | "mptcp endpoint change" | "mptcp endpoint flush") echo "$*" >> /run/ip.log ;; esac
exec ${"/usr/sbin/ip"} "$@"
`,
  );

  /** Sets the table to `lines`, runs `script` (a file) with the logging ip, returns the writes it made and its output. */
  function traced(lines: string[], script: string): { writes: string[]; stdout: string } {
    ns.sh(["ip mptcp endpoint flush", ...lines.map((l) => `ip mptcp endpoint add ${l}`)].join(" && "));
    const r = ns.isolated(`mkdir /run/bin && cp ${wrapper} /run/bin/ip && chmod 755 /run/bin/ip && : > /run/ip.log && PATH=/run/bin:$PATH sh ${script} && echo @writes && cat /run/ip.log`);
    if (r.code !== 0) throw new Error(r.stderr);
    const [stdout, writes] = r.stdout.split("@writes\n");
    return { writes: writes.trim().split("\n").filter(Boolean), stdout };
  }
  const applyOf = (endpoints: object[], name = "apply") => {
    const h = host(endpoints);
    endpoints.forEach((e: any, i) => {
      h.endpoints[i].flags = e.flags;
    });
    return scriptFile(name, renderConcern(h, "endpoints").apply);
  };
  /** The apply as it was: the whole table flushed and re-added when anything differs (negative control). */
  const flushingApplyOf = (endpoints: object[]) => {
    const text = readFileSync(applyOf(endpoints), "utf8");
    const flushing = text.replace('ep_sync "$want" "$have"', "ip mptcp endpoint flush; _changed=all; ep_add_lines <<EOF\n$want\nEOF");
    expect(flushing).not.toBe(text);
    return scriptFile("apply-flushing", flushing);
  };
  const before = ["198.51.100.65 id 1 dev lan subflow", "198.51.100.81 id 2 dev wlan subflow", admin];

  it("adding one endpoint adds it and removes the admin's: the two that stay are not written; control: the flushing apply deletes and re-adds them", () => {
    const next = [lan, wlan4, wlan6];
    const r = traced(before, applyOf(next));
    expect(r.writes).toEqual(["mptcp endpoint delete id 9", "mptcp endpoint add 2001:db8:81::1 id 3 dev wlan subflow"]);
    expect(r.stdout).toContain("endpoints set (2 changed)");
    expect(table()).toEqual(["198.51.100.65 id 1 subflow dev lan", "198.51.100.81 id 2 subflow dev wlan", "2001:db8:81::1 id 3 subflow dev wlan"]);
    const control = traced(before, flushingApplyOf(next));
    expect(control.writes).toEqual([
      "mptcp endpoint flush",
      "mptcp endpoint add 198.51.100.65 id 1 dev lan subflow",
      "mptcp endpoint add 198.51.100.81 id 2 dev wlan subflow",
      "mptcp endpoint add 2001:db8:81::1 id 3 dev wlan subflow",
    ]);
    expect(table()).toEqual(["198.51.100.65 id 1 subflow dev lan", "198.51.100.81 id 2 subflow dev wlan", "2001:db8:81::1 id 3 subflow dev wlan"]);
  });

  it("backup and fullmesh change in place (ip mptcp endpoint change, both flags given); signal to subflow, which change cannot do, is a delete and add of that endpoint only", () => {
    const r = traced(
      before.slice(0, 2),
      applyOf([
        { ...lan, flags: ["subflow", "fullmesh"] },
        { ...wlan4, flags: ["subflow", "backup"] },
      ]),
    );
    expect(r.writes).toEqual(["mptcp endpoint change id 1 nobackup fullmesh", "mptcp endpoint change id 2 backup nofullmesh"]);
    expect(table()).toEqual(["198.51.100.65 id 1 subflow fullmesh dev lan", "198.51.100.81 id 2 subflow backup dev wlan"]);
    const back = traced(table(), applyOf([lan, wlan4]));
    expect(back.writes).toEqual(["mptcp endpoint change id 1 nobackup nofullmesh", "mptcp endpoint change id 2 nobackup nofullmesh"]);
    const sig = traced(before.slice(0, 2), applyOf([lan, { ...wlan4, flags: ["signal"] }]));
    expect(sig.writes).toEqual(["mptcp endpoint delete id 2", "mptcp endpoint add 198.51.100.81 id 2 dev wlan signal"]);
    expect(table()).toEqual(["198.51.100.65 id 1 subflow dev lan", "198.51.100.81 id 2 signal dev wlan"]);
  });

  it("a wanted id held by another address: the holder is deleted before the add; the same address under another id: deleted, added with ours", () => {
    const r = traced(["198.51.100.200 id 2 signal", "198.51.100.65 id 7 dev lan subflow"], applyOf([lan, wlan4]));
    expect(r.writes).toEqual([
      "mptcp endpoint delete id 2",
      "mptcp endpoint delete id 7",
      "mptcp endpoint add 198.51.100.65 id 1 dev lan subflow",
      "mptcp endpoint add 198.51.100.81 id 2 dev wlan subflow",
    ]);
    expect(table()).toEqual(["198.51.100.65 id 1 subflow dev lan", "198.51.100.81 id 2 subflow dev wlan"]);
  });

  it("revert puts the original table back exactly, writing only the endpoints that differ; a re-apply writes nothing", () => {
    const h = host([lan, wlan4, wlan6]);
    [lan, wlan4, wlan6].forEach((e, i) => {
      h.endpoints[i].flags = e.flags as (typeof h.endpoints)[number]["flags"];
    });
    const s = renderConcern(h, "endpoints");
    const apply = scriptFile("apply", s.apply);
    const revert = scriptFile("revert", s.revert);
    ns.sh(["ip mptcp endpoint flush", ...before.map((l) => `ip mptcp endpoint add ${l}`)].join(" && "));
    const original = table();
    const r = ns.isolated(
      `mkdir /run/bin && cp ${wrapper} /run/bin/ip && chmod 755 /run/bin/ip && export PATH=/run/bin:$PATH && sh ${apply} >/dev/null && : > /run/ip.log && sh ${apply} && echo @reapply && cat /run/ip.log && : > /run/ip.log && sh ${revert} >/dev/null && echo @revert && cat /run/ip.log`,
    );
    expect(r.code, r.stderr).toBe(0);
    const [applied, reapply, reverted] = r.stdout.split(/@reapply\n|@revert\n/);
    expect(applied).toContain("endpoints unchanged");
    expect(reapply.trim()).toBe("");
    expect(reverted.trim().split("\n")).toEqual(["mptcp endpoint delete id 3", `mptcp endpoint add ${admin}`]);
    expect(table()).toEqual(original);
  });

  it("an interface event's change (ep_set ifneeded) writes only that interface's differing endpoints", () => {
    const h = host([lan, wlan4, { ...wlan6, flags: ["subflow", "backup"] }]);
    [lan, wlan4, { ...wlan6, flags: ["subflow", "backup"] }].forEach((e, i) => {
      h.endpoints[i].flags = e.flags as (typeof h.endpoints)[number]["flags"];
    });
    const script = scriptFile("ifneeded", renderScript({ host: h, title: "test", source: "test.sh", text: "ep_set wlan ifneeded" }));
    const r = traced(["198.51.100.65 id 1 dev lan subflow", "198.51.100.81 id 2 dev wlan subflow", "2001:db8:81::1 id 3 dev wlan subflow", "198.51.100.200 id 8 signal dev wlan"], script);
    expect(r.writes).toEqual(["mptcp endpoint delete id 8", "mptcp endpoint change id 3 backup nofullmesh"]);
    expect(table()).toEqual(["198.51.100.65 id 1 subflow dev lan", "198.51.100.81 id 2 subflow dev wlan", "2001:db8:81::1 id 3 subflow backup dev wlan"]);
  });
});

describe("an implicit endpoint in the way of an add (two scratch namespaces, a real join)", () => {
  // s announces its wlan address; c's join to it leaves from c's wlan address, which has no
  // endpoint: the kernel keeps an implicit endpoint for it (iproute2 6.1 prints "rawflags 10")
  let s: ScratchNs;
  let c: ScratchNs;
  beforeAll(() => {
    s = new ScratchNs("mptcp-ims");
    c = new ScratchNs("mptcp-imc");
    for (const [i, net] of [
      ["lan", 96],
      ["wlan", 112],
    ] as const) {
      run(["ip", "link", "add", i, "netns", c.name, "type", "veth", "peer", "name", i, "netns", s.name]);
      s.sh(`ip addr add 198.51.100.${net + 1}/28 dev ${i} && ip link set ${i} up`);
      c.sh(`ip addr add 198.51.100.${net + 2}/28 dev ${i} && ip link set ${i} up`);
    }
    s.sh("ip mptcp endpoint add 198.51.100.113 id 1 signal dev wlan && ip mptcp limits set subflows 1 add_addr_accepted 0");
    c.sh("ip mptcp limits set subflows 1 add_addr_accepted 1");
  });
  afterAll(() => {
    s?.close();
    c?.close();
  });

  /** A python program in the background in namespace `ns`. */
  const runSpawn = (ns: string, code: string) => spawn("ip", ["netns", "exec", ns, "python3", "-c", code], { stdio: "ignore" });

  /** One connection c -> s's lan address, held until c has the implicit endpoint; its line. */
  function makeImplicit(): string {
    c.sh("ip mptcp endpoint flush");
    const server = runSpawn(
      s.name,
      `import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_STREAM, 262)\ns.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\ns.bind(("198.51.100.97", 5299)); s.listen(); s.settimeout(10)\nc, _ = s.accept()\nwhile c.recv(65536): pass`,
    );
    try {
      c.sh(
        `python3 -c ${shq(`import socket, subprocess, time
for t in range(100):
    try: s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, 262); s.connect(("198.51.100.97", 5299)); break
    except ConnectionRefusedError: time.sleep(0.05)
for i in range(100):
    s.send(b"x" * 1000)
    if "rawflags 10" in subprocess.run(["ip", "mptcp", "endpoint", "show"], capture_output=True, text=True).stdout: break
    time.sleep(0.05)
s.close()`)}`,
      );
    } finally {
      server.kill();
    }
    return c.sh("ip mptcp endpoint show").trim();
  }

  function addLines(input: string): { code: number; stdout: string; stderr: string } {
    const script = renderScript({ host: host([]), title: "test", source: "test.sh", text: "ep_add_lines" });
    return c.isolated(`printf %s ${shq(input)} | sh -c ${shq(script)}`);
  }

  it("on its address: the add with our id is refused (-22, negative control); ep_add_lines replaces it and the endpoint has our id", () => {
    expect(makeImplicit()).toBe("198.51.100.114 id 1 rawflags 10");
    const refused = c.try("ip mptcp endpoint add 198.51.100.114 id 7 dev wlan subflow");
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain("-22");
    const r = addLines("198.51.100.114 id 7 dev wlan subflow\n");
    expect(r.stderr).toBe("");
    expect(r.stdout).toContain("replaced the kernel's implicit endpoint 198.51.100.114 id 1");
    expect(c.sh("ip mptcp endpoint show").trim()).toBe("198.51.100.114 id 7 subflow dev wlan");
  });

  it("holding our id on another address: the add is refused (-16, negative control); ep_add_lines replaces it", () => {
    expect(makeImplicit()).toBe("198.51.100.114 id 1 rawflags 10");
    const refused = c.try("ip mptcp endpoint add 198.51.100.98 id 1 dev lan subflow");
    expect(refused.stderr).toContain("-16");
    const r = addLines("198.51.100.98 id 1 dev lan subflow\n");
    expect(r.code, r.stderr).toBe(0);
    expect(c.sh("ip mptcp endpoint show").trim()).toBe("198.51.100.98 id 1 subflow dev lan");
  });

  it("a refusal with no implicit endpoint in the way still fails, with the kernel's message", () => {
    c.sh("ip mptcp endpoint flush && ip mptcp endpoint add 198.51.100.98 id 2 dev lan subflow");
    const r = addLines("198.51.100.98 id 3 dev lan signal\n");
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("ip mptcp endpoint add 198.51.100.98 id 3 dev lan signal failed: Error: too many addresses or duplicate one: -17.");
  });
});
