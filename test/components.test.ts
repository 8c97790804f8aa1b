import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { HOST_TYPE, NETWORK_TYPE, parseApplied, readStackConfig, STACK_NETWORK } from "../components";
import { runProgram } from "./harness/program";

const ROOT = join(__dirname, "..");
const dev = () => structuredClone(readStackConfig(join(ROOT, "Pulumi.dev.yaml"))) as { hosts: any[]; links: any[] };
const SECRET_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ-SECRET-MARKER\n-----END OPENSSH PRIVATE KEY-----";

describe("MptcpHost under pulumi mocks", () => {
  it("registers one component per host, its anchor and one remote.Command per configured concern, parented and chained", async () => {
    const { resources, commands } = await runProgram(dev(), { privateKey: SECRET_KEY });
    const components = resources.filter((r) => r.type === HOST_TYPE);
    expect(components.map((c) => c.name)).toEqual(["server", "client"]);
    // one MptcpNetwork, the hosts' parent; under mocks there is no stack resource: it sits at the root
    const networks = resources.filter((r) => r.type === NETWORK_TYPE);
    expect(networks.map((n) => [n.name, n.parent, n.custom])).toEqual([[STACK_NETWORK, "", false]]);
    expect(components.every((c) => !c.custom && c.parent === networks[0].urn)).toBe(true);
    expect(commands.map((c) => c.name).sort()).toEqual(
      [
        "server-scripts",
        "client-scripts",
        "server-scripts-cleanup",
        "client-scripts-cleanup",
        "server-anchor",
        "client-anchor",
        "server-sysctl",
        "server-limits",
        "server-networkmanager",
        "server-endpoints",
        "server-endpoints-confirm",
        "client-sysctl",
        "client-limits",
        "client-networkmanager",
      ].sort(),
    );
    for (const c of commands) {
      const host = c.name.split("-")[0];
      expect(resources.find((r) => r.name === c.name)!.parent).toBe(components.find((x) => x.name === host)!.urn);
    }
    const deps = Object.fromEntries(commands.map((c) => [c.name, c.dependsOn]));
    expect(deps).toEqual({
      "server-scripts": [],
      "server-scripts-cleanup": ["server-scripts"],
      "server-anchor": ["server-scripts-cleanup"],
      "server-sysctl": ["server-anchor"],
      "server-limits": ["server-sysctl"],
      "server-networkmanager": ["server-limits"],
      "server-endpoints": ["server-networkmanager"],
      "server-endpoints-confirm": ["server-endpoints"],
      "client-scripts": [],
      "client-scripts-cleanup": ["client-scripts"],
      "client-anchor": ["client-scripts-cleanup"],
      "client-sysctl": ["client-anchor"],
      "client-limits": ["client-sysctl"],
      "client-networkmanager": ["client-limits"],
    });
  });

  it("every command has a create and a delete, deleteBeforeReplace, host triggers, no previous output in env", async () => {
    const { commands } = await runProgram(dev(), { privateKey: SECRET_KEY });
    for (const c of commands.filter((x) => !x.name.endsWith("-confirm") && !x.name.endsWith("-scripts-cleanup") && !x.copy)) {
      // registered: a runner of the copied script, which names it; what the host runs: the script
      expect(c.inputs.create, c.name).toMatch(/^# mptcp-pulumi: host \w+, (\w+ apply|anchor\b)[^\n]*\n[\s\S]*\nexec sh "\$f" <\/dev\/null\n$/);
      expect(c.create, c.name).toMatch(/^exec sh -s <<'MPTCP_PULUMI_SCRIPT'\n# mptcp-pulumi: host \w+, (\w+ apply|anchor\b)/);
      expect(c.delete, c.name).toMatch(/^exec sh -s <<'MPTCP_PULUMI_SCRIPT'\n# mptcp-pulumi: host \w+, (\w+ revert|anchor delete\b)/);
      expect(c.deleteBeforeReplace, c.name).toBe(true);
      // the anchor has none: it is never replaced (components/host.ts)
      expect(c.triggers).toEqual(c.name.endsWith("-anchor") ? undefined : [c.connection.host, c.connection.port, c.connection.user]);
      expect(c.inputs.addPreviousOutputInEnv).toBe(false);
      expect(c.inputs.environment).toBeUndefined();
    }
  });

  it("each host's scripts-cleanup only deletes: the entry's copied directory, as the SSH user; a new target replaces it create-first", async () => {
    const { commands } = await runProgram(dev(), { privateKey: SECRET_KEY });
    for (const host of ["server", "client"]) {
      const c = commands.find((x) => x.name === `${host}-scripts-cleanup`)!;
      expect(c.inputs.create).toBeUndefined();
      expect(c.inputs.delete).toBe(
        `# mptcp-pulumi: host ${host}, the scripts copied for it\nrm -rf -- "$HOME"/.mptcp-pulumi/mptcp.test.${host} && { rmdir -- "$HOME"/.mptcp-pulumi 2>/dev/null || true; }\n`,
      );
      expect(c.deleteBeforeReplace).toBe(false);
      // a new target replaces it: the old one's delete cleans the old home, at the end of the update
      expect(c.triggers).toEqual([c.connection.host, c.connection.port, c.connection.user]);
    }
  });

  it("the private key is in the connection only: no command text, trigger or output holds it", async () => {
    const { commands, outputs, resources } = await runProgram(dev(), { privateKey: SECRET_KEY });
    expect(commands[0].connection.privateKey).toBe(SECRET_KEY);
    expect(commands[0].connection.hostKey).toMatch(/^ssh-ed25519 /);
    for (const c of commands) {
      const { connection: _c, ...rest } = c.inputs;
      expect(JSON.stringify(rest)).not.toContain("SECRET-MARKER");
    }
    expect(JSON.stringify(outputs)).not.toContain("SECRET-MARKER");
    // negative control: the check would see the key where it is
    expect(JSON.stringify(resources.map((r) => r.inputs))).toContain("SECRET-MARKER");
  });

  it("without mptcp:sshPrivateKey the connection has no key (the provider then uses SSH_AUTH_SOCK)", async () => {
    const { commands } = await runProgram(dev());
    expect(commands[0].connection.privateKey).toBeUndefined();
  });

  it("names are unique (mocks do not detect duplicate URNs)", async () => {
    const { resources } = await runProgram(dev());
    const urns = resources.map((r) => r.urn);
    expect(new Set(urns).size).toBe(urns.length);
  });

  it("exports per host what its applies reported as objects (components/applied.ts), and per link the predicted joins and subflows", async () => {
    const c = dev();
    c.hosts[0].services = [{ unit: "iperf3.service" }];
    // what the applies print (sh/lib/base.sh report): the lab suite's (a) checks it against the hosts
    const stdout: Record<string, string> = {
      "server-sysctl": "net.mptcp.enabled = 1\n@applied sysctl net.mptcp.enabled 1\n",
      "server-limits": "add_addr_accepted 0 subflows 2\n@applied limits add_addr_accepted 0 subflows 2\n",
      "server-endpoints":
        "mptcp-pulumi[server]: endpoints set (1 changed)\n@applied endpoint 10.22.17.33 id 7 dev wlan0 signal\n@applied endpoint 10.22.18.1 id 200 port 5201 dev eth0 backup subflow\n",
      "server-services": "@applied service iperf3.service preload active /etc/systemd/system/iperf3.service.d/zz-mptcp-pulumi.conf\n",
      "server-networkmanager": "@applied networkmanager endpoints-off /etc/NetworkManager/conf.d/90-mptcp-pulumi.conf\n@applied future-kind ignored\n",
    };
    const { outputs } = await runProgram(c, { stdout: (name) => stdout[name] });
    expect(outputs).toEqual({
      hosts: {
        server: {
          sysctl: { "net.mptcp.enabled": "1" },
          limits: { subflows: 2, addAddrAccepted: 0 },
          endpoints: [
            { address: "10.22.17.33", id: 7, interface: "wlan0", flags: ["signal"] },
            { address: "10.22.18.1", id: 200, port: 5201, interface: "eth0", flags: ["backup", "subflow"] },
          ],
          services: [{ unit: "iperf3.service", mode: "preload", active: "active", dropIn: "/etc/systemd/system/iperf3.service.d/zz-mptcp-pulumi.conf" }],
          networkManager: { state: "endpoints-off", conf: "/etc/NetworkManager/conf.d/90-mptcp-pulumi.conf" },
        },
        // the mocks' stdout ("NAME: applied") has no @applied line
        client: {},
      },
      links: [{ client: "client", server: "server", address: "10.22.17.33", joins: 1, subflows: 2 }],
    });
    // the hooks' lines (a host of the dev stack has no hooks): files, and routing with and without a gateway
    expect(parseApplied("@applied hook /usr/local/sbin/mptcp-pulumi-sync\n@applied route wlan0 source 120 1120 10.22.18.1\n@applied route eth0 none 171 1171\n")).toEqual({
      hooks: {
        files: ["/usr/local/sbin/mptcp-pulumi-sync"],
        routing: [
          { interface: "wlan0", mode: "source", table: 120, priority: 1120, gateway: "10.22.18.1" },
          { interface: "eth0", mode: "none", table: 171, priority: 1171 },
        ],
      },
    });
    // a malformed line of a known kind is an error, not a wrong output
    expect(() => parseApplied("@applied limits add_addr_accepted 2 subflows two")).toThrow(/limits subflows: not a number: two/);
  });

  it("services: a command after the host's other concerns, that reverts first on destroy", async () => {
    const c = dev();
    c.hosts[0].hooks = true;
    c.hosts[0].services = [{ unit: "iperf3.service" }];
    const { commands } = await runProgram(c);
    const services = commands.find((x) => x.name === "server-services")!;
    expect(services.dependsOn).toEqual(["server-hooks-confirm"]);
    expect(services.create).toMatch(/services apply/);
    expect(services.delete).toMatch(/services revert/);
  });

  it("a non-root user gets sudo -n", async () => {
    const c = dev();
    c.hosts[1].ssh.user = "admin";
    const { commands } = await runProgram(c);
    expect(commands.find((x) => x.name === "client-limits")!.create).toMatch(/^sudo -n true/);
    expect(commands.find((x) => x.name === "server-limits")!.create).toMatch(/^exec sh -s/);
  });

  it("insecureIgnoreHostKey warns and sends no hostKey", async () => {
    const c = dev();
    delete c.hosts[0].ssh.hostKey;
    c.hosts[0].ssh.insecureIgnoreHostKey = true;
    const { commands, logs } = await runProgram(c, { preview: true });
    expect(commands.find((x) => x.name === "server-sysctl")!.connection.hostKey).toBeUndefined();
    expect(logs.join("\n")).toMatch(/^server: ssh\.insecureIgnoreHostKey is set/);
  });

  it("an invalid config fails before any resource is registered, listing every error", async () => {
    const c = dev();
    c.hosts[0].endpoints[0].interface = "wlan0 x"; // a field error
    c.links.push({ client: "ghost", server: "client" }); // and a cross-host one, reported together
    let run: unknown;
    const err = await runProgram(c).then(
      (r) => {
        run = r;
      },
      (e: Error) => e,
    );
    expect(run).toBeUndefined();
    expect((err as Error).message).toMatch(/2 errors in the mptcp stack config/);
    expect((err as Error).message).toContain("mptcp:hosts[0].endpoints[0].interface");
    expect((err as Error).message).toContain("mptcp:links[1].client");
  });

  it("endpoints and hooks: each apply is confirmed by a second command (a new SSH connection) that re-runs whenever the apply's output changes; confirmTimeout 0 drops them", async () => {
    const c = dev();
    c.hosts[0].hooks = true;
    const { commands } = await runProgram(c);
    for (const concern of ["endpoints", "hooks"]) {
      const confirm = commands.find((x) => x.name === `server-${concern}-confirm`)!;
      expect(confirm.dependsOn).toEqual([`server-${concern}`]);
      expect(confirm.triggers).toEqual([confirm.connection.host, 22, "root", `server-${concern}: applied`]); // the apply's stdout, under mocks
      // it keeps the apply the host completed last (which carries its own text), not a copy of its own
      expect(confirm.create).toMatch(new RegExp(`${concern} confirm[\\s\\S]*rb_confirm ${concern} "`));
      // (it names the variable only to run an apply the host kept again, lib/rollback.sh rb_redo)
      expect(confirm.create).not.toMatch(/^MPTCP_PULUMI_SELF=\$\(cat <<'MPTCP_PULUMI_SELF'$/m);
      expect(commands.find((x) => x.name === `server-${concern}`)!.create).toMatch(/^MPTCP_PULUMI_SELF=\$\(cat <<'MPTCP_PULUMI_SELF'$/m);
      expect(confirm.delete).toMatch(/confirm delete[\s\S]*CONCERN=/);
    }
    expect(commands.find((x) => x.name === "server-hooks")!.dependsOn).toEqual(["server-endpoints-confirm"]);
    c.hosts[0].confirmTimeout = 0;
    const off = await runProgram(c);
    expect(off.commands.filter((x) => x.name.endsWith("-confirm"))).toEqual([]);
    const apply = off.commands.find((x) => x.name === "server-endpoints")!.create!;
    expect(apply).toContain("\nCONFIRM_TIMEOUT=0\n"); // rb_arm returns at once
  });

  it("hooks: a command after endpoints, that reverts first on destroy", async () => {
    const c = dev();
    c.hosts[0].hooks = true;
    const { commands } = await runProgram(c);
    const hooks = commands.find((x) => x.name === "server-hooks")!;
    expect(hooks.dependsOn).toEqual(["server-endpoints-confirm"]);
    expect(hooks.deleteBeforeReplace).toBe(true);
    expect(hooks.create).toMatch(/hooks apply/);
    expect(hooks.delete).toMatch(/hooks revert/);
    expect(commands.find((x) => x.name === "client-hooks")).toBeUndefined();
  });

  it("a host without limits or endpoints gets only the concerns it sets", async () => {
    const c = dev();
    delete c.hosts[1].limits;
    c.hosts[0].endpoints = [];
    c.links = [];
    const { commands } = await runProgram(c);
    expect(commands.map((x) => x.name).sort()).toEqual([
      "client-anchor",
      "client-scripts",
      "client-scripts-cleanup",
      "client-sysctl",
      "server-anchor",
      "server-limits",
      "server-networkmanager",
      "server-scripts",
      "server-scripts-cleanup",
      "server-sysctl",
    ]);
    // a host that sets no concern gets no command at all, the anchor, the copy and its cleanup neither
    c.hosts[1].sysctl = {};
    expect((await runProgram(c)).commands.map((x) => x.name).filter((n) => n.startsWith("client"))).toEqual([]);
  });

  it("endpointOwner networkmanager: no networkmanager command, and endpoints in the config are refused with the path and the fix", async () => {
    const c = dev();
    c.hosts[1].endpointOwner = "networkmanager";
    const { commands } = await runProgram(c);
    expect(commands.map((x) => x.name)).not.toContain("client-networkmanager");
    expect(commands.map((x) => x.name)).toContain("server-networkmanager");
    c.hosts[0].endpointOwner = "networkmanager";
    const err = await runProgram(c).then(
      () => undefined,
      (e: Error) => e.message,
    );
    expect(err).toMatch(/mptcp:hosts\[0\]\.endpoints: endpointOwner is networkmanager, .*: remove endpoints, or set endpointOwner: mptcp-pulumi/);
  });
});
