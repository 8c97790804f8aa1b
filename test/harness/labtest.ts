// TEST CODE. Observations of lab laptops: state snapshots, MIB counters, interface bytes, and
// MPTCP transfers with test/fixtures/xfer.py.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { EndpointFlag } from "../../components";
import { LabHost, labExec, labSh, labSpawn } from "../../scripts/lab/lab";

/** The transfer program, as text: a laptop sees none of this machine's /tmp, where a checkout may live. */
const XFER = readFileSync(join(__dirname, "..", "fixtures", "xfer.py"), "utf8");

/** Directories our components may write; snapshots cover every file under them. */
export const WATCHED_DIRS = ["/etc/sysctl.d", "/var/lib/mptcp-pulumi", "/etc/network", "/etc/NetworkManager/dispatcher.d", "/etc/dhcp/dhclient-exit-hooks.d", "/etc/systemd/system", "/usr/local/sbin", "/run/mptcp-pulumi.lock"];

/** The laptop's whole MPTCP-relevant state: sysctls, limits, endpoints, rules, routes, rp_filter, files. */
export function snapshot(h: LabHost): string {
  return labSh(
    h,
    `set -e
grep -H . /proc/sys/net/mptcp/* | grep -v /available_ | sed 's|^/proc/sys/net/mptcp/|sysctl |'
echo "limits $(ip mptcp limits show)"
# implicit endpoints are the kernel's, created by traffic (subflows' local addresses), not by us
ip mptcp endpoint show | grep -v -e ' implicit' -e ' rawflags ' | sed 's/^/endpoint /' || true
ip -4 rule show | sed 's/^/rule4 /'; ip -6 rule show | sed 's/^/rule6 /'
# routes are a set: a link flap re-adds them in another order
ip -4 route show table all | sort | sed 's/^/route4 /'; ip -6 route show table all | grep -v '^local\\|fe80' | sort | sed 's/^/route6 /' || true
grep -H . /proc/sys/net/ipv4/conf/*/rp_filter | sed 's/^/rp_filter /'
# files: type, mode, link target and content hash of everything under the watched paths (few processes: this runs often)
dirs=""
for d in ${WATCHED_DIRS.join(" ")}; do if [ -e "$d" ]; then dirs="$dirs $d"; else echo "absent $d"; fi; done
[ -z "$dirs" ] || find $dirs -xdev -printf 'entry %y %m %p %l\\n' | sort
[ -z "$dirs" ] || find $dirs -xdev -type f -exec sha256sum {} + | awk '{ print "sha256", $2, substr($1, 1, 16) }' | sort`,
  );
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

export function txBytes(h: LabHost, iface: string): number {
  return Number(labSh(h, `cat /sys/class/net/${iface}/statistics/tx_bytes`).trim());
}

export interface TransferReport {
  sha256: string;
  bytes: number;
  subflows: number;
  seconds: number;
  server: { sha256: string; bytes: number; subflows: number };
}

let nextPort = 5201;

/**
 * One MPTCP transfer client -> server at `address`. `during` runs while the transfer is in
 * flight (e.g. a link flap).
 */
export async function transfer(client: LabHost, server: LabHost, address: string, bytes: number, opts: { pace?: number; during?: () => Promise<void> } = {}): Promise<TransferReport> {
  const port = nextPort++;
  const srv = labSpawn(server, ["python3", "-c", XFER, "server", address, String(port)]);
  let srvOut = "";
  let srvErr = "";
  srv.stderr.on("data", (d) => (srvErr += d));
  await new Promise<void>((resolve, reject) => {
    srv.stdout.on("data", (d) => {
      srvOut += d;
      if (srvOut.includes("listening")) resolve();
    });
    srv.on("close", (code) => reject(new Error(`xfer server exited ${code} before listening: ${srvErr}`)));
  });
  const cli = labSpawn(client, ["python3", "-c", XFER, "client", address, String(port), String(bytes), String(opts.pace ?? 0)]);
  let out = "";
  let err = "";
  cli.stdout.on("data", (d) => (out += d));
  cli.stderr.on("data", (d) => (err += d));
  const done = new Promise<number>((resolve) => cli.on("close", (code) => resolve(code ?? -1)));
  if (opts.during) await opts.during();
  const code = await done;
  await new Promise<void>((resolve) => (srv.exitCode !== null ? resolve() : srv.on("close", () => resolve())));
  if (code !== 0) throw new Error(`xfer client exited ${code}: ${err}`);
  return JSON.parse(out.trim().split("\n").pop()!);
}
