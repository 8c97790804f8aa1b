// TEST CODE. Observations of lab laptops from this machine (nsenter): state snapshots, MIB
// counters, interface bytes. Transfers use the product's verification (scripts/verify).
import { EndpointFlag } from "../../components";
import { LabHost, labSh } from "../../scripts/lab/lab";

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
