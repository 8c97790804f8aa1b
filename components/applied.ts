// What an apply left on its host, as the stack's outputs: every apply script ends with
// "@applied KIND WORD..." lines (sh/lib/base.sh `report`) that say what the host holds after it,
// read back from the kernel and the files (resolved addresses and ids, the routing mode `auto`
// came to, whether a unit runs). Parsed here into one object per host, so a program or
// `pulumi stack output --json` reads values, not a script's log.

/** An MPTCP endpoint as the kernel holds it after the apply. */
export interface AppliedEndpoint {
  /** The endpoint's address (resolved from its interface where the args gave none). */
  address: string;
  /** The endpoint id. */
  id: number;
  /** The interface it is bound to. */
  interface?: string;
  /** The port it announces. */
  port?: number;
  /** signal, subflow, backup, fullmesh, laminar (sorted). */
  flags: string[];
}

/** A source-routing entry as the hooks' apply resolved it. */
export interface AppliedRoute {
  /** The endpoint interface. */
  interface: string;
  /** source or none (auto resolved against the main table). */
  mode: string;
  /** Its routing table. */
  table: number;
  /** Its rule's priority. */
  priority: number;
  /** The table's IPv4 default gateway. */
  gateway?: string;
}

/** A service unit with our drop-in. */
export interface AppliedService {
  /** The systemd unit. */
  unit: string;
  /** preload, godebug or socket. */
  mode: string;
  /** `systemctl is-active` after the apply: active, inactive, failed... */
  active: string;
  /** Our drop-in's path. */
  dropIn: string;
}

/** `ip mptcp limits` as the kernel holds them after the apply. */
export interface AppliedLimits {
  /** subflows */
  subflows: number;
  /** add_addr_accepted */
  addAddrAccepted: number;
}

/** The hook files installed and the routing each endpoint interface got. */
export interface AppliedHooks {
  /** Paths of the hook files and units installed. */
  files: string[];
  /** Per endpoint interface, its source routing. */
  routing: AppliedRoute[];
}

/** NetworkManager's part in the host's MPTCP endpoints. */
export interface AppliedNetworkManager {
  /** endpoints-off (our conf.d file), no-mptcp-handling or absent. */
  state: string;
  /** Our conf.d file, when installed. */
  conf?: string;
}

/** Per concern, what the host holds after that concern's last apply. */
export interface HostApplied {
  /** net.mptcp.* sysctls by full name, their values as the kernel reads them. */
  sysctl?: Record<string, string>;
  /** The limits in force. */
  limits?: AppliedLimits;
  /** The endpoint table: every endpoint, ours or not. */
  endpoints?: AppliedEndpoint[];
  /** The hooks and the routing they keep. */
  hooks?: AppliedHooks;
  /** The services with our drop-in. */
  services?: AppliedService[];
  /** NetworkManager's part. */
  networkManager?: AppliedNetworkManager;
}

const num = (w: string | undefined, what: string): number => {
  if (w === undefined || !/^\d+$/.test(w)) throw new Error(`@applied ${what}: not a number: ${w}`);
  return Number(w);
};

/** A normalized endpoint line (sh/lib/endpoints.sh ep_normalize): "ADDRESS id ID [port P] [dev IFACE] [FLAG...]". */
export function parseEndpoint(words: string[]): AppliedEndpoint {
  const [address, ...rest] = words;
  const e: AppliedEndpoint = { address, id: 0, flags: [] };
  for (let i = 0; i < rest.length; i++) {
    const w = rest[i];
    if (w === "id") e.id = num(rest[++i], "endpoint id");
    else if (w === "port") e.port = num(rest[++i], "endpoint port");
    else if (w === "dev") e.interface = rest[++i];
    else e.flags.push(w);
  }
  return e;
}

/** How each kind of "@applied" line goes into the outputs (sh/lib/base.sh `report KIND WORDS`). */
const KINDS = {
  sysctl: (out: HostApplied, w: string[]) => {
    out.sysctl ??= {};
    out.sysctl[w[0]] = w[1] ?? "";
  },
  // ip mptcp limits show: "add_addr_accepted N subflows N"
  limits: (out: HostApplied, w: string[]) => {
    const get = (k: string) => num(w[w.indexOf(k) + 1], `limits ${k}`);
    out.limits = { subflows: get("subflows"), addAddrAccepted: get("add_addr_accepted") };
  },
  endpoint: (out: HostApplied, w: string[]) => {
    out.endpoints ??= [];
    out.endpoints.push(parseEndpoint(w));
  },
  hook: (out: HostApplied, w: string[]) => {
    out.hooks ??= { files: [], routing: [] };
    out.hooks.files.push(w[0]);
  },
  route: (out: HostApplied, w: string[]) => {
    out.hooks ??= { files: [], routing: [] };
    out.hooks.routing.push({ interface: w[0], mode: w[1], table: num(w[2], "route table"), priority: num(w[3], "route priority"), ...(w[4] ? { gateway: w[4] } : {}) });
  },
  service: (out: HostApplied, w: string[]) => {
    out.services ??= [];
    out.services.push({ unit: w[0], mode: w[1], active: w[2], dropIn: w[3] });
  },
  networkmanager: (out: HostApplied, w: string[]) => {
    out.networkManager = { state: w[0], ...(w[1] ? { conf: w[1] } : {}) };
  },
} satisfies Record<string, (out: HostApplied, words: string[]) => void>;

/** The kinds of "@applied" line a concern's apply reports (components/concerns.ts says which). */
export type AppliedKind = keyof typeof KINDS;
export const APPLIED_KINDS = Object.keys(KINDS) as AppliedKind[];

/**
 * The "@applied" lines of one or more applies' stdout, as one object. Lines of other kinds are
 * ignored (a newer script's, read by an older program); a malformed line of a known kind throws.
 */
export function parseApplied(stdout: string): HostApplied {
  const out: HostApplied = {};
  for (const line of stdout.split("\n")) {
    if (!line.startsWith("@applied ")) continue;
    const [kind, ...w] = line.slice("@applied ".length).trim().split(/\s+/);
    if (Object.hasOwn(KINDS, kind)) KINDS[kind as AppliedKind](out, w);
  }
  return out;
}
