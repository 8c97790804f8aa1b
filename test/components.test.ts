import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { readStackConfig } from "../components";
import { runProgram } from "./harness/program";

const ROOT = join(__dirname, "..");
const dev = () => structuredClone(readStackConfig(join(ROOT, "Pulumi.dev.yaml"))) as { hosts: any[]; links: any[] };
const SECRET_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ-SECRET-MARKER\n-----END OPENSSH PRIVATE KEY-----";

describe("MptcpHost under pulumi mocks", () => {
  it("registers one component per host, its anchor and one remote.Command per configured concern, parented and chained", async () => {
    const { resources, commands } = await runProgram(dev(), { privateKey: SECRET_KEY });
    const components = resources.filter((r) => r.type === "mptcp:index:Host");
    expect(components.map((c) => c.name)).toEqual(["server", "client"]);
    // Under mocks there is no stack resource: components sit at the root.
    expect(components.every((c) => !c.custom && c.parent === "")).toBe(true);
    expect(commands.map((c) => c.name).sort()).toEqual(["server-anchor", "client-anchor", "server-sysctl", "server-limits", "server-networkmanager", "server-endpoints", "server-endpoints-confirm", "client-sysctl", "client-limits", "client-networkmanager"].sort());
    for (const c of commands) {
      const host = c.name.split("-")[0];
      expect(resources.find((r) => r.name === c.name)!.parent).toBe(components.find((x) => x.name === host)!.urn);
    }
    const deps = Object.fromEntries(commands.map((c) => [c.name, c.dependsOn]));
    expect(deps).toEqual({
      "server-anchor": [],
      "server-sysctl": ["server-anchor"],
      "server-limits": ["server-sysctl"],
      "server-networkmanager": ["server-limits"],
      "server-endpoints": ["server-networkmanager"],
      "server-endpoints-confirm": ["server-endpoints"],
      "client-anchor": [],
      "client-sysctl": ["client-anchor"],
      "client-limits": ["client-sysctl"],
      "client-networkmanager": ["client-limits"],
    });
  });

  it("every command has a create and a delete, deleteBeforeReplace, host triggers, no previous output in env", async () => {
    const { commands } = await runProgram(dev(), { privateKey: SECRET_KEY });
    for (const c of commands.filter((x) => !x.name.endsWith("-confirm"))) {
      expect(c.create, c.name).toMatch(/^exec sh -s <<'MPTCP_PULUMI_SCRIPT'\n# mptcp-pulumi: host \w+, (\w+ apply|anchor,)/);
      expect(c.delete, c.name).toMatch(/^exec sh -s <<'MPTCP_PULUMI_SCRIPT'\n# mptcp-pulumi: host \w+, (\w+ revert|anchor delete,)/);
      expect(c.deleteBeforeReplace, c.name).toBe(true);
      // the anchor has none: it is never replaced (components/host.ts)
      expect(c.triggers).toEqual(c.name.endsWith("-anchor") ? undefined : [c.connection.host, c.connection.port, c.connection.user]);
      expect(c.inputs.addPreviousOutputInEnv).toBe(false);
      expect(c.inputs.environment).toBeUndefined();
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

  it("exports per-host outputs of what each concern applied, and per link the predicted joins and subflows", async () => {
    const c = dev();
    c.hosts[0].services = [{ unit: "iperf3.service" }];
    const { outputs } = await runProgram(c);
    expect(outputs).toEqual({
      hosts: {
        server: { sysctl: "server-sysctl: applied", limits: "server-limits: applied", networkmanager: "server-networkmanager: applied", endpoints: "server-endpoints: applied", services: "server-services: applied" },
        client: { sysctl: "client-sysctl: applied", limits: "client-limits: applied", networkmanager: "client-networkmanager: applied" },
      },
      links: [{ client: "client", server: "server", address: "10.22.17.33", joins: 1, subflows: 2 }],
    });
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
    expect(logs.join("\n")).toMatch(/mptcp:hosts\[0\]\.ssh: insecureIgnoreHostKey is set/);
  });

  it("an invalid config fails before any resource is registered, listing every error", async () => {
    const c = dev();
    c.hosts[0].endpoints[0].interface = "wlan0 x"; // a field error
    c.links.push({ client: "ghost", server: "client" }); // and a cross-host one, reported together
    let run: unknown;
    const err = await runProgram(c).then((r) => { run = r; }, (e: Error) => e);
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
    expect(commands.map((x) => x.name).sort()).toEqual(["client-anchor", "client-sysctl", "server-anchor", "server-limits", "server-networkmanager", "server-sysctl"]);
    // a host that sets no concern gets no command at all, the anchor neither
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
    const err = await runProgram(c).then(() => undefined, (e: Error) => e.message);
    expect(err).toMatch(/mptcp:hosts\[0\]\.endpoints: endpointOwner is networkmanager, .*: remove endpoints, or set endpointOwner: mptcp-pulumi/);
  });
});
