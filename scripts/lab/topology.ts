// The lab topology file: which laptops exist and which paths (veth pairs) join them.
import { readFileSync } from "node:fs";
import { parse } from "yaml";
import { z } from "zod";
import { formatErrors, HOST_NAME_RE, INTERFACE_RE, ConfigError } from "../../components";

const RATE_RE = /^[1-9][0-9]{0,5}(kbit|mbit|gbit)$/;

export const topologySchema = z.strictObject({
  hosts: z
    .array(
      z.strictObject({
        name: z.string().regex(HOST_NAME_RE, { error: "must be lowercase letters, digits and dashes" }).max(12, { error: "must be at most 12 characters" }),
        /** server accepts MPTCP connections; client opens them. */
        role: z.enum(["server", "client"]),
      }),
    )
    .min(2, { error: "needs at least two hosts" })
    .max(8, { error: "at most 8 hosts" }),
  paths: z
    .array(
      z.strictObject({
        /** Interface name on both ends. */
        name: z.string().regex(INTERFACE_RE, { error: "must be an interface name" }),
        /** IPv4 subnet inside 198.51.100.0/24; the first host gets .1, the second .2. */
        subnet: z.string().regex(/^198\.51\.100\.([0-9]{1,3})\/(2[4-9]|30)$/, { error: "must be a subnet inside 198.51.100.0/24, prefix /24 to /30 (e.g. 198.51.100.16/28)" }),
        /** The two hosts this path joins. */
        between: z.tuple([z.string(), z.string()]),
        /** Optional tbf rate on both ends, e.g. 20mbit. */
        rate: z.string().regex(RATE_RE, { error: "must be a tc rate like 20mbit" }).optional(),
      }),
    )
    .min(1, { error: "needs at least one path" }),
});

export type Topology = z.infer<typeof topologySchema>;

export interface PathEnd {
  path: string;
  host: string;
  address: string;
  prefix: number;
  peer: string;
  peerAddress: string;
}

function subnetBase(subnet: string): { base: number; prefix: number } {
  const [net, p] = subnet.split("/");
  const last = Number(net.split(".")[3]);
  return { base: last, prefix: Number(p) };
}

export function validateTopology(raw: unknown): Topology {
  const parsed = topologySchema.safeParse(raw);
  const errors: ConfigError[] = [];
  const at = (segments: (string | number)[]) => "topology:" + segments.map((s) => (typeof s === "number" ? `[${s}]` : `.${s}`)).join("").replace(/^\./, "");
  if (!parsed.success) {
    for (const issue of parsed.error.issues) errors.push({ path: at(issue.path as (string | number)[]), message: issue.message });
    throw new Error(formatErrors(errors).replace("mptcp stack config", "lab topology"));
  }
  const topo = parsed.data;
  const names = new Set<string>();
  topo.hosts.forEach((h, i) => {
    if (names.has(h.name)) errors.push({ path: at(["hosts", i, "name"]), message: `duplicate host "${h.name}"` });
    names.add(h.name);
  });
  const ranges: [number, number, number][] = [];
  const ifaces = new Set<string>();
  topo.paths.forEach((p, i) => {
    const { base, prefix } = subnetBase(p.subnet);
    const size = 2 ** (32 - prefix);
    if (base % size !== 0) errors.push({ path: at(["paths", i, "subnet"]), message: `${p.subnet} is not a network address (use 198.51.100.${base - (base % size)}/${prefix})` });
    ranges.forEach(([b, s, j]) => {
      if (base < b + s && b < base + size) errors.push({ path: at(["paths", i, "subnet"]), message: `overlaps topology:paths[${j}].subnet` });
    });
    ranges.push([base, size, i]);
    p.between.forEach((h, k) => {
      if (!names.has(h)) errors.push({ path: at(["paths", i, "between", k]), message: `unknown host "${h}"` });
      const key = `${h}/${p.name}`;
      if (ifaces.has(key)) errors.push({ path: at(["paths", i, "name"]), message: `host "${h}" already has an interface ${p.name}` });
      ifaces.add(key);
    });
    if (p.between[0] === p.between[1]) errors.push({ path: at(["paths", i, "between"]), message: "a path joins two different hosts" });
  });
  if (errors.length) throw new Error(formatErrors(errors).replace("mptcp stack config", "lab topology"));
  return topo;
}

export function readTopology(file: string): Topology {
  return validateTopology(parse(readFileSync(file, "utf8")));
}

/** Both ends of every path, with addresses (.1 for the first host, .2 for the second). */
export function pathEnds(topo: Topology): PathEnd[] {
  return topo.paths.flatMap((p) => {
    const { base, prefix } = subnetBase(p.subnet);
    const addr = (k: number) => `198.51.100.${base + 1 + k}`;
    return p.between.map((host, k) => ({ path: p.name, host, address: addr(k), prefix, peer: p.between[1 - k], peerAddress: addr(1 - k) }));
  });
}

/** The seed scenario: laptops "server" and "client", each with lan and wlan. */
export const DEFAULT_TOPOLOGY: Topology = {
  hosts: [
    { name: "server", role: "server" },
    { name: "client", role: "client" },
  ],
  paths: [
    { name: "lan", subnet: "198.51.100.0/28", between: ["server", "client"] },
    { name: "wlan", subnet: "198.51.100.16/28", between: ["server", "client"] },
  ],
};
