// The public arguments of MptcpHost and MptcpNetwork: one host entry of `mptcp:hosts` (and the
// `mptcp:links` list), with pulumi.Input where a value can come from another resource (an SSH
// address, a host key, a private key, endpoint addresses, a gateway). Everything that decides which
// resources a host gets (which concerns, how many endpoints) is a plain value, as in
// pulumi-command's and pulumi-awsx's args, so a preview shows the same resources as the update.
//
// Enumerations are `as const` objects with a type of the same name: a TypeScript program writes
// the string ("signal"), and the SDK's schema analyzer
// (@pulumi/pulumi/provider/experimental/analyzer.js) turns them into schema enums for the SDKs of
// other languages. Each property's TSDoc is its description in that schema.
import type * as pulumi from "@pulumi/pulumi";

/** How the kernel's MPTCP path manager is chosen (net.mptcp.path_manager). */
export const PathManager = {
  /** The in-kernel path manager, configured by `ip mptcp endpoint` and `ip mptcp limits`. */
  Kernel: "kernel",
  /** A userspace daemon (mptcpd) manages subflows. */
  Userspace: "userspace",
} as const;
export type PathManager = (typeof PathManager)[keyof typeof PathManager];

/** The flags of an MPTCP endpoint (`ip mptcp endpoint add ... FLAGS`). */
export const EndpointFlag = {
  /** Announce this address to peers (ADD_ADDR): for a server's extra addresses. */
  Signal: "signal",
  /** Open a subflow from this address: for a client's extra interfaces. */
  Subflow: "subflow",
  /** Use the subflow only when no other works (MP_PRIO backup). */
  Backup: "backup",
  /** With subflow: one subflow from this address to every address the peer announced. */
  Fullmesh: "fullmesh",
} as const;
export type EndpointFlag = (typeof EndpointFlag)[keyof typeof EndpointFlag];

/** Who makes a host's MPTCP endpoints. */
export const EndpointOwner = {
  /** This component: NetworkManager (where installed) is switched off for MPTCP endpoints through a conf.d file of ours. */
  MptcpPulumi: "mptcp-pulumi",
  /** NetworkManager's own endpoint handling stays on; the host lists no endpoints. */
  NetworkManager: "networkmanager",
} as const;
export type EndpointOwner = (typeof EndpointOwner)[keyof typeof EndpointOwner];

/** Source routing for an endpoint interface. */
export const RoutingMode = {
  /** source when the interface has a gateway that is not the main table's first default route, else none. */
  Auto: "auto",
  /** A rule `from ADDRESS table TABLE` plus that table's routes. */
  Source: "source",
  /** No rule and no table. */
  None: "none",
} as const;
export type RoutingMode = (typeof RoutingMode)[keyof typeof RoutingMode];

/** How a service's sockets become MPTCP. */
export const ServiceMode = {
  /** LD_PRELOAD libmptcpwrap (from mptcpize), for programs that open TCP sockets through libc. */
  Preload: "preload",
  /** GODEBUG=multipathtcp=1, for Go programs. */
  Godebug: "godebug",
  /** SocketProtocol=mptcp in a .socket unit (systemd 256 and later). */
  Socket: "socket",
} as const;
export type ServiceMode = (typeof ServiceMode)[keyof typeof ServiceMode];

/** Whether a service is restarted when its drop-in changes. */
export const RestartPolicy = {
  /** Restart the unit when its drop-in changes and it was running, so its sockets are re-made. */
  IfRunning: "ifRunning",
  /** Leave restarting to you. */
  Never: "never",
} as const;
export type RestartPolicy = (typeof RestartPolicy)[keyof typeof RestartPolicy];

/** How to reach a host over SSH. */
export interface SshArgs {
  /** Address or DNS name the SSH connection dials (e.g. another resource's IP address output). */
  host: pulumi.Input<string>;
  /** SSH port. Defaults to 22. */
  port?: pulumi.Input<number>;
  /** Login user. Defaults to root; any other user runs everything through `sudo -n`. */
  user?: string;
  /** The host's public key, as `ssh-keyscan -t ed25519 HOST` prints it without the host column: ed25519 or ecdsa, not RSA. Required unless insecureIgnoreHostKey. */
  hostKey?: pulumi.Input<string>;
  /** Connect without checking the host key (never in production). Defaults to false. */
  insecureIgnoreHostKey?: boolean;
  /** The SSH private key (PEM or OpenSSH format). Stored as a secret whether or not it is passed as one. Defaults to the SSH agent at SSH_AUTH_SOCK. */
  privateKey?: pulumi.Input<string>;
}

/** net.mptcp.* sysctls; each one left out stays as the host has it. */
export interface SysctlArgs {
  /** net.mptcp.enabled */
  enabled?: boolean;
  /** net.mptcp.path_manager (pm_type on kernels before 6.15). */
  pathManager?: PathManager;
  /** net.mptcp.scheduler; checked against the host's available_schedulers when applied. */
  scheduler?: string;
  /** net.mptcp.checksum_enabled */
  checksumEnabled?: boolean;
  /** net.mptcp.allow_join_initial_addr_port */
  allowJoinInitialAddrPort?: boolean;
  /** net.mptcp.add_addr_timeout (seconds). */
  addAddrTimeout?: number;
  /** net.mptcp.stale_loss_cnt */
  staleLossCnt?: number;
  /** net.mptcp.blackhole_timeout (seconds; 0 disables detection). */
  blackholeTimeout?: number;
  /** net.mptcp.close_timeout (seconds). */
  closeTimeout?: number;
  /** net.mptcp.syn_retrans_before_tcp_fallback */
  synRetransBeforeTcpFallback?: number;
}

/** `ip mptcp limits`; each one left out stays as the host has it. */
export interface LimitsArgs {
  /** Additional subflows per connection, created or accepted (0..8). Kernel default 2. */
  subflows?: number;
  /** ADD_ADDR announcements acted on per connection (0..8). Kernel default 0. */
  addAddrAccepted?: number;
}

/** One MPTCP endpoint (`ip mptcp endpoint add`). */
export interface EndpointArgs {
  /** Interface the endpoint is bound to (`dev`). */
  interface: string;
  /** Address; when left out, the interface's first global address when applied (kept up to date by hooks). */
  address?: pulumi.Input<string>;
  /** Any of signal, subflow, backup, fullmesh. Defaults to none. */
  flags?: EndpointFlag[];
  /** Endpoint id 1..255; when left out, one derived from interface and address, never an id another endpoint of the host is given. */
  id?: number;
  /** Port to announce (signal endpoints only). */
  port?: number;
}

/** Source routing for one endpoint interface (needs hooks). */
export interface RoutingArgs {
  /** An interface that has endpoints on this host. */
  interface: string;
  /** auto, source or none. Defaults to auto. */
  mode?: RoutingMode;
  /** Routing table id 1..252. Defaults to one in 100..227 derived from the interface's name. */
  table?: number;
  /** Rule priority 1..32765. Defaults to 1000 + table. */
  priority?: number;
  /** IPv4 gateway for the table's default route. Defaults to what DHCP or ifupdown report, else the main table's default route via this interface. */
  gateway?: pulumi.Input<string>;
}

/** A systemd unit whose sockets become MPTCP, through a drop-in of ours. */
export interface ServiceArgs {
  /** The unit: a .service (preload, godebug) or a .socket (socket). */
  unit: string;
  /** preload, godebug or socket. Defaults to preload. */
  mode?: ServiceMode;
  /** ifRunning or never. Defaults to ifRunning. */
  restart?: RestartPolicy;
}

/** One host's desired MPTCP state: what one entry of the stack config's `mptcp:hosts` says, less its name (the resource's name). */
export interface MptcpHostArgs {
  /** How to reach the host. */
  ssh: SshArgs;
  /** net.mptcp.* sysctls to set. */
  sysctl?: SysctlArgs;
  /** `ip mptcp limits` to set. */
  limits?: LimitsArgs;
  /** The host's MPTCP endpoints: the whole table (others are removed while applied, and restored on destroy). */
  endpoints?: EndpointArgs[];
  /** Install if-up/down, NetworkManager, dhclient, dhcpcd and networkd hooks and a boot unit that keep endpoints and routing right as interfaces come and go. Defaults to false. */
  hooks?: boolean;
  /** Who makes this host's MPTCP endpoints: mptcp-pulumi or networkmanager. Defaults to mptcp-pulumi. */
  endpointOwner?: EndpointOwner;
  /** Per-interface source routing (needs hooks); endpoint interfaces not listed get mode auto. */
  routing?: RoutingArgs[];
  /** systemd units whose sockets become MPTCP. */
  services?: ServiceArgs[];
  /** Seconds (3..90, or 0 for off) within which a second SSH connection must confirm an apply of endpoints or hooks, else the host undoes it by itself. Defaults to 90. */
  confirmTimeout?: number;
}

/** One host of an MptcpNetwork. */
export interface NetworkHostArgs extends MptcpHostArgs {
  /** The host's name (lowercase letters, digits, dashes): its MptcpHost's resource name. */
  name: string;
}

/** A client-server pair whose MPTCP connections the network's checks and predictions cover. */
export interface LinkArgs {
  /** Name of the host that opens connections. */
  client: string;
  /** Name of the host that accepts them. */
  server: string;
  /** The server address the client dials. Defaults to the server's ssh.host when that is an IP address. */
  address?: pulumi.Input<string>;
  /** The server's announced (signal) addresses the client has a route to. Defaults to all of them. */
  reaches?: pulumi.Input<string>[];
}

/** Hosts and the links between them. */
export interface MptcpNetworkArgs {
  /** The hosts, each with a unique name and SSH target. */
  hosts: NetworkHostArgs[];
  /** Client-server pairs: their limits are checked against each other, and their subflows predicted. */
  links?: LinkArgs[];
}
