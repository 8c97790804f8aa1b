// The registry of concerns: everything that makes a concern what it is, in one typed table.
// A concern is one command per host (sysctl, limits, networkmanager, endpoints, hooks, services)
// whose scripts are components/sh/<concern>.{apply,revert,check}.sh (and <concern>.confirm.sh when
// guarded). Adding one is one entry here plus those files: the compiler makes every use of the
// table handle it (Record<Concern, ...>), and test/concerns.test.ts fails when an entry is not
// rendered, reverted, checked, reported, watched by the lab or documented in docs/architecture.md.
import { AppliedKind } from "./applied";
import { HOOK_SOURCES, hooksApplyExtras } from "./hooks";
import { HostModel } from "./model";
import { HostConfig } from "./schema";
import { DataVar, NM_CONF, SYSCTL_CONF } from "./script";

/** What defines a concern. */
export interface ConcernSpec {
  /** The keys of a host entry it manages (drift on one of them names this concern's command). */
  keys: readonly (keyof HostConfig)[];
  /** Whether the host's config asks for it (an unset concern is left alone on the host). */
  configured: (host: HostModel) => boolean;
  /** Its apply can cut the management path: armed with a rollback, confirmed by a second command. */
  guarded: boolean;
  /** The `@applied` kinds its apply reports (components/applied.ts parses them into the stack outputs). */
  reports: readonly AppliedKind[];
  /** The files its apply may write on a host, beyond the kernel's state and our state directory (the lab's snapshots must cover them). */
  writes: (host: HostModel) => string[];
  /** Data and code its apply and the host's drift check carry beyond the host's data (the hooks' files and routing). */
  extras?: (host: HostModel) => { data: DataVar[]; code: string };
}

const setsLimits = (h: HostModel) => h.limits.subflows !== undefined || h.limits.addAddrAccepted !== undefined;

/** Every concern, in apply order. */
export const CONCERN_TABLE = {
  sysctl: { keys: ["sysctl"], configured: (h) => h.sysctl.length > 0, guarded: false, reports: ["sysctl"], writes: () => [SYSCTL_CONF] },
  limits: { keys: ["limits"], configured: setsLimits, guarded: false, reports: ["limits"], writes: () => [] },
  // NetworkManager's endpoints change which subflows a connection gets: kept off them where the
  // config says what those should be (its endpoints, or its limits with no endpoint of its own)
  networkmanager: {
    keys: ["endpointOwner"],
    configured: (h) => h.endpointOwner === "mptcp-pulumi" && (h.endpoints.length > 0 || setsLimits(h)),
    guarded: false,
    reports: ["networkmanager"],
    writes: () => [NM_CONF],
  },
  endpoints: { keys: ["endpoints"], configured: (h) => h.endpoints.length > 0, guarded: true, reports: ["endpoint"], writes: () => [] },
  hooks: {
    keys: ["hooks", "routing"],
    configured: (h) => h.hooks,
    guarded: true,
    reports: ["hook", "route"],
    writes: () => HOOK_SOURCES.map((s) => s.path),
    extras: hooksApplyExtras,
  },
  services: {
    keys: ["services"],
    configured: (h) => h.services.length > 0,
    guarded: false,
    reports: ["service"],
    writes: (h) => h.services.map((s) => `/etc/systemd/system/${s.unit}.d`),
  },
} as const satisfies Record<string, ConcernSpec>;

export type Concern = keyof typeof CONCERN_TABLE;
/** The concerns of a host, in apply order. */
export const CONCERNS = Object.keys(CONCERN_TABLE) as Concern[];
/** One concern's entry, typed as a ConcernSpec (optional fields included). */
export const concernSpec = (c: Concern): ConcernSpec => CONCERN_TABLE[c];

/** The name of a host's command resource for one concern (its URN ends in it). */
export const commandName = (host: string, concern: Concern) => `${host}-${concern}`;

/**
 * The concern that manages a key of a host entry: a config path (mptcp:hosts[1].limits.subflows)
 * or a key as the host's scripts name it (limits.subflows, services[iperf3.service]). Routing
 * belongs to the hooks command.
 */
export function concernOfPath(path: string): Concern | undefined {
  const key = /^(?:mptcp:hosts\[\d+\]\.)?([a-zA-Z]+)(?![a-zA-Z:])/.exec(path)?.[1];
  return CONCERNS.find((c) => (CONCERN_TABLE[c].keys as readonly string[]).includes(key ?? ""));
}
