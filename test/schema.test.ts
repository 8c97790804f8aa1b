// The package's schema as Pulumi infers it for other languages: the SDK's own analyzer
// (@pulumi/pulumi/provider/experimental/analyzer.js and schema.js at v3.248.0, what the nodejs
// language host runs for `pulumi package add` of a PulumiPlugin.yaml project) over this
// repository. Checked: both components, every input with its type and description, which inputs
// take outputs (not plain), the enums, and that the args mirror the stack config's entries key for
// key (components/schema.ts). And the path other languages' programs take: the SDK's
// ComponentProvider constructing the components from inputs as the provider server hands them
// over (provider/server.ts deserializeInputs: plain values with outputs inside).
import * as pulumi from "@pulumi/pulumi";
import { Analyzer } from "@pulumi/pulumi/provider/experimental/analyzer";
import { ComponentProvider, getPulumiComponents } from "@pulumi/pulumi/provider/experimental/provider";
import { generateSchema } from "@pulumi/pulumi/provider/experimental/schema";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import * as pkg from "../components";
import {
  ENDPOINT_FLAGS,
  hostSchema,
  limitsSchema,
  linkSchema,
  RESTART_POLICIES,
  ROUTING_MODES,
  routingSchema,
  SERVICE_MODES,
  serviceSchema,
  sshSchema,
  sysctlSchema,
  endpointSchema,
} from "../components/schema";
import { INPUT_KEYS } from "../components/inputs";
import { ROOT } from "./harness/cli";

const packageJson = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));
const NAME = "mptcp-pulumi";
const ref = (t: string) => `#/types/${NAME}:index:${t}`;

type Prop = { type?: string; $ref?: string; description?: string; plain?: boolean; items?: Prop; additionalProperties?: Prop };
type Schema = {
  name: string;
  resources: Record<string, { isComponent: boolean; inputProperties: Record<string, Prop>; requiredInputs: string[]; properties: Record<string, Prop> }>;
  types: Record<string, { type: string; properties?: Record<string, Prop>; required?: string[]; enum?: { name: string; value: string; description?: string }[] }>;
};
let schema: Schema;

beforeAll(() => {
  // the provider's name is the package's, as run-plugin derives it (cmd/run-plugin/run.ts)
  expect(packageJson.name).toBe(NAME);
  const analyzer = new Analyzer(ROOT, NAME, packageJson, new Set(["MptcpHost", "MptcpNetwork"]));
  const { components, typeDefinitions, dependencies } = analyzer.analyze();
  schema = generateSchema(NAME, packageJson.version, packageJson.description, components, typeDefinitions, dependencies) as unknown as Schema;
}, 60_000);

/** Every property of the components' inputs and outputs and of the object types: [path, property]. */
function allProperties(s: Schema): [string, Prop][] {
  const out: [string, Prop][] = [];
  for (const [token, r] of Object.entries(s.resources)) {
    for (const [k, p] of Object.entries(r.inputProperties)) out.push([`${token} input ${k}`, p]);
    for (const [k, p] of Object.entries(r.properties)) out.push([`${token} output ${k}`, p]);
  }
  for (const [token, t] of Object.entries(s.types)) for (const [k, p] of Object.entries(t.properties ?? {})) out.push([`${token}.${k}`, p]);
  return out;
}

/** The properties without a type (or reference) or without a description. */
function undescribed(s: Schema): string[] {
  return allProperties(s)
    .filter(([, p]) => !(p.type || p.$ref) || !p.description?.trim())
    .map(([path]) => path);
}

const keysOf = (t: string) => Object.keys(schema.types[`${NAME}:index:${t}`].properties!).sort();
const shapeKeys = (s: z.ZodObject) => Object.keys(s.shape).sort();

describe("the schema the SDK's analyzer infers for other languages", () => {
  it("has both components, under the type tokens the classes register (construct finds a class by the token's last part)", () => {
    expect(Object.keys(schema.resources).sort()).toEqual([pkg.HOST_TYPE, pkg.NETWORK_TYPE].sort());
    expect(pkg.HOST_TYPE).toBe("mptcp-pulumi:index:MptcpHost");
    expect(pkg.NETWORK_TYPE).toBe("mptcp-pulumi:index:MptcpNetwork");
    for (const r of Object.values(schema.resources)) expect(r.isComponent).toBe(true);
    expect(schema.resources[pkg.HOST_TYPE].requiredInputs).toEqual(["ssh"]);
    expect(schema.resources[pkg.NETWORK_TYPE].requiredInputs).toEqual(["hosts"]);
    expect(schema.resources[pkg.HOST_TYPE].properties.applied.$ref).toBe(ref("HostApplied"));
    expect(schema.resources[pkg.NETWORK_TYPE].properties.hosts.additionalProperties?.$ref).toBe(ref("HostApplied"));
    expect(schema.resources[pkg.NETWORK_TYPE].properties.links.items?.$ref).toBe(ref("LinkPrediction"));
  });

  it("gives every input, output and type property a type and a description (control: one description removed is found)", () => {
    const props = allProperties(schema);
    console.log(`schema: ${Object.keys(schema.types).length} types, ${props.length} properties`);
    expect(props.length).toBeGreaterThan(70);
    expect(undescribed(schema)).toEqual([]);
    const broken = structuredClone(schema);
    delete broken.types[`${NAME}:index:EndpointArgs`].properties!.address.description;
    expect(undescribed(broken)).toEqual([`${NAME}:index:EndpointArgs.address`]);
  });

  it("mirrors one entry of mptcp:hosts key for key, and mptcp:links (the args and the stack config cannot drift apart)", () => {
    const hostKeys = shapeKeys(hostSchema).filter((k) => k !== "name");
    expect(Object.keys(schema.resources[pkg.HOST_TYPE].inputProperties).sort()).toEqual(hostKeys);
    expect(keysOf("NetworkHostArgs")).toEqual(shapeKeys(hostSchema));
    // ssh: the config's keys, and the private key, which the stack config keeps as a secret of its own
    expect(keysOf("SshArgs")).toEqual([...shapeKeys(sshSchema), "privateKey"].sort());
    expect(keysOf("SysctlArgs")).toEqual(shapeKeys(sysctlSchema));
    expect(keysOf("LimitsArgs")).toEqual(shapeKeys(limitsSchema));
    expect(keysOf("EndpointArgs")).toEqual(shapeKeys(endpointSchema));
    expect(keysOf("RoutingArgs")).toEqual(shapeKeys(routingSchema));
    expect(keysOf("ServiceArgs")).toEqual(shapeKeys(serviceSchema));
    expect(keysOf("LinkArgs")).toEqual(shapeKeys(linkSchema));
    const required = (t: string) => schema.types[`${NAME}:index:${t}`].required;
    expect(required("SshArgs")).toEqual(["host"]);
    expect(required("EndpointArgs")).toEqual(["interface"]);
    expect(required("NetworkHostArgs")).toEqual(["name", "ssh"]);
    expect(required("LinkArgs")).toEqual(["client", "server"]);
  });

  it("takes outputs exactly where a value can come from another resource; everything that decides which resources a host gets is plain", () => {
    const notPlain = allProperties(schema)
      .filter(([path]) => !path.includes(" output ") && !/Applied|LinkPrediction/.test(path))
      .flatMap(([path, p]) => [...(p.plain ? [] : [path]), ...(p.items && !p.items.plain && !p.items.$ref ? [`${path}[]`] : [])]);
    expect(notPlain.sort()).toEqual(
      ["SshArgs.host", "SshArgs.port", "SshArgs.hostKey", "SshArgs.privateKey", "EndpointArgs.address", "RoutingArgs.gateway", "LinkArgs.address", "LinkArgs.reaches[]"]
        .map((p) => `${NAME}:index:${p}`)
        .sort(),
    );
    // the validation's placeholders (components/inputs.ts) stand in for exactly these keys
    expect([...INPUT_KEYS].sort()).toEqual([...new Set(notPlain.map((p) => p.replace(/\[\]$/, "").split(".").pop()!))].sort());
  });

  it("has the config's enumerations as schema enums, values in the config's order", () => {
    const values = (t: string) => schema.types[`${NAME}:index:${t}`].enum!.map((e) => e.value);
    expect(values("EndpointFlag")).toEqual([...ENDPOINT_FLAGS]);
    expect(values("RoutingMode")).toEqual([...ROUTING_MODES]);
    expect(values("ServiceMode")).toEqual([...SERVICE_MODES]);
    expect(values("RestartPolicy")).toEqual([...RESTART_POLICIES]);
    expect(values("PathManager")).toEqual([...(sysctlSchema.shape.pathManager.unwrap() as z.ZodEnum).options]);
    expect(values("EndpointOwner")).toEqual([...(hostSchema.shape.endpointOwner.unwrap() as z.ZodEnum).options]);
    for (const t of ["EndpointFlag", "RoutingMode", "ServiceMode", "RestartPolicy", "PathManager", "EndpointOwner"]) {
      expect(
        schema.types[`${NAME}:index:${t}`].enum!.every((e) => e.description),
        t,
      ).toBe(true);
    }
  });

  it("privateKey: the analyzer's schema has no secret marker (its PropertyDefinition has none at v3.248.0), so the component makes the key a secret itself (test/package.test.ts: a plain key reaches only connections, as a secret)", () => {
    const key = schema.types[`${NAME}:index:SshArgs`].properties!.privateKey;
    expect(key.type).toBe("string");
    expect(Object.keys(key)).not.toContain("secret");
    expect(key.description).toMatch(/secret/);
  });
});

describe("what other languages' programs run: the SDK's component provider", () => {
  it("finds exactly the two components in the package's main module, as run-plugin does (getPulumiComponents)", async () => {
    const main = packageJson.main as string;
    expect(main).toBe("components/index.ts");
    const found = getPulumiComponents(await import(join(ROOT, main)));
    expect(found.map((c) => c.name).sort()).toEqual(["MptcpHost", "MptcpNetwork"]);
  });

  it("constructs MptcpHost from inputs as the provider server hands them over (an output inside ssh): the host's commands, under the schema's token", async () => {
    const registered: string[] = [];
    await pulumi.runtime.setMocks(
      {
        newResource: (a) => {
          registered.push(`${a.type} ${a.name}`);
          return { id: `${a.name}-id`, state: a.inputs };
        },
        call: () => {
          throw new Error("no calls");
        },
      },
      "mptcp",
      "test",
      false,
    );
    const provider = new ComponentProvider({ components: [pkg.MptcpHost, pkg.MptcpNetwork], name: NAME, dirname: ROOT });
    const inputs = { ssh: { host: pulumi.output("198.51.100.7"), insecureIgnoreHostKey: true }, limits: { subflows: 2 } };
    const result = await provider.construct("server", pkg.HOST_TYPE, inputs, {});
    const urn = await new Promise((r) =>
      (result.urn as pulumi.Output<string>).apply((v) => {
        r(v);
        return v;
      }),
    );
    expect(urn).toBe(`urn:pulumi:test::mptcp::${pkg.HOST_TYPE}::server`);
    await require("@pulumi/pulumi/runtime/settings").waitForRPCs();
    expect(registered).toEqual(expect.arrayContaining([`${pkg.HOST_TYPE} server`, "command:remote:Command server-limits", "command:remote:CopyToRemote server-scripts"]));
    expect(Object.keys(result.state)).toEqual(["applied"]);
    // control: a token of another package is refused before anything is made
    await expect(provider.construct("other", "mptcp:index:Host", inputs, {})).rejects.toThrow(/Invalid package name mptcp/);
  });
});
