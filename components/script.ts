// Pieces every rendered host script shares: the prelude (strict mode, messages, the state
// directory and its helpers), the host-wide lock, and the iproute2 check.
import { HostModel } from "./model";
import { shq } from "./shell";

export const STATE_DIR = "/var/lib/mptcp-pulumi";
export const SYSCTL_CONF = "/etc/sysctl.d/99-mptcp-pulumi.conf";
/** Serializes applies and hooks on a host; lives exactly as long as STATE_DIR. */
export const LOCK_FILE = "/run/mptcp-pulumi.lock";

export type Concern = "sysctl" | "limits" | "endpoints" | "hooks";

export interface ConcernScripts {
  concern: Concern;
  apply: string;
  revert: string;
}

export function prelude(host: HostModel, concern: Concern | "interface sync", action: string): string {
  return `# mptcp-pulumi: host ${host.name}, ${concern} ${action}, generated from mptcp:hosts[${host.index}]
set -eu
umask 022
host=${shq(host.name)}
state=${STATE_DIR}
say() { printf 'mptcp-pulumi[%s]: %s\\n' "$host" "$*"; }
die() { printf 'mptcp-pulumi[%s]: error: %s\\n' "$host" "$*" >&2; exit 1; }
# keep FILE CMD...: saves CMD's output as FILE unless FILE exists (the original is captured once).
# (POSIX sh functions share variables: helpers use _-prefixed names that callers never use.)
keep() { _keep=$1; shift; [ -e "$_keep" ] && return 0; mkdir -p "\${_keep%/*}"; "$@" > "$_keep.tmp"; mv "$_keep.tmp" "$_keep"; }
# tidy DIR: removes our state directory once it is empty (and then the lock, which lives as long).
tidy() { rmdir "$1" 2>/dev/null || true; if rmdir "$state" 2>/dev/null; then rm -f ${LOCK_FILE}; fi; }
# lock: serializes applies and interface hooks on this host (30 s at most).
lock() {
  command -v flock >/dev/null 2>&1 || return 0
  exec 9>>${LOCK_FILE}
  flock -w 30 9 || die "another mptcp-pulumi apply or hook has held ${LOCK_FILE} for 30 s: retry, or find it with: fuser -v ${LOCK_FILE}"
}
`;
}

export const needIp = `command -v ip >/dev/null 2>&1 || die "ip (iproute2) is not installed"
ip mptcp limits show >/dev/null 2>&1 || die "ip mptcp does not work here: needs iproute2 >= 5.7 and a kernel with MPTCP (>= 5.6)"
`;

