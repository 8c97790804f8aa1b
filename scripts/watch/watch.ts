// What `npm run watch` runs on each host and makes of what comes back: the remote sampler and
// event monitor (each ends when its SSH channel closes), their output parsed, rates per interface
// between two samples, MPTcpExt counter changes as events, and the terminal frame.
import { canonicalAddress } from "../../components/model";
import { LiveEndpoint, parseEndpoints } from "../verify/verify";

/**
 * The lines that tie a remote command to its SSH channel: fd 3 keeps the channel's stdin (an
 * asynchronous list's own stdin is /dev/null), and a background reader waits for its end of file,
 * which comes when the watcher ends the channel, exits, is killed or loses the connection (sshd
 * closes the pipe). Then `$1` is killed. Nothing else reads stdin.
 */
const onChannelEnd = (kill: string) => `exec 3<&0
{ cat <&3 >/dev/null 2>&1; ${kill}; } >/dev/null 2>&1 &`;

/** Seconds between samples: at least 0.2, at most an hour; its text is what reaches the shell. */
export function intervalText(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0.2 || seconds > 3600) throw new Error("the interval must be from 0.2 to 3600 seconds");
  return String(Math.round(seconds * 1000) / 1000);
}

/**
 * The sampler: every `interval` seconds one block between `@sample` and `@end`: the uptime
 * (seconds, the clock rates are computed with), bytes per interface, the MPTcpExt counters, the
 * addresses, the MPTCP endpoints and the TCP sockets with their MPTCP subflow info. Read-only;
 * ends (with its sleep) when the channel closes, or when a write fails.
 */
export function samplerCommand(interval: number): string {
  const i = intervalText(interval);
  return `s=
${onChannelEnd("kill -TERM $$ 2>/dev/null")}
w=$!
trap 'kill $s $w 2>/dev/null; exit 0' TERM HUP PIPE INT
while :; do
  echo @sample; cat /proc/uptime
  echo @bytes; (cd /sys/class/net && grep -H -e . -- */statistics/rx_bytes */statistics/tx_bytes) || true
  echo @netstat; grep '^MPTcpExt:' /proc/net/netstat || true
  echo @addr; ip -o addr show || true
  echo @endpoints; ip -j mptcp endpoint show 2>/dev/null || true
  echo @ss; ss -tinHO 2>/dev/null || true
  echo @end
  sleep ${i} & s=$!; wait $s
done`;
}

/**
 * The event monitor: `ip mptcp monitor`'s lines as they come, then `@monitor-exit CODE` if it
 * ends on its own (not supported by this kernel or iproute2: its error is among the lines).
 */
export const MONITOR_COMMAND = `command -v ip >/dev/null 2>&1 || { echo '@monitor-exit 127 ip is not installed'; exit 0; }
ip mptcp monitor 2>&1 & m=$!
${onChannelEnd("kill $m 2>/dev/null")}
wait $m; echo "@monitor-exit $?"`;

/** One subflow (a TCP socket with MPTCP's ULP) as `ss -tinHO` shows it. */
export interface Subflow {
  local: string;
  remote: string;
  /** The connection's local token (hex), to count connections. */
  token?: string;
  /** This end marks the subflow backup (flag b), or the peer does (B). */
  backup: boolean;
  peerBackup: boolean;
}

export interface Sample {
  /** The host's uptime in seconds when the sample was taken. */
  uptime: number;
  rx: Record<string, number>;
  tx: Record<string, number>;
  counters: Record<string, number>;
  /** address -> interface */
  addrs: Map<string, string>;
  endpoints: LiveEndpoint[];
  subflows: Subflow[];
}

/** "198.51.100.2:40000" or "[2001:db8::1]:40000" (an address with %zone too) as the address. */
function hostOf(endpoint: string): string {
  const m = /^\[([^\]]+)\](?::\d+|:\*)?$/.exec(endpoint) ?? /^(.*?)(?::\d+|:\*)$/.exec(endpoint);
  const a = (m ? m[1] : endpoint).replace(/%.*$/, "");
  return canonicalAddress(a.startsWith("::ffff:") && a.includes(".") ? a.slice("::ffff:".length) : a);
}

/** `ss -tinHO` lines: the TCP sockets that are MPTCP subflows (tcp-ulp-mptcp). */
export function parseSubflows(text: string): Subflow[] {
  const out: Subflow[] = [];
  for (const line of text.split("\n")) {
    // token:REMOTE(id:N)/LOCAL(id:N) (iproute2's ss; the remote one is 0000 on an initial subflow): the local one names the connection here
    const ulp = /tcp-ulp-mptcp flags:(\S*)(?:.*?\btoken:[0-9a-f]+\(id:\d+\)\/([0-9a-f]+))?/.exec(line);
    if (!ulp) continue;
    const words = line.trim().split(/\s+/);
    // State Recv-Q Send-Q Local Peer ...
    if (words.length < 5) continue;
    out.push({ local: hostOf(words[3]), remote: hostOf(words[4]), ...(ulp[2] ? { token: ulp[2] } : {}), backup: ulp[1].includes("b"), peerBackup: ulp[1].includes("B") });
  }
  return out;
}

/** One sampler block (the lines between @sample and @end) as a sample; undefined when it has no uptime. */
export function parseSample(block: string): Sample | undefined {
  const parts = new Map<string, string[]>();
  let at = "@sample";
  for (const line of block.split("\n")) {
    if (/^@[a-z]+$/.test(line)) at = line;
    else if (line) parts.set(at, [...(parts.get(at) ?? []), line]);
  }
  const get = (k: string) => parts.get(k) ?? [];
  const uptime = Number(get("@sample")[0]?.split(/\s+/)[0]);
  if (!Number.isFinite(uptime)) return undefined;
  const rx: Record<string, number> = {};
  const tx: Record<string, number> = {};
  for (const l of get("@bytes")) {
    const m = /^([^/\s]+)\/statistics\/([rt]x)_bytes:(\d+)$/.exec(l);
    if (m && m[1] !== "lo") (m[2] === "rx" ? rx : tx)[m[1]] = Number(m[3]);
  }
  const counters: Record<string, number> = {};
  const [names, values] = get("@netstat");
  if (names && values) {
    const n = names.split(/\s+/).slice(1);
    const v = values.split(/\s+/).slice(1);
    n.forEach((k, j) => {
      if (v[j] !== undefined) counters[k] = Number(v[j]);
    });
  }
  const addrs = new Map<string, string>();
  for (const l of get("@addr")) {
    // "2: lan    inet 198.51.100.2/28 brd ... scope global lan\ ..."
    const m = /^\d+:\s+(\S+)\s+inet6?\s+([^/\s]+)/.exec(l);
    if (m) addrs.set(canonicalAddress(m[2]), m[1].replace(/@.*$/, ""));
  }
  return { uptime, rx, tx, counters, addrs, endpoints: parseEndpoints(get("@endpoints").join("\n")), subflows: parseSubflows(get("@ss").join("\n")) };
}

/** Per interface of a host, what the view shows for one interval. */
export interface InterfaceRates {
  /** Bytes per second over the interval; null: no earlier sample, or the counter went back (the interface was recreated). */
  rx: number | null;
  tx: number | null;
  /** MPTCP connections with a subflow from an address of this interface, and those subflows. */
  connections: number;
  subflows: number;
  /** yes: the endpoint or a subflow here is marked backup by this host; peer: only by the other end. */
  backup: "yes" | "peer" | "no";
  /** The host's MPTCP endpoint on this interface, its flags (empty when none). */
  endpoint: string[];
  /** The interface was in the earlier sample but is gone. */
  gone?: boolean;
}

/** A counter's growth over an interval divided by its seconds; null when there is no earlier value or it went back. */
export function rate(before: number | undefined, after: number | undefined, seconds: number): number | null {
  if (before === undefined || after === undefined || !(seconds > 0) || after < before) return null;
  return (after - before) / seconds;
}

/**
 * The rows of one host for an interval from `prev` to `cur`: every interface that has an
 * endpoint, carries a subflow or has a global address (but the one `sshAddress` is on, unless it
 * has an endpoint or subflow: the watcher's own traffic), plus those in `keep` (shown before: a
 * path that went away stays on screen, reading 0 or gone).
 */
export function hostRates(prev: Sample | undefined, cur: Sample, keep: Iterable<string> = [], sshAddress?: string): Record<string, InterfaceRates> {
  const seconds = prev ? cur.uptime - prev.uptime : 0;
  const ifaceOf = (a: string) => cur.addrs.get(a);
  const names = new Set<string>(keep);
  // every interface with a global address (a path), but the one SSH arrives on unless MPTCP uses it
  const ssh = sshAddress === undefined ? undefined : ifaceOf(canonicalAddress(sshAddress));
  for (const [a, i] of cur.addrs) if (i !== "lo" && i !== ssh && !/^(127\.|::1$|fe[89ab][0-9a-f]:)/i.test(a)) names.add(i);
  for (const e of cur.endpoints) if (e.dev) names.add(e.dev);
  for (const e of cur.endpoints) if (!e.dev && ifaceOf(e.address)) names.add(ifaceOf(e.address)!);
  for (const s of cur.subflows) if (ifaceOf(s.local)) names.add(ifaceOf(s.local)!);
  const out: Record<string, InterfaceRates> = {};
  for (const name of [...names].sort()) {
    const subs = cur.subflows.filter((s) => ifaceOf(s.local) === name);
    const ep = cur.endpoints.find((e) => e.dev === name || (!e.dev && ifaceOf(e.address) === name));
    const mine = ep?.flags.includes("backup") || subs.some((s) => s.backup);
    const gone = !(name in cur.rx);
    out[name] = {
      rx: prev ? rate(prev.rx[name], cur.rx[name], seconds) : null,
      tx: prev ? rate(prev.tx[name], cur.tx[name], seconds) : null,
      connections: new Set(subs.map((s, i) => s.token ?? `socket${i}`)).size,
      subflows: subs.length,
      backup: mine ? "yes" : subs.some((s) => s.peerBackup) ? "peer" : "no",
      endpoint: ep ? ep.flags : [],
      ...(gone ? { gone } : {}),
    };
  }
  return out;
}

/** MPTcpExt counters shown as events when they grow, and what each means. */
export const COUNTER_EVENTS: Record<string, string> = {
  MPCapableFallbackACK: "fallback to TCP (the peer's ACK carried no MPTCP option)",
  MPCapableFallbackSYNACK: "fallback to TCP (the SYN-ACK carried no MPTCP option)",
  MPFallbackTokenInit: "fallback to TCP (no token)",
  MPCapableSYNTXDrop: "SYN with MPTCP option dropped, retried as TCP",
  MPJoinAckRx: "join completed (server side)",
  MPJoinSynAckRx: "join completed (client side)",
  MPJoinSynRx: "join requested",
  MPJoinNoTokenFound: "join refused: unknown token",
  MPJoinSynTxCreatSkErr: "join failed to start",
  AddAddr: "ADD_ADDR received",
  AddAddrDrop: "ADD_ADDR dropped (add_addr_accepted limit)",
  EchoAdd: "ADD_ADDR echoed",
  RmAddr: "RM_ADDR received",
  RmAddrDrop: "RM_ADDR dropped",
  RmSubflow: "subflow removed",
  MPPrioTx: "backup flag sent (MP_PRIO)",
  MPPrioRx: "backup flag received (MP_PRIO)",
  MPFailTx: "MP_FAIL sent",
  MPFailRx: "MP_FAIL received",
  MPRstTx: "MP_RST sent",
  MPRstRx: "MP_RST received",
  DSSNotMatching: "DSS mapping mismatch",
  InfiniteMapTx: "infinite mapping sent (fallback)",
  InfiniteMapRx: "infinite mapping received (fallback)",
};

/** The counters of COUNTER_EVENTS that grew from `before` to `after`: name, growth, meaning. */
export function counterEvents(before: Record<string, number>, after: Record<string, number>): { counter: string; delta: number; meaning: string }[] {
  return Object.entries(COUNTER_EVENTS).flatMap(([k, meaning]) => {
    const d = (after[k] ?? 0) - (before[k] ?? 0);
    return before[k] !== undefined && d > 0 ? [{ counter: k, delta: d, meaning }] : [];
  });
}

/** One `ip mptcp monitor` line: the event and its key=value fields. */
export interface MonitorEvent {
  type: string;
  fields: Record<string, string>;
}

/** `[SF_ESTABLISHED] token=... saddr4=...` as an event; undefined for any other line. */
export function parseMonitorLine(line: string): MonitorEvent | undefined {
  const m = /^\[\s*([^\]]*?)\s*\]\s*(.*)$/.exec(line.trim());
  if (!m) return undefined;
  const fields: Record<string, string> = {};
  for (const kv of m[2].split(/\s+/)) {
    const eq = kv.indexOf("=");
    if (eq > 0) fields[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return { type: m[1], fields };
}

const EVENT_NAMES: Record<string, string> = {
  CREATED: "connection created",
  ESTABLISHED: "connection established",
  CLOSED: "connection closed",
  ANNOUNCED: "address announced (by the peer)",
  REMOVED: "address removed (by the peer)",
  SF_ESTABLISHED: "subflow established",
  SF_CLOSED: "subflow closed",
  SF_PRIORITY: "subflow priority changed",
  LISTENER_CREATED: "listener created",
  LISTENER_CLOSED: "listener closed",
  "UNKNOWN 15": "listener created",
  "UNKNOWN 16": "listener closed",
};

/** An event for people: what happened, the addresses (with the interface where the host has it), backup and the token. */
export function describeEvent(e: MonitorEvent, addrs: Map<string, string> = new Map()): string {
  const f = e.fields;
  const at = (a?: string, port?: string) => {
    if (!a) return undefined;
    const c = canonicalAddress(a);
    const iface = addrs.get(c);
    return `${c}${port && port !== "0" ? `:${port}` : ""}${iface ? ` (${iface})` : ""}`;
  };
  const local = at(f.saddr4 ?? f.saddr6, f.sport);
  const remote = at(f.daddr4 ?? f.daddr6, f.dport);
  const parts = [EVENT_NAMES[e.type] ?? e.type.toLowerCase()];
  if (local && remote) parts.push(`${local} -> ${remote}`);
  else if (local ?? remote) parts.push((local ?? remote)!);
  if (f.backup === "1") parts.push("backup");
  if (f.error && f.error !== "0") parts.push(`error ${f.error}`);
  if (f.reset_reason && f.reset_reason !== "0") parts.push(`reset reason ${f.reset_reason}`);
  if (f.remid !== undefined && (e.type === "ANNOUNCED" || e.type === "REMOVED")) parts.push(`id ${f.remid}`);
  if (f.token) parts.push(`token ${f.token}`);
  return parts.join("  ");
}

/** A rate for people: Mbit/s (as link speeds are given), or "-" before the first interval. */
export function mbit(bytesPerSecond: number | null): string {
  return bytesPerSecond === null ? "-" : `${((bytesPerSecond * 8) / 1e6).toFixed(2)} Mbit/s`;
}

export interface HostView {
  name: string;
  rows: Record<string, InterfaceRates>;
  /** Why the host shows nothing (not reached yet, connection lost). */
  status?: string;
  /** Why there are no events from `ip mptcp monitor` (not supported), when so. */
  monitor?: string;
}

export interface ViewEvent {
  /** Local time, ms since the epoch. */
  time: number;
  host: string;
  text: string;
}

const clock = (ms: number) => {
  const d = new Date(ms);
  const p = (n: number, w = 2) => String(n).padStart(w, "0");
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
};

/** The frame: a table of hosts and interfaces, then the newest events that fit in `rows` lines. */
export function renderFrame(title: string, hosts: HostView[], events: ViewEvent[], rows = 50): string[] {
  const head = ["HOST", "IFACE", "RX", "TX", "CONNS", "SUBFLOWS", "BACKUP", "ENDPOINT"];
  /** A host's rows, or the one line saying why it has none. */
  const table: (string[] | string)[] = [];
  for (const h of hosts) {
    if (h.status) table.push(`${h.name}  ${h.status}`);
    for (const [iface, r] of Object.entries(h.rows))
      table.push([h.name, iface, r.gone ? "gone" : mbit(r.rx), r.gone ? "gone" : mbit(r.tx), String(r.connections), String(r.subflows), r.backup, r.endpoint.join(",") || "-"]);
  }
  const cells = table.filter((r): r is string[] => Array.isArray(r));
  const widths = head.map((x, i) => Math.max(x.length, ...cells.map((r) => r[i].length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => (i === 2 || i === 3 ? c.padStart(widths[i]) : c.padEnd(widths[i])))
      .join("  ")
      .trimEnd();
  const out = [title, "", line(head), ...table.map((r) => (Array.isArray(r) ? line(r) : r)), ""];
  const degraded = hosts.filter((h) => h.monitor).map((h) => `events: ${h.name}: ${h.monitor}`);
  out.push(`events (ip mptcp monitor, MPTcpExt counters; newest last):`, ...degraded);
  const room = Math.max(1, rows - out.length - 1);
  const hostWidth = Math.max(4, ...hosts.map((h) => h.name.length));
  for (const e of events.slice(-room)) out.push(`${clock(e.time)}  ${e.host.padEnd(hostWidth)}  ${e.text}`);
  return out;
}
