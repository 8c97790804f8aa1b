// Services on MPTCP (hosts[].services): on laptops that boot systemd, real units get our drop-in,
// answer over MPTCP with joins on both paths after up, over plain TCP after destroy, and keep the
// drop-in when their vendor unit file is reinstalled. Errors name the config path and change nothing.
import { beforeAll, describe, expect, it } from "vitest";
import { expectedJoins, Model, requireValidConfig } from "../components";
import { LabHost, labSh, labStackConfig } from "../scripts/lab/lab";
import { DEFAULT_TOPOLOGY } from "../scripts/lab/topology";
import { labFile } from "./harness/fixture";
import { runProgram, StackConfig } from "./harness/program";
import { CommandProviderSim } from "./harness/provider";
import { counter, hostState, snapshot } from "./harness/labtest";

/** Where a package would put its units, writable in a laptop (its /usr/local is its own). */
const VENDOR = "/usr/local/lib/systemd/system";
const WRAP = "/usr/lib/x86_64-linux-gnu/mptcpize/libmptcpwrap.so.0";
/** A vendor unit that already preloads a library: ours must be appended, not replace it. */
const WEB_UNIT = (description: string) => `[Unit]
Description=${description}
[Service]
Environment=LD_PRELOAD=/lib/x86_64-linux-gnu/libdl.so.2 "WEB_GREETING=hello world"
ExecStart=/usr/bin/python3 -m http.server 8080 --directory /usr/share/doc
`;
/** Stands in for a Go program: what matters is the environment systemd gives it. */
const GO_UNIT = `[Service]
Environment=GODEBUG=http2client=0,multipathtcp=0
ExecStart=/bin/sleep infinity
`;
const SOCKET_UNIT = `[Socket]
ListenStream=8081
Accept=yes
`;

const f = labFile(DEFAULT_TOPOLOGY, "v");
let config: StackConfig;
let model: Model;
let server: LabHost;
let client: LabHost;
let address: string;
let pre: string;
const pids = new Map<string, string>();

const mainPid = (unit: string) => labSh(server, `systemctl show -p MainPID --value ${unit}`).trim();
const environ = (unit: string) => labSh(server, `tr '\\0' '\\n' < /proc/${mainPid(unit)}/environ`);
const ports = (flags: string) => new Set([...labSh(server, `ss -Hln ${flags}`).matchAll(/:(\d+)\s/g)].map((m) => Number(m[1])));

/**
 * How the server listens on PORT (`ss -M`: MPTCP), once a (re)started unit has bound it (5 s at most).
 * An MPTCP listener shows in `ss -t` too (its TCP subflow listener), so `-t` is read first and `-M`
 * after: a socket bound between the two reads is then seen by `-M`, never taken for plain TCP.
 */
async function listener(port: number): Promise<"mptcp" | "tcp" | "none"> {
  for (let i = 0; i < 50; i++) {
    if (ports("-t").has(port)) return ports("-M").has(port) ? "mptcp" : "tcp";
    await new Promise((r) => setTimeout(r, 100));
  }
  return "none";
}

/** A transfer to iperf3 through an MPTCP client: joins and MP_CAPABLE SYNs the server saw, bytes per server interface. */
function iperfTransfer() {
  const before = { joins: counter(server, "MPTcpExtMPJoinAckRx"), capable: counter(server, "MPTcpExtMPCapableSYNRX"), rx: rxBytes() };
  labSh(client, `mptcpize run iperf3 -c ${address} -n 4M >/dev/null`);
  const rx = rxBytes();
  return {
    joins: counter(server, "MPTcpExtMPJoinAckRx") - before.joins,
    capable: counter(server, "MPTcpExtMPCapableSYNRX") - before.capable,
    rx: Object.fromEntries(Object.keys(rx).map((k) => [k, rx[k] - before.rx[k]])),
  };
}

function rxBytes(): Record<string, number> {
  return Object.fromEntries(["lan", "wlan"].map((i) => [i, Number(labSh(server, `cat /sys/class/net/${i}/statistics/rx_bytes`))]));
}

function withServices(services: unknown[]): StackConfig {
  const cfg = structuredClone(config) as { hosts: any[]; links: unknown };
  cfg.hosts.find((h) => h.name === "server").services = services;
  return cfg;
}

/** What the services apply may change: the laptop's state (unit files and drop-ins included) and which processes run the units. */
const servicesState = (staged = true) => snapshot(server, { staged }) + labSh(server, "systemctl show -p MainPID --value iperf3 mptcp-lab-web mptcp-lab-go");

/**
 * An up of the server's services alone that must fail, changing nothing on the laptop but the
 * scripts its copy delivered to root's home; its destroy then removes those too.
 */
async function failure(services: unknown[]): Promise<string> {
  const scratch = new CommandProviderSim(f.ssh.run);
  const only = (config.hosts as any[]).find((h) => h.name === "server");
  const [before, beforeUnstaged] = [servicesState(), servicesState(false)];
  const err = await scratch.up((await runProgram({ hosts: [{ name: only.name, ssh: only.ssh, services }], links: [] }, { privateKey: f.privateKey })).commands).then(
    () => undefined,
    (e: Error) => e,
  );
  hostState(server); // (checks that the staged files are only our scripts)
  expect(servicesState(false)).toBe(beforeUnstaged);
  // the stack holds the host's copy, its cleanup and its anchor, which changed nothing
  expect([...scratch.state.keys()].sort()).toEqual([`${only.name}-anchor`, `${only.name}-scripts`, `${only.name}-scripts-cleanup`]);
  await scratch.destroy();
  expect(servicesState()).toBe(before);
  return err?.message ?? "no error";
}

beforeAll(async () => {
  server = f.lab.hosts.find((h) => h.role === "server")!;
  client = f.lab.hosts.find((h) => h.role === "client")!;
  labSh(
    server,
    `mkdir -p ${VENDOR}
cat > ${VENDOR}/mptcp-lab-web.service <<'EOF'
${WEB_UNIT("lab web server")}EOF
cat > ${VENDOR}/mptcp-lab-go.service <<'EOF'
${GO_UNIT}EOF
cat > ${VENDOR}/mptcp-lab-idle.service <<'EOF'
${GO_UNIT}EOF
cat > ${VENDOR}/mptcp-lab-echo.socket <<'EOF'
${SOCKET_UNIT}EOF
systemctl daemon-reload
systemctl start iperf3.service mptcp-lab-web.service mptcp-lab-go.service`,
  );
  const generated = labStackConfig(f.lab) as { hosts: any[]; links: { address: string }[] };
  address = generated.links[0].address;
  config = generated;
  config = withServices([{ unit: "iperf3.service" }, { unit: "mptcp-lab-web.service" }, { unit: "mptcp-lab-go.service", mode: "godebug" }, { unit: "mptcp-lab-idle.service" }]);
  model = requireValidConfig(config);
  pre = snapshot(server);
});

describe("services on MPTCP through our drop-in", () => {
  it("before up (negative control): iperf3 listens on plain TCP; an MPTCP client falls back, no join", async () => {
    expect(await listener(5201)).toBe("tcp");
    const t = iperfTransfer();
    console.log(`before up: MP_CAPABLE SYNs seen ${t.capable}, joins ${t.joins}, server rx ${JSON.stringify(t.rx)}`);
    expect(t.capable).toBe(0);
    expect(t.joins).toBe(0);
  });

  it("bad input fails the apply naming the host and the unit, and changes nothing", async () => {
    const missing = await failure([{ unit: "mptcp-lab-nosuch.service" }]);
    expect(missing).toMatch(
      /mptcp-pulumi\[server\]: error: services\[mptcp-lab-nosuch\.service\]\.unit: mptcp-lab-nosuch\.service is not-found on this host .*install the unit first, or fix the name/,
    );
    const socket = await failure([{ unit: "iperf3.service" }, { unit: "mptcp-lab-echo.socket", mode: "socket" }]);
    const version = labSh(server, "systemctl --version").match(/^systemd (\d+)/)![1];
    expect(socket).toMatch(
      new RegExp(
        `mptcp-pulumi\\[server\\]: error: services\\[mptcp-lab-echo\\.socket\\]\\.mode: socket needs SocketProtocol=mptcp, which systemd ${version} on this host does not have \\(systemd >= 256 does\\)`,
      ),
    );
    // libmptcpwrap missing: hide the package's directory inside the laptop
    labSh(server, `mount -t tmpfs none ${WRAP.replace(/\/[^/]+$/, "")}`);
    let noWrap: string;
    try {
      noWrap = await failure([{ unit: "iperf3.service" }]);
    } finally {
      labSh(server, `umount ${WRAP.replace(/\/[^/]+$/, "")}`);
    }
    expect(noWrap).toMatch(/mptcp-pulumi\[server\]: error: services\[iperf3\.service\]: libmptcpwrap is not installed on this host.*apt-get install mptcpize/);
    console.log(`errors:\n  ${[missing, socket, noWrap].map((m) => m.split("\n").find((l) => l.includes("error:"))).join("\n  ")}`);
    expect(snapshot(server)).toBe(pre);
    expect(await listener(5201)).toBe("tcp");
  });

  it("up: running units restart onto MPTCP (preload appended, GODEBUG merged), a stopped one stays stopped; iperf3 gets the predicted joins on both paths", async () => {
    for (const u of ["iperf3", "mptcp-lab-web", "mptcp-lab-go"]) pids.set(u, mainPid(u));
    const steps = await f.sim.up((await runProgram(config, { privateKey: f.privateKey })).commands);
    const services = steps.find((s) => s.name === "server-services")!;
    expect(services.phase).toBe("create");
    for (const u of ["iperf3", "mptcp-lab-web", "mptcp-lab-go"]) expect(mainPid(u), `${u} restarted`).not.toBe(pids.get(u));
    expect(labSh(server, "systemctl is-active mptcp-lab-idle.service || true").trim()).toBe("inactive");
    expect(environ("mptcp-lab-web")).toContain(`LD_PRELOAD=/lib/x86_64-linux-gnu/libdl.so.2 ${WRAP}\n`);
    expect(environ("mptcp-lab-web")).toContain("WEB_GREETING=hello world\n");
    expect(environ("mptcp-lab-go")).toContain("GODEBUG=http2client=0,multipathtcp=1\n");
    expect(labSh(server, "cat /etc/systemd/system/mptcp-lab-idle.service.d/zz-mptcp-pulumi.conf")).toContain(`Environment="LD_PRELOAD=${WRAP}"`);
    expect(await listener(5201)).toBe("mptcp");
    expect(await listener(8080)).toBe("mptcp");
    const byName = (n: string) => model.hosts.find((h) => h.name === n)!;
    const predicted = expectedJoins(byName(client.name), byName(server.name), address);
    const t = iperfTransfer();
    console.log(`after up: MP_CAPABLE SYNs ${t.capable}, joins ${t.joins} (predicted ${predicted} per connection), server rx ${JSON.stringify(t.rx)}; stdout:\n${services.result!.stdout}`);
    // iperf3 opens two connections, control and data, each MPTCP with the predicted joins
    expect(t.capable).toBe(2);
    expect(t.joins).toBe(2 * predicted);
    for (const i of ["lan", "wlan"]) expect(t.rx[i], `${i} carried data`).toBeGreaterThan(0.05 * (4 << 20));
  });

  it("a re-apply changes nothing and restarts nothing", async () => {
    const before = snapshot(server);
    const now = new Map(["iperf3", "mptcp-lab-web", "mptcp-lab-go"].map((u) => [u, mainPid(u)]));
    const cmd = [...f.sim.state.values()].find((c) => c.name === "server-services")!;
    const r = await f.ssh.run(cmd, cmd.create!, "create");
    expect(r.code).toBe(0);
    expect(r.stdout.match(/drop-in unchanged/g)).toHaveLength(4);
    expect(r.stdout).not.toContain("restarted");
    for (const [u, pid] of now) expect(mainPid(u)).toBe(pid);
    expect(snapshot(server)).toBe(before);
  });

  it("reinstalling the vendor unit file keeps the drop-in: after a restart the service is still MPTCP", async () => {
    labSh(
      server,
      `cat > ${VENDOR}/.mptcp-lab-web.new <<'EOF'
${WEB_UNIT("lab web server, new package version")}EOF
mv ${VENDOR}/.mptcp-lab-web.new ${VENDOR}/mptcp-lab-web.service
systemctl daemon-reload
systemctl restart mptcp-lab-web.service`,
    );
    expect(labSh(server, "systemctl show -p Description --value mptcp-lab-web.service").trim()).toBe("lab web server, new package version");
    expect(environ("mptcp-lab-web")).toContain(`LD_PRELOAD=/lib/x86_64-linux-gnu/libdl.so.2 ${WRAP}\n`);
    expect(await listener(8080)).toBe("mptcp");
  });

  it("a service removed from the config gets its drop-in removed and restarts onto plain TCP", async () => {
    const next = withServices([{ unit: "iperf3.service" }, { unit: "mptcp-lab-go.service", mode: "godebug" }, { unit: "mptcp-lab-idle.service" }]);
    const steps = await f.sim.up((await runProgram(next, { privateKey: f.privateKey })).commands);
    // the copy delivers the changed script, the services command runs it
    expect(steps.map((s) => `${s.name}:${s.phase}:${s.reason}`)).toEqual(["server-scripts:update:changed", "server-services:create:changed"]);
    expect(steps[1].result!.stdout).toContain("mptcp-lab-web.service: drop-in removed");
    expect(labSh(server, "ls /etc/systemd/system")).not.toContain("mptcp-lab-web.service.d");
    expect(environ("mptcp-lab-web")).toContain("LD_PRELOAD=/lib/x86_64-linux-gnu/libdl.so.2\n");
    expect(await listener(8080)).toBe("tcp");
    expect(await listener(5201)).toBe("mptcp");
  });

  it("destroy: drop-ins removed, running units back on plain TCP, the laptop as before up", async () => {
    const steps = await f.sim.destroy();
    expect(steps.map((s) => s.name)).toContain("server-services");
    expect(await listener(5201)).toBe("tcp");
    expect(environ("mptcp-lab-go")).toContain("GODEBUG=http2client=0,multipathtcp=0\n");
    const t = iperfTransfer();
    console.log(`after destroy: MP_CAPABLE SYNs ${t.capable}, joins ${t.joins}`);
    expect(t.capable).toBe(0);
    expect(t.joins).toBe(0);
    expect(snapshot(server)).toBe(pre);
  });
});
