// MptcpHost and MptcpNetwork used as components of another program, under the SDK's mocks: args
// whose values come from other resources (outputs), known or not, valid or not.
import * as pulumi from "@pulumi/pulumi";
import { describe, expect, it } from "vitest";
import { MptcpHost, MptcpHostArgs, MptcpNetwork, MptcpNetworkArgs } from "../components";
import { RecordedCommand, runProgram } from "./harness/program";

const KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGJ0jjx8ZDB5AVnTGlZAbsmZuR4b0VK4PwQ0Bq2Gpg6I";

/** A host entry as plain values: what an output would carry once known. */
const plainHost = (): MptcpHostArgs => ({
  ssh: { host: "198.51.100.7", hostKey: KEY },
  sysctl: { enabled: true },
  limits: { subflows: 2, addAddrAccepted: 1 },
  endpoints: [{ interface: "wlan0", address: "198.51.100.17", flags: ["signal"] }],
  hooks: true,
  routing: [{ interface: "wlan0", gateway: "198.51.100.1" }],
});

/** The same entry with every value that may be an Input given as an output of `value`. */
function fromOutputs(value: (v: any) => pulumi.Input<any>): MptcpHostArgs {
  const h = plainHost();
  return {
    ...h,
    ssh: { host: value(h.ssh.host as string), port: value(22), hostKey: value(KEY) },
    endpoints: h.endpoints!.map((e) => ({ ...e, address: value(e.address as string) })),
    routing: h.routing!.map((r) => ({ ...r, gateway: value(r.gateway as string) })),
  };
}

const host = (args: MptcpHostArgs) => () => ({ applied: new MptcpHost("server", args).applied });
/** The same without outputs: a host that fails when its values are known never resolves them. */
const hostOnly = (args: MptcpHostArgs) => () => {
  new MptcpHost("server", args);
  return {};
};
const networkOnly = (args: MptcpNetworkArgs) => () => {
  new MptcpNetwork("net", args);
  return {};
};
const shape = (cs: RecordedCommand[]) => cs.map((c) => ({ name: c.name, create: c.create, delete: c.delete, triggers: c.triggers, connection: c.connection, dependsOn: c.dependsOn }));

/** A run that fails: its error and what it registered before (runProgram attaches them). */
async function failed(run: Promise<unknown>): Promise<{ message: string; commands: string[] }> {
  const e = (await run.then(
    () => new Error("the run did not fail"),
    (x: unknown) => x,
  )) as Error & { resources?: { type: string; name: string }[] };
  return { message: e.message, commands: (e.resources ?? []).filter((r) => r.type.startsWith("command:")).map((r) => r.name) };
}

describe("MptcpHost with values from other resources", () => {
  it("registers the same commands, byte for byte, whether its values are plain or outputs (known), or promises", async () => {
    const plain = await runProgram({ hosts: [] }, { program: host(plainHost()) });
    const outputs = await runProgram({ hosts: [] }, { program: host(fromOutputs((v) => pulumi.output(v))) });
    const promises = await runProgram({ hosts: [] }, { program: host(fromOutputs((v) => Promise.resolve(v))) });
    expect(plain.commands.length).toBe(10);
    expect(shape(outputs.commands)).toEqual(shape(plain.commands));
    expect(shape(promises.commands)).toEqual(shape(plain.commands));
    // control: one value different gives different commands
    const other = await runProgram({ hosts: [] }, { program: host(fromOutputs((v) => pulumi.output(v === "198.51.100.17" ? ("198.51.100.18" as typeof v) : v))) });
    expect(shape(other.commands)).not.toEqual(shape(plain.commands));
    expect(plain.infos).toEqual([]);
  });

  it("in a preview with unknown values: the same resources, their unknown parts unknown, and a message naming what could not be checked yet", async () => {
    const unknown = <T>(v: T) => pulumi.output(v).apply((x) => (pulumi.runtime.isDryRun() ? (pulumi.unknown as unknown as T) : x));
    const run = await runProgram({ hosts: [] }, { preview: true, program: host(fromOutputs(unknown)) });
    const known = await runProgram({ hosts: [] }, { preview: true, program: host(plainHost()) });
    expect(run.commands.map((c) => c.name)).toEqual(known.commands.map((c) => c.name));
    expect(run.infos).toEqual([
      "not known until the update, so not checked yet: args.ssh.host, args.ssh.port, args.ssh.hostKey, args.endpoints[0].address, args.routing[0].gateway (they are checked, with the rules that compare them to other hosts and links, as soon as they are known and before any command runs)",
    ]);
    // control: known outputs leave nothing unchecked
    const outputs = await runProgram({ hosts: [] }, { preview: true, program: host(fromOutputs((v) => pulumi.output(v))) });
    expect(outputs.infos).toEqual([]);
  });

  it("a bad value known at construction fails at once with the arg's path and the fix, before anything is registered", async () => {
    const args = plainHost();
    args.limits = { subflows: 9 };
    args.endpoints![0].id = 300;
    await expect(runProgram({ hosts: [] }, { program: host(args) })).rejects.toThrow(
      "2 errors in MptcpHost \"server\"'s args:\n  args.limits.subflows: must be at most 8 (the kernel's maximum)\n  args.endpoints[0].id: must be a whole number 1..255",
    );
    // a rule across fields, with a path of the args too
    const combined = plainHost();
    combined.endpoints![0].flags = ["signal", "fullmesh"];
    await expect(runProgram({ hosts: [] }, { program: host(combined) })).rejects.toThrow("args.endpoints[0].flags: signal and fullmesh cannot be combined");
    // the resource name is the host's name, and checked as one
    await expect(runProgram({ hosts: [] }, { program: () => ({ a: new MptcpHost("Server_1", plainHost()).applied }) })).rejects.toThrow("name (the resource name): must be lowercase letters");
    // a value that decides which resources the host gets cannot be an output
    const structural = { ...plainHost(), limits: { subflows: pulumi.output(2) as unknown as number } };
    await expect(runProgram({ hosts: [] }, { program: host(structural) })).rejects.toThrow("args.limits.subflows: must be a plain value");
  });

  it("a bad value from an output fails the host when it is known, naming the arg, and no command of the host is registered (control: the good value registers them)", async () => {
    const bad = fromOutputs((v) => pulumi.output(v === "198.51.100.17" ? ("not-an-address" as typeof v) : v));
    const run = await failed(runProgram({ hosts: [] }, { program: hostOnly(bad) }));
    expect(run.message).toContain(`1 error in MptcpHost "server"'s args:\n  args.endpoints[0].address: must be an IPv4 or IPv6 address`);
    expect(run.commands).toEqual([]);
    const good = await runProgram({ hosts: [] }, { program: host(fromOutputs((v) => pulumi.output(v))) });
    expect(good.commands.length).toBe(10);
  });
});

describe("MptcpNetwork: the checks across hosts and links", () => {
  const net = (): MptcpNetworkArgs => ({
    hosts: [
      { name: "server", ssh: { host: "198.51.100.7", hostKey: KEY }, limits: { subflows: 2 }, endpoints: [{ interface: "wlan0", address: "198.51.100.17", flags: ["signal"] }] },
      { name: "client", ssh: { host: "198.51.100.8", hostKey: KEY }, limits: { subflows: 2, addAddrAccepted: 1 } },
    ],
    links: [{ client: "client", server: "server" }],
  });
  const network = (args: MptcpNetworkArgs) => () => {
    const n = new MptcpNetwork("net", args);
    return { hosts: n.hosts, links: n.links };
  };

  it("makes one MptcpHost per host under it and outputs per host and per link", async () => {
    const run = await runProgram({ hosts: [] }, { program: network(net()) });
    const hosts = run.resources.filter((r) => r.type === "mptcp-pulumi:index:MptcpHost");
    const parent = run.resources.find((r) => r.type === "mptcp-pulumi:index:MptcpNetwork")!;
    expect(hosts.map((h) => [h.name, h.parent])).toEqual([
      ["server", parent.urn],
      ["client", parent.urn],
    ]);
    expect(run.outputs.links).toEqual([{ client: "client", server: "server", address: "198.51.100.7", joins: 1, subflows: 2 }]);
    expect(Object.keys(run.outputs.hosts as object)).toEqual(["server", "client"]);
  });

  it("names the args path of a cross-host error, and registers nothing (control: the valid network above)", async () => {
    const args = net();
    args.hosts[1].limits = { subflows: 2 }; // addAddrAccepted 0 against one announcement
    args.hosts[1].ssh.host = "198.51.100.7"; // the server's target too
    await expect(runProgram({ hosts: [] }, { program: network(args) })).rejects.toThrow(
      /2 errors in MptcpNetwork "net"'s args:\n {2}args\.hosts\[1\]\.ssh\.host: 198\.51\.100\.7 port 22 is also the SSH target of args\.hosts\[0\] \("server"\).*\n {2}args\.hosts\[1\]\.limits\.addAddrAccepted: is 0 \(unset: the kernel default is 0\) but server "server" signals 1 address/,
    );
  });

  it("a link whose addresses are not known yet is checked when they are: an announcement past the client's limit then fails the network, naming the args path, and registers no command", async () => {
    const args = net();
    args.hosts[1].limits = { subflows: 2 };
    args.hosts[0].endpoints![0].address = pulumi.output("198.51.100.17");
    // construction passes (the link's check waits for the address) ...
    const preview = await runProgram(
      { hosts: [] },
      {
        preview: true,
        program: network({
          ...args,
          hosts: [{ ...args.hosts[0], endpoints: [{ ...args.hosts[0].endpoints![0], address: pulumi.output("x").apply(() => pulumi.unknown as unknown as string) }] }, args.hosts[1]],
        }),
      },
    );
    expect(preview.infos.join("\n")).toContain("not known until the update, so not checked yet: args.hosts[0].endpoints[0].address");
    // ... and the update, with the address known, fails before any command
    const run = await failed(runProgram({ hosts: [] }, { program: networkOnly(args) }));
    expect(run.message).toContain(`1 error in MptcpNetwork "net"'s args:\n  args.hosts[1].limits.addAddrAccepted: is 0`);
    expect(run.commands).toEqual([]);
    // control: the same network with the limit raised registers every host's commands
    args.hosts[1].limits = { subflows: 2, addAddrAccepted: 1 };
    const good = await runProgram({ hosts: [] }, { program: networkOnly(args) });
    expect(good.commands.map((c) => c.name)).toEqual(expect.arrayContaining(["server-endpoints", "client-limits"]));
  });
});

describe("values from other resources that other hosts' checks compare", () => {
  const bastion = (port: pulumi.Input<number>): MptcpNetworkArgs => ({
    hosts: [
      { name: "a", ssh: { host: "bastion.example", port: 22, hostKey: KEY }, sysctl: { enabled: true } },
      { name: "b", ssh: { host: "bastion.example", port, hostKey: KEY }, sysctl: { enabled: true } },
    ],
  });

  it("a port from an output is compared with the other hosts' targets once known, not as a placeholder: one machine's two forwarded ports pass; the same port fails (control)", async () => {
    const ok = await runProgram({ hosts: [] }, { program: networkOnly(bastion(pulumi.output(2222))) });
    expect(ok.commands.map((c) => c.name)).toEqual(expect.arrayContaining(["a-sysctl", "b-sysctl"]));
    const same = await failed(runProgram({ hosts: [] }, { program: networkOnly(bastion(pulumi.output(22))) }));
    expect(same.message).toContain('args.hosts[1].ssh.host: bastion.example port 22 is also the SSH target of args.hosts[0] ("a")');
    expect(same.commands).toEqual([]);
  });

  it("a link's reaches as one output list (as other languages' SDKs may pass it) is checked once known; an address the server does not announce fails (control)", async () => {
    const args = (reaches: string[]): MptcpNetworkArgs => ({
      hosts: [
        { name: "server", ssh: { host: "198.51.100.7", hostKey: KEY }, limits: { subflows: 2 }, endpoints: [{ interface: "wlan0", address: "198.51.100.17", flags: ["signal"] }] },
        { name: "client", ssh: { host: "198.51.100.8", hostKey: KEY }, limits: { subflows: 2, addAddrAccepted: 1 } },
      ],
      links: [{ client: "client", server: "server", reaches: pulumi.output(reaches) as unknown as string[] }],
    });
    const ok = await runProgram({ hosts: [] }, { program: networkOnly(args(["198.51.100.17"])) });
    expect(ok.commands.map((c) => c.name)).toEqual(expect.arrayContaining(["server-endpoints", "client-limits"]));
    const bad = await failed(runProgram({ hosts: [] }, { program: networkOnly(args(["198.51.100.99"])) }));
    expect(bad.message).toContain("args.links[0].reaches[0]: 198.51.100.99 is not an address");
    expect(bad.commands).toEqual([]);
  });

  it("the insecureIgnoreHostKey warning names the host the output gives, never a placeholder", async () => {
    const run = await runProgram({ hosts: [] }, { program: host({ ssh: { host: pulumi.output("198.51.100.7"), insecureIgnoreHostKey: true }, sysctl: { enabled: true } }) });
    expect(run.logs).toEqual(["server: ssh.insecureIgnoreHostKey is set: the host key of 198.51.100.7 is not checked, so anyone on the path can impersonate it. Set ssh.hostKey."]);
  });
});
