// The stack-config contract users write under the `mptcp` namespace, as zod schemas.
// Every string that can reach a shell is constrained here by a strict pattern; the
// renderers still shell-quote everything they emit.
import { isIP } from "node:net";
import { z } from "zod";
import { EndpointFlag, EndpointOwner, PathManager, RestartPolicy, RoutingMode, ServiceMode } from "./args";

/** The values of one of the args' enumerations (components/args.ts), in their order, for z.enum. */
const valuesOf = <T extends Record<string, string>>(o: T) => Object.values(o) as [T[keyof T], ...T[keyof T][]];

/** Linux interface names: at most 15 characters, no slash, no whitespace. */
export const INTERFACE_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}$/;
/** Host names double as Pulumi resource names and file comments. */
export const HOST_NAME_RE = /^[a-z0-9][a-z0-9-]{0,62}$/;
/** A DNS name (an IP address is accepted separately). */
export const DNS_NAME_RE = /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*\.?$/;
/** POSIX-ish login names. */
export const USER_RE = /^[a-z_][a-z0-9_-]{0,31}$/;
/** One authorized_keys-style public key line: type, base64 blob, optional comment. */
export const HOST_KEY_RE = /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com) [A-Za-z0-9+/]+={0,3}( [\x21-\x7e ]*)?$/;
/** Scheduler names as the kernel lists them in available_schedulers. */
export const SCHEDULER_RE = /^[a-z0-9_]{1,15}$/;

/**
 * The command provider pins a host key by offering only its type as host key algorithm
 * (pulumi-command v1.2.1 connection.go SSHConfig: `HostKeyAlgorithms: []string{publicKey.Type()}`):
 * for an RSA key that is `ssh-rsa` (SHA-1), which OpenSSH 8.8 and later no longer accept, so
 * every connection fails "no common algorithm for host key".
 */
export const RSA_HOST_KEY_HELP =
  'is an RSA key (ssh-rsa): the command provider then offers only the SHA-1 ssh-rsa signature, which OpenSSH 8.8 and later refuse, so every connection fails ("ssh: no common algorithm for host key; we offered: [ssh-rsa]"): use the host\'s ed25519 or ecdsa key, e.g. ssh-keyscan -t ed25519 HOST (without the host name)';

/**
 * The longest confirmTimeout. An apply that cuts its own SSH path leaves its session silent; the
 * provider's connection has no SSH keepalive, only Go's TCP keepalive (15 s idle, then 9 probes
 * 15 s apart: pulumi-command v1.2.1 connection.go dials through x/crypto's ssh.Dial, i.e.
 * net.DialTimeout; Go's net package defaults), so the session dies 150 s after the server's last
 * segment, which may be up to 15 s before the cut: the last probe that can still be answered goes
 * out 120 s after the cut at the earliest. The rollback is armed before the cut and fires
 * confirmTimeout later; 90 s leaves it 30 s to run and the path to come back (an interface up, a
 * lease) before that probe, so the apply's session survives and its command reports.
 */
export const MAX_CONFIRM_TIMEOUT = 90;
export const CONFIRM_TIMEOUT_HELP = `must be 0 (off) or 3..${MAX_CONFIRM_TIMEOUT} seconds: an apply that cuts the SSH path must be rolled back while the command provider's session still lives (Go's TCP keepalive ends it 150 s after the server's last word, 120 s after the cut at the earliest; ${MAX_CONFIRM_TIMEOUT} s leaves the rollback 30 s to restore the path)`;

export const ENDPOINT_FLAGS = valuesOf(EndpointFlag);

/** Kernel defaults of `ip mptcp limits` in a fresh namespace; used when a host leaves them unset. */
export const KERNEL_DEFAULT_LIMITS = { subflows: 2, addAddrAccepted: 0 } as const;
export const MAX_LIMIT = 8;
export const MAX_ENDPOINTS = 8;

const ipAddress = z
  .string()
  .refine((s) => !s.includes("%"), { error: "must be an address without a zone id (%IFACE): the interface is named by its own field", abort: true })
  .refine((s) => isIP(s) !== 0, { error: "must be an IPv4 or IPv6 address without prefix length (e.g. 198.51.100.2 or 2001:db8::2)" });

/** Key types whose public-key blob starts with their own name (RFC 4253 6.6, RFC 5656, OpenSSH PROTOCOL.u2f). */
function blobNamesType(line: string): boolean {
  const [type, b64] = line.split(" ");
  const blob = Buffer.from(b64, "base64");
  if (blob.length < 4 + type.length + 4) return false;
  const n = blob.readUInt32BE(0);
  return n === type.length && blob.subarray(4, 4 + n).toString("latin1") === type;
}

/** An IPv6 address's zone (%eth0, %2): an interface name or index, as Go's net.Dial and Node's net.connect take it ("[fe80::1%eth0]:22"). */
const ZONE_RE = /^(?:[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}|[0-9]{1,10})$/;

/** Whether an ssh.host with a zone (fe80::1%eth0) names an IPv6 address and an interface the machine running Pulumi can dial from. */
function zonedOk(s: string): boolean {
  const at = s.indexOf("%");
  return isIP(s.slice(0, at)) === 6 && ZONE_RE.test(s.slice(at + 1));
}

const sshHost = z
  .string({ error: "must be an IP address or a DNS name" })
  .refine((s) => !s.includes("%") || zonedOk(s), {
    error: "has a zone (%IFACE) but is not an IPv6 address with an interface name or index after the %, such as fe80::1%eth0",
    abort: true,
  })
  .refine((s) => s.includes("%") || isIP(s) !== 0 || DNS_NAME_RE.test(s), {
    error: "must be an IP address or a DNS name",
  });

const boolKnob = z.boolean({ error: "must be true or false" });
const secondsKnob = z
  .number({ error: "must be a whole number" })
  .int({ error: "must be a whole number" })
  .min(0, { error: "must be 0 or more" })
  .max(2147483647, { error: "must be at most 2147483647" });

export const sshSchema = z.strictObject({
  /** Address or DNS name the SSH connection dials. */
  host: sshHost,
  /** SSH port. Defaults to 22. */
  port: z
    .number({ error: "must be a port number 1..65535" })
    .int({ error: "must be a port number 1..65535" })
    .min(1, { error: "must be a port number 1..65535" })
    .max(65535, { error: "must be a port number 1..65535" })
    .default(22),
  /** Login user. Defaults to root; any other user runs everything through `sudo -n`. */
  user: z.string().regex(USER_RE, { error: "must be a login name like root or admin" }).default("root"),
  /** The host's public key (as in `ssh-keyscan -t ed25519 HOST`, without the host column): ed25519 or ecdsa, not RSA. Required. */
  hostKey: z
    .string()
    .regex(HOST_KEY_RE, { error: 'must be one public key line such as "ssh-ed25519 AAAAC3Nz..." (ssh-keyscan output without the host name)', abort: true })
    .refine(blobNamesType, {
      error: "is not a key of the type it names: its base64 blob does not start with that type (copy the line from ssh-keyscan -t TYPE HOST again, without the host name)",
      abort: true,
    })
    .refine((s) => !s.startsWith("ssh-rsa "), { error: RSA_HOST_KEY_HELP })
    .optional(),
  /** Set true to connect without checking the host key (never in production). Defaults to false. */
  insecureIgnoreHostKey: z.boolean().default(false),
});

export const sysctlSchema = z.strictObject({
  /** net.mptcp.enabled */
  enabled: boolKnob.optional(),
  /** net.mptcp.path_manager (pm_type on kernels before 6.15) */
  pathManager: z.enum(valuesOf(PathManager), { error: 'must be "kernel" or "userspace"' }).optional(),
  /** net.mptcp.scheduler; checked against the target's available_schedulers at apply time */
  scheduler: z.string().regex(SCHEDULER_RE, { error: 'must be a scheduler name such as "default"' }).optional(),
  /** net.mptcp.checksum_enabled */
  checksumEnabled: boolKnob.optional(),
  /** net.mptcp.allow_join_initial_addr_port */
  allowJoinInitialAddrPort: boolKnob.optional(),
  /** net.mptcp.add_addr_timeout (seconds) */
  addAddrTimeout: secondsKnob.optional(),
  /** net.mptcp.stale_loss_cnt */
  staleLossCnt: secondsKnob.optional(),
  /** net.mptcp.blackhole_timeout (seconds, 0 disables detection) */
  blackholeTimeout: secondsKnob.optional(),
  /** net.mptcp.close_timeout (seconds) */
  closeTimeout: secondsKnob.optional(),
  /** net.mptcp.syn_retrans_before_tcp_fallback */
  synRetransBeforeTcpFallback: z.number().int().min(0).max(255, { error: "must be a whole number 0..255" }).optional(),
});

const limit = z
  .number({ error: `must be a whole number 0..${MAX_LIMIT}` })
  .int({ error: `must be a whole number 0..${MAX_LIMIT}` })
  .min(0, { error: `must be a whole number 0..${MAX_LIMIT}` })
  .max(MAX_LIMIT, { error: `must be at most ${MAX_LIMIT} (the kernel's maximum)` });

export const limitsSchema = z.strictObject({
  /** Additional subflows per connection, created or accepted. Kernel default 2. */
  subflows: limit.optional(),
  /** ADD_ADDR announcements acted on per connection. Kernel default 0. */
  addAddrAccepted: limit.optional(),
});

export const endpointSchema = z.strictObject({
  /** Interface the endpoint is bound to (`dev`). Required. */
  interface: z.string().regex(INTERFACE_RE, { error: "must be an interface name (letters, digits, _ . -; at most 15 characters)" }),
  /** Address; when omitted, the interface's first global address at apply time. */
  address: ipAddress.optional(),
  /** Any of signal, subflow, backup, fullmesh. Defaults to []. */
  flags: z.array(z.enum(ENDPOINT_FLAGS, { error: `must be one of ${ENDPOINT_FLAGS.join(", ")}` })).default([]),
  /** Endpoint id 1..255; when omitted, one derived from interface and address (model.ts, assignEndpointIds), never an id the config gives another endpoint. */
  id: z.number().int().min(1).max(255, { error: "must be a whole number 1..255" }).optional(),
  /** Port to announce (signal endpoints only). */
  port: z.number().int().min(1).max(65535, { error: "must be a port number 1..65535" }).optional(),
});

export const ROUTING_MODES = valuesOf(RoutingMode);

export const routingSchema = z.strictObject({
  /** An interface that has endpoints on this host. */
  interface: z.string().regex(INTERFACE_RE, { error: "must be an interface name (letters, digits, _ . -; at most 15 characters)" }),
  /** source: a rule `from <address> table <table>` plus that table's routes; none: nothing; auto: source when the interface has a gateway that is not the main table's first default route. Defaults to auto. */
  mode: z.enum(ROUTING_MODES, { error: `must be one of ${ROUTING_MODES.join(", ")}` }).default("auto"),
  /** Routing table id 1..252. Defaults to one in 100..227 derived from the interface's name (model.ts, routingFor), never a table or default priority the host's routing list sets. */
  table: z.number().int().min(1).max(252, { error: "must be a table id 1..252 (253-255 are the kernel's default, main and local)" }).optional(),
  /** Rule priority 1..32765. Defaults to 1000 + table. */
  priority: z.number().int().min(1).max(32765, { error: "must be a rule priority 1..32765 (32766 is main)" }).optional(),
  /** IPv4 gateway for the table's default route. Defaults to what DHCP or ifupdown report, else the main table's default route via this interface. */
  gateway: ipAddress.refine((s) => isIP(s) === 4, { error: "must be an IPv4 address: the table's IPv6 default route follows the main table's route through the interface" }).optional(),
});

export const SERVICE_MODES = valuesOf(ServiceMode);
export const RESTART_POLICIES = valuesOf(RestartPolicy);
/** systemd unit names: letters, digits and `: _ . -`, `@` before a template instance; the type suffix; at most 255 characters. */
export const UNIT_NAME_RE = /^(?=.{1,255}$)[A-Za-z0-9:_.-]+(@[A-Za-z0-9:_.-]+)?\.(service|socket)$/;

export const serviceSchema = z.strictObject({
  /** The systemd unit whose sockets become MPTCP: a .service (preload, godebug) or a .socket (socket). */
  unit: z.string().regex(UNIT_NAME_RE, { error: "must be a systemd unit name ending in .service or .socket, such as iperf3.service (a template needs its instance: name@instance.service)" }),
  /** preload: LD_PRELOAD libmptcpwrap (from mptcpize); godebug: GODEBUG=multipathtcp=1 (Go programs); socket: SocketProtocol=mptcp (socket units, systemd >= 256). Defaults to preload. */
  mode: z.enum(SERVICE_MODES, { error: `must be one of ${SERVICE_MODES.join(", ")}` }).default("preload"),
  /** ifRunning: restart the unit when its drop-in changes and it was running, so its sockets are re-made; never: leave that to you. Defaults to ifRunning. */
  restart: z.enum(RESTART_POLICIES, { error: `must be one of ${RESTART_POLICIES.join(", ")}` }).default("ifRunning"),
});

export const hostSchema = z.strictObject({
  /** Unique host name: used in resource names. */
  name: z.string().regex(HOST_NAME_RE, { error: "must be lowercase letters, digits and dashes (e.g. server, laptop-1)" }),
  ssh: sshSchema,
  sysctl: sysctlSchema.optional(),
  limits: limitsSchema.optional(),
  endpoints: z.array(endpointSchema).default([]),
  /** Install if-up/down, NetworkManager and dhclient hooks and a boot unit that keep endpoints and routing right. Defaults to false. */
  hooks: z.boolean({ error: "must be true or false" }).default(false),
  /**
   * Who makes this host's MPTCP endpoints. mptcp-pulumi: where the config sets endpoints or limits,
   * NetworkManager (where installed) is switched off for MPTCP through a conf.d file of ours, and
   * the config's endpoints are the table.
   * networkmanager: NetworkManager's own endpoint handling is left on; the config lists no
   * endpoints. Defaults to mptcp-pulumi.
   */
  endpointOwner: z.enum(valuesOf(EndpointOwner), { error: `must be ${valuesOf(EndpointOwner).join(" or ")}` }).default("mptcp-pulumi"),
  /** Per-interface source routing (needs hooks). Endpoint interfaces not listed get mode auto. */
  routing: z.array(routingSchema).default([]),
  /** Seconds after an apply of endpoints or hooks/routing within which a new SSH connection must confirm it, else the host undoes it by itself (like netplan try). 0 turns this off. At most MAX_CONFIRM_TIMEOUT. Defaults to MAX_CONFIRM_TIMEOUT. */
  confirmTimeout: z
    .number({ error: "must be a whole number of seconds" })
    .int({ error: "must be a whole number of seconds" })
    .refine((n) => n === 0 || (n >= 3 && n <= MAX_CONFIRM_TIMEOUT), { error: CONFIRM_TIMEOUT_HELP })
    .default(MAX_CONFIRM_TIMEOUT),
  /** systemd units whose sockets become MPTCP, through a drop-in we own. Defaults to []. */
  services: z.array(serviceSchema).default([]),
});

export const linkSchema = z.strictObject({
  /** Host name that opens MPTCP connections. */
  client: z.string().min(1, { error: "must name a host of mptcp:hosts" }),
  /** Host name that accepts them. */
  server: z.string().min(1, { error: "must name a host of mptcp:hosts" }),
  /** The server address the client dials (predictions and npm run verify). Defaults to the server's ssh.host when that is an IP address. */
  address: ipAddress.optional(),
  /**
   * The server's announced (signal) addresses the client has a route to; default: all of them. A
   * server with clients on separate networks announces every address to each, and an address a
   * client cannot reach opens no subflow (predictions, validation of its limits, npm run verify).
   */
  reaches: z.array(ipAddress).optional(),
});

export const configSchema = z.strictObject({
  hosts: z.array(hostSchema).min(1, { error: "must list at least one host" }),
  links: z.array(linkSchema).default([]),
});

export type SshConfig = z.infer<typeof sshSchema>;
export type SysctlConfig = z.infer<typeof sysctlSchema>;
export type LimitsConfig = z.infer<typeof limitsSchema>;
export type EndpointConfig = z.infer<typeof endpointSchema>;
export type HostConfig = z.infer<typeof hostSchema>;
export type LinkConfig = z.infer<typeof linkSchema>;
export type RoutingConfig = z.infer<typeof routingSchema>;
export type ServiceConfig = z.infer<typeof serviceSchema>;
export type MptcpConfig = z.infer<typeof configSchema>;

/** camelCase config key -> kernel knob under /proc/sys/net/mptcp, and how to render the value. */
export const SYSCTL_KNOBS: Record<keyof SysctlConfig, string> = {
  enabled: "enabled",
  pathManager: "path_manager",
  scheduler: "scheduler",
  checksumEnabled: "checksum_enabled",
  allowJoinInitialAddrPort: "allow_join_initial_addr_port",
  addAddrTimeout: "add_addr_timeout",
  staleLossCnt: "stale_loss_cnt",
  blackholeTimeout: "blackhole_timeout",
  closeTimeout: "close_timeout",
  synRetransBeforeTcpFallback: "syn_retrans_before_tcp_fallback",
};
