// TEST CODE. Observations of lab laptops from this machine (nsenter): state snapshots, MIB
// counters, interface bytes. Transfers use the product's verification (scripts/verify).
import { EndpointFlag } from "../../components";
import { configuredEndpoints, LAB_USER, LabHost, labSh, labStackConfig, LabState } from "../../scripts/lab/lab";

/** Directories our components may write; snapshots cover every file under them. */
export const WATCHED_DIRS = [
  "/etc/sysctl.d",
  "/var/lib/mptcp-pulumi",
  "/etc/network",
  "/etc/NetworkManager",
  "/etc/dhcp/dhclient-exit-hooks.d",
  "/usr/lib/dhcpcd/dhcpcd-hooks",
  "/etc/networkd-dispatcher",
  "/etc/systemd/networkd.conf.d",
  "/etc/systemd/system",
  "/usr/local/sbin",
  "/run/mptcp-pulumi.lock",
  "/root/.mptcp-pulumi",
  `/home/${LAB_USER}/.mptcp-pulumi`,
];

/**
 * The laptop's whole MPTCP-relevant state: sysctls, limits, endpoints, rules, routes, rp_filter,
 * files. Tests take hundreds of these, so the laptop runs one script of few processes (one grep,
 * three ip in batch mode, one find, one sha256sum: it was about thirty with a pipeline per part) and the
 * filtering and sorting happen here.
 */
export function snapshot(h: LabHost, opts: { staged?: boolean } = {}): string {
  const raw = labSh(
    h,
    `set -e
grep -H . /proc/sys/net/mptcp/* /proc/sys/net/ipv4/conf/*/rp_filter
echo @mptcp; ip -batch - <<'IP'
mptcp limits show
mptcp endpoint show
IP
echo @inet; ip -4 -batch - <<'IP'
rule show
route show table all
IP
echo @inet6; ip -6 -batch - <<'IP'
rule show
route show table all
IP
echo @files
dirs=""
for d in ${WATCHED_DIRS.join(" ")}; do if [ -e "$d" ]; then dirs="$dirs $d"; else echo "absent $d"; fi; done
[ -z "$dirs" ] || find $dirs -xdev -printf 'entry %y %m %p %l\\n' -type f -exec sha256sum {} +`,
  );
  const part = new Map<string, string[]>();
  let at = "@proc";
  for (const line of raw.split("\n")) {
    if (line.startsWith("@")) at = line;
    else if (line) part.set(at, [...(part.get(at) ?? []), line]);
  }
  const get = (k: string) => part.get(k) ?? [];
  // one ip per family (ip -batch): limits are the first line; rules are "PRIORITY:<tab>...", routes never are
  const [limitsLine, ...endpointLines] = get("@mptcp");
  const isRule = (l: string) => /^\d+:\t/.test(l);
  const split = (k: string) => ({ rules: get(k).filter(isRule), routes: get(k).filter((l) => !isRule(l)) });
  const inet = split("@inet");
  const inet6 = split("@inet6");
  const proc = get("@proc");
  const sorted = (lines: string[]) => [...lines].sort();
  const files = get("@files");
  const text =
    [
      ...proc.filter((l) => l.startsWith("/proc/sys/net/mptcp/") && !l.includes("/available_")).map((l) => `sysctl ${l.slice("/proc/sys/net/mptcp/".length)}`),
      `limits ${limitsLine ?? ""}`,
      ...configuredEndpoints(endpointLines).map((l) => `endpoint ${l}`),
      ...inet.rules.map((l) => `rule4 ${l}`),
      ...inet6.rules.map((l) => `rule6 ${l}`),
      // routes are a set: a link flap re-adds them in another order
      ...sorted(inet.routes).map((l) => `route4 ${l}`),
      ...sorted(inet6.routes.filter((l) => !l.startsWith("local") && !l.includes("fe80"))).map((l) => `route6 ${l}`),
      ...proc.filter((l) => l.startsWith("/proc/sys/net/ipv4/conf/")).map((l) => `rp_filter ${l}`),
      // files: type, mode, link target and content hash of everything under the watched paths
      ...files.filter((l) => l.startsWith("absent ")),
      ...sorted(files.filter((l) => l.startsWith("entry "))),
      ...sorted(
        files
          .filter((l) => !l.startsWith("entry ") && !l.startsWith("absent "))
          .map((l) => {
            const [hash, path] = l.split(/\s+/);
            return `sha256 ${path} ${hash.slice(0, 16)}`;
          }),
      ),
    ].join("\n") + "\n";
  return opts.staged === false ? unstaged(text) : text;
}

/** A snapshot without its lines for the scripts Pulumi copies to the SSH user's ~/.mptcp-pulumi (components/stage.ts). */
export const unstaged = (text: string): string =>
  text
    .split("\n")
    .filter((l) => !/\/\.mptcp-pulumi(\/| |$)/.test(l))
    .join("\n");

/**
 * What a failed up may leave on a host: its snapshot without the copied scripts (`staged: false`),
 * which the copy delivered before the command that failed and which stay, in the SSH user's home
 * alone, until the entry's next up or its destroy (its scripts-cleanup). Also checks that the
 * staged directory holds nothing but scripts named by their own SHA-256.
 */
export function hostState(h: LabHost): string {
  const bad = labSh(h, `for f in /root/.mptcp-pulumi/*/* /home/*/.mptcp-pulumi/*/*; do [ -e "$f" ] || continue; n=\${f##*/}; [ "$(sha256sum <"$f")" = "\${n%.sh}  -" ] || echo "$f"; done`).trim();
  if (bad) throw new Error(`${h.name}: staged files that are not scripts named by their SHA-256: ${bad}`);
  return snapshot(h, { staged: false });
}

/** The lines only one of two snapshots has, for a failure's log. */
export function snapshotDiff(now: string, was: string): string {
  const only = (a: string, b: string) => {
    const x = new Set(b.split("\n"));
    return a.split("\n").filter((l) => !x.has(l));
  };
  return `only now: ${JSON.stringify(only(now, was))}; only before: ${JSON.stringify(only(was, now))}`;
}

export function sysctl(h: LabHost, knob: string): string {
  return labSh(h, `cat /proc/sys/net/mptcp/${knob}`).trim();
}

export function limits(h: LabHost): { subflows: number; addAddrAccepted: number } {
  const words = labSh(h, "ip mptcp limits show").trim().split(/\s+/);
  const get = (k: string) => Number(words[words.indexOf(k) + 1]);
  return { subflows: get("subflows"), addAddrAccepted: get("add_addr_accepted") };
}

/** An endpoint as `ip -j mptcp endpoint show` prints it: a boolean per flag it has. */
export interface LiveEndpoint extends Partial<Record<EndpointFlag, boolean>> {
  address: string;
  id: number;
  dev?: string;
  port?: number;
}

export function endpoints(h: LabHost): LiveEndpoint[] {
  return JSON.parse(labSh(h, "ip -j mptcp endpoint show") || "[]");
}

export function counter(h: LabHost, name: string): number {
  const out = labSh(h, `nstat -asz ${name}`);
  const line = out.split("\n").find((l) => l.startsWith(name + " "));
  return line ? Number(line.split(/\s+/)[1]) : 0;
}

/** A lab stack config whose client (hosts[1]) sets every concern. */
export type AllConcernsConfig = { hosts: any[]; links: unknown };

/**
 * The lab's stack config with the client (hosts[1]) setting every concern: sysctl, limits, two
 * subflow endpoints, hooks and a service, and the server taking `serverSubflows` joins. `client`
 * is merged into the client's entry (routing, confirmTimeout, more knobs).
 */
export function allConcernsConfig(lab: LabState, opts: { serverSubflows?: number; client?: Record<string, unknown> } = {}): AllConcernsConfig {
  const cfg = labStackConfig(lab) as AllConcernsConfig;
  cfg.hosts[0].limits.subflows = opts.serverSubflows ?? 3;
  Object.assign(cfg.hosts[1], {
    sysctl: { enabled: true, addAddrTimeout: 60 },
    endpoints: [
      { interface: "lan", flags: ["subflow"] },
      { interface: "wlan", flags: ["subflow"] },
    ],
    limits: { subflows: 3, addAddrAccepted: 1 },
    hooks: true,
    services: [{ unit: "iperf3.service" }],
    ...opts.client,
  });
  return cfg;
}

/** Adds an endpoint of the laptop's own (an admin's) on its lan address with `id`: what a flush of the table would lose. */
export function adminEndpoint(h: LabHost, id: number): void {
  const lan = labSh(h, "ip -4 -o addr show dev lan | awk '{ print $4 }' | cut -d/ -f1").trim();
  labSh(h, `ip mptcp endpoint add ${lan} dev lan id ${id} signal`);
}

/**
 * The lab's stack (router topology) with the client routing its uplink, the path SSH arrives on,
 * by source through `gateway`: a wrong gateway cuts SSH (the rollback's subject).
 */
export function uplinkRoutingConfig(lab: LabState, gateway: string, confirmTimeout: number, table = 100): AllConcernsConfig {
  const cfg = labStackConfig(lab) as AllConcernsConfig;
  Object.assign(
    cfg.hosts.find((h) => h.name === "client"),
    {
      hooks: true,
      confirmTimeout,
      endpoints: [{ interface: "uplink", flags: [] }],
      routing: [{ interface: "uplink", mode: "source", gateway, table }],
    },
  );
  return cfg;
}

/**
 * Makes `cmd` on the laptop run `act` (shell, in the wrapper) once, the first time its arguments
 * contain `match`, then run as usual unless `act` exits: a wrapper in the laptop's own
 * /usr/local/sbin, first in root's PATH. Once, so that an undo running the same command is not
 * hit. Returns what removes the wrapper.
 */
export function labFault(h: LabHost, cmd: string, match: string, act: string): () => void {
  const real = labSh(h, `command -v ${cmd}`).trim();
  labSh(
    h,
    `cat > /usr/local/sbin/${cmd} <<'LAB_FAULT'
#!/bin/sh
case "$*" in *'${match}'*) [ -e /run/lab-fault.fired ] || { : > /run/lab-fault.fired; ${act}; } ;; esac
exec ${real} "$@"
LAB_FAULT
chmod 755 /usr/local/sbin/${cmd}`,
  );
  // (not through the wrapper, which may be rm's own)
  return () => labSh(h, `/bin/rm -f /usr/local/sbin/${cmd} /run/lab-fault.pgid /run/lab-fault.fired`);
}
